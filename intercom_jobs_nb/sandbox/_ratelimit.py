"""Intercom's fixed-window rate limit, on an injectable clock.

Windows are ``window`` seconds long and aligned to the clock: window ``n`` covers
``[n * window, (n + 1) * window)``, and ``X-RateLimit-Reset`` is its end,
``(n + 1) * window``. Each admitted request costs one unit of the window's budget, rejected
ones included (a client hammering past the limit stays rejected until the window ends).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple


class Admission(NamedTuple):
    """The rate limiter's verdict on one request."""

    allowed: bool
    limit: int | None  # requests allowed per window; None: no limit (and no headers)
    remaining: int  # budget left in the window after this request, never below 0
    reset: int  # clock time (epoch seconds) at which the window ends
    window_index: int  # the window's number: it starts at index * window


class FixedWindow:
    """Counts requests per fixed window of a clock.

    Not thread-safe: the sandbox calls it under its lock.

    Args:
        limit: Requests allowed per window, or None to only tell windows apart.
        window: Window length in whole seconds, >= 1.
        clock: Returns the current time in epoch seconds; the sandbox passes the skewed
            server clock, tests a fake one.
    """

    __slots__ = ("limit", "window", "_clock", "_index", "_count")

    def __init__(
        self, limit: int | None, window: int, clock: Callable[[], float] = time.time
    ) -> None:
        if limit is not None and limit < 0:
            raise ValueError("rate_limit must be >= 0 or None")
        if int(window) != window or window < 1:
            raise ValueError("window must be a whole number of seconds >= 1")
        self.limit = limit
        self.window = int(window)
        self._clock = clock
        self._index = -1  # window being counted
        self._count = 0  # requests counted in it

    def admit(self) -> Admission:
        """Count one request in the current window and say whether it is within the limit."""
        index = int(self._clock() // self.window)
        if index > self._index:
            self._index, self._count = index, 0
        else:
            index = self._index  # a thread that read the clock late stays in the window
        reset = (index + 1) * self.window
        limit = self.limit
        if limit is None:
            return Admission(True, None, 0, reset, index)
        self._count += 1
        return Admission(self._count <= limit, limit, max(0, limit - self._count), reset, index)

    def refund(self, admission: Admission) -> Admission:
        """Give back what ``admission`` cost; returns it as a rejection with nothing left.

        For a 429 that should cost no budget (the ``rate_limit`` fault).
        """
        if admission.limit is not None and admission.window_index == self._index:
            self._count -= 1
        return admission._replace(allowed=False, remaining=0)

    def error(self) -> tuple[str, str]:
        """The ``(code, message)`` of a 429 answer, worded as Intercom words it."""
        if self.limit is None:  # only the rate_limit fault gets here
            return ("rate_limit_exceeded", "Exceeded rate limit")
        message = f"Exceeded rate limit of {self.limit} in {self.window}_seconds"
        return ("rate_limit_exceeded", message)
