"""How the sandbox's jobs become final: its completion models.

- ``"uniform"`` (the default, the sandbox's first model): each job is pending with probability
  ``pending_share``, for ``uniform(*pending_seconds)`` seconds, else final at start.
- `Queue` (``"queue"``): every job is pending at start, and they finish in creation order,
  ``rate`` a second, each up to ``jitter`` seconds early or late: what a worker pool draining
  a queue looks like from outside (Intercom's enqueued tickets).
- `Independent` (``"independent"``): every job is pending at start, for its own log-normal
  duration (``median`` seconds, shape ``sigma``): jobs that share nothing but a start.

A model gives each job created at construction its pending time from its position and the
sandbox's seeded generator; jobs enqueued or added later keep their own pending times.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Queue", "Independent", "COMPLETIONS", "completion_model"]


@dataclass(frozen=True)
class Queue:
    """Jobs finish in creation order, ``rate`` per second, each ``jitter`` seconds early or
    late at most (uniform)."""

    rate: float = 60.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)) or not self.jitter >= 0:
            raise ValueError("Queue needs rate > 0 and jitter >= 0")

    def pending_for(self, position: int, rng: random.Random) -> float:
        """Seconds after start at which job number ``position`` (0: the first) is final."""
        return max(0.0, (position + 1) / self.rate + rng.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True)
class Independent:
    """Each job pending for its own log-normal time: ``median`` seconds, shape ``sigma``."""

    median: float = 20.0
    sigma: float = 0.5

    def __post_init__(self) -> None:
        if not (self.median > 0 and math.isfinite(self.median)) or not self.sigma >= 0:
            raise ValueError("Independent needs median > 0 and sigma >= 0")

    def pending_for(self, position: int, rng: random.Random) -> float:
        """Seconds after start at which the job is final (its position does not matter)."""
        return rng.lognormvariate(math.log(self.median), self.sigma)


COMPLETIONS = ("uniform", "queue", "independent")


def completion_model(completion: str | Queue | Independent) -> Queue | Independent | None:
    """The model a ``completion=`` argument names (None: ``"uniform"``, the sandbox's own).

    Raises:
        ValueError: not one of `COMPLETIONS` nor a model.
    """
    if isinstance(completion, (Queue, Independent)):
        return completion
    if completion == "uniform":
        return None
    if completion == "queue":
        return Queue()
    if completion == "independent":
        return Independent()
    raise ValueError(
        f"completion must be one of {', '.join(COMPLETIONS)} or a model, got {completion!r}"
    )
