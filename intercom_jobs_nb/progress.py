"""Progress: a tqdm bar (a widget in Jupyter, text in a terminal) or a callback, with live counts.

``progress=True`` uses `tqdm.auto` (``TQDM_DISABLE=1`` turns it off), ``progress=False`` shows
nothing, and a callable receives a `Snapshot` a few times a second and once at the end (the
JobsPanel uses that).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from .rows import Row

__all__ = ["Snapshot", "Progress", "JOB_OUTCOMES", "job_outcome"]

UPDATE_EVERY = 0.2  # seconds between refreshes of the counts


@dataclass(frozen=True)
class Snapshot:
    """Where a run stands: ``done`` of ``total``, and the count of each outcome so far
    (for job statuses: success, failed, pending, errors)."""

    done: int
    total: int
    counts: Mapping[str, int] = field(default_factory=dict)
    finished: bool = False

    @property
    def success(self) -> int:
        return self.counts.get("success", 0)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def pending(self) -> int:
        return self.counts.get("pending", 0)

    @property
    def errors(self) -> int:
        return self.counts.get("errors", 0)

    def describe(self) -> str:
        counts = " · ".join(f"{kind} {n}" for kind, n in self.counts.items())
        return f"{self.done}/{self.total} · {counts}" if counts else f"{self.done}/{self.total}"


JOB_OUTCOMES = ("success", "failed", "pending", "errors")


def job_outcome(row: Row) -> str:
    """The progress bucket of a job-status row."""
    if row.status is not None:
        return row.status
    return "errors" if row.error_code is not None else "pending"  # not asked yet: to do


class Progress:
    """Counts rows as they arrive and shows them. ``done`` advances only on `advance`."""

    def __init__(
        self,
        setting: bool | Callable[[Snapshot], Any],
        total: int,
        *,
        desc: str = "jobs",
        done: int = 0,
        kinds: tuple[str, ...] = JOB_OUTCOMES,
        outcome: Callable[[Any], str] = job_outcome,
    ) -> None:
        self.total = total
        self.done = done
        self.counts = dict.fromkeys(kinds, 0)
        self._outcome = outcome
        self._callback = setting if callable(setting) else None
        self._bar = None
        # tqdm reads TQDM_DISABLE once, at import; read it per run so `%env` works too.
        if setting is True and os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false"):
            self._bar = tqdm(
                # smoothing=0: the rate is this run's average, not counting rows known before.
                total=total,
                initial=done,
                desc=desc,
                unit="job",
                dynamic_ncols=True,
                smoothing=0,
            )
        self._last = 0.0

    def count(self, row: Any, *, replaces: Any = None) -> None:
        """Count a row's outcome (taking back the outcome of the row it replaces)."""
        if replaces is not None:
            self.counts[self._outcome(replaces)] -= 1
        self.counts[self._outcome(row)] += 1

    def advance(self, n: int = 1) -> None:
        self.done += n
        bar = self._bar
        if bar is not None:
            # The counts are set before the bar moves, so a redraw never shows the position
            # of one moment beside the counts of another.
            bar.set_postfix_str(self._counts_text(), refresh=False)
            bar.update(n)
        now = time.monotonic()
        if now - self._last >= UPDATE_EVERY:
            self._last = now
            self._show()

    def _counts_text(self) -> str:
        return " ".join(f"{kind}={n}" for kind, n in self.counts.items())

    def snapshot(self, finished: bool = False) -> Snapshot:
        return Snapshot(self.done, self.total, dict(self.counts), finished)

    def _show(self, finished: bool = False) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(self._counts_text(), refresh=False)
        if self._callback is not None:
            self._callback(self.snapshot(finished))

    def close(self) -> None:
        self._show(finished=True)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
