"""Pacing: every worker of a run shares one `RateGate`, fed by Intercom's rate-limit headers.

Intercom answers each authenticated request with ``X-RateLimit-Limit``, ``-Remaining`` (left in
the current window) and ``-Reset`` (UNIX seconds, server clock, when the window resets). The gate
keeps a *budget*: what the window has left, less the requests sent since the answer that said so.
A request goes out only while the budget is positive, so never more are in flight than the window
has left. When it is spent (or a 429 arrives) every worker waits for the reset, converted to the
local clock with the answers' ``Date`` header, plus a little jitter so that many clients do not
stampede together. Before the first answer only one request is in flight: a bad token is found
with one request, not one per worker.

The clock offset is estimated from below (``Date`` is truncated to the second and was written
before we read it), so the gate may wake a little late but never early: late costs a fraction of
a window, early costs 429s.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from email.utils import parsedate_tz

MAX_WAIT = 60.0  # a reset further away than this is not believed
MIN_WAIT = 0.5  # when a window is spent but its reset looks past, wait at least this


def _parse_date(value: str) -> float | None:
    parts = parsedate_tz(value)
    if parts is None:
        return None
    # calendar.timegm equivalent without the import cost of datetime per call
    year, month, day, hour, minute, second = parts[:6]
    offset = parts[9] or 0
    days = _days_from_civil(year, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + second - offset


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


class RateGate:
    """Shared pacing for all the workers of one run. Thread-safe.

    The budget is ``remaining - in_flight``: ``remaining`` is the lowest ``X-RateLimit-Remaining``
    seen in the current window (every request answered so far was counted at or before that
    answer), and any request still in flight may yet be counted. So the window is never overrun
    by this client, however the server orders concurrent requests.

    Args:
        max_rps: an optional cap on requests per second, below what Intercom allows, to leave
            headroom for the workspace's other integrations.
        stop: set it to release every waiting worker (`acquire` then returns False).
    """

    def __init__(self, *, max_rps: float | None = None,
                 stop: threading.Event | None = None) -> None:
        self._cond = threading.Condition(threading.Lock())
        self.stop = stop or threading.Event()
        self._interval = 1.0 / max_rps if max_rps else 0.0
        self._next_slot = 0.0
        self._probing = True
        self.in_flight = 0
        self.limit: int | None = None
        self.remaining: int | None = None  # None: no headers, no limit known
        self._window_reset: int | None = None  # the latest reset value the server sent
        self._learned = False  # whether the current local window has heard of itself yet
        self._reset_local: float | None = None  # local time of that reset, never early
        self._jitter = 0.0
        self._skew: float | None = None  # lower bound of (server clock - local clock)
        self._date_cache: tuple[str, float | None] = ("", None)

    @property
    def budget(self) -> int | None:
        """Requests that may still go out in this window (None: no limit known)."""
        return None if self.remaining is None else self.remaining - self.in_flight

    # -- called by workers -------------------------------------------------------------------
    def acquire(self) -> bool:
        """Block until a request may go out. False when the run is stopping."""
        with self._cond:
            while True:
                if self.stop.is_set():
                    return False
                now = time.time()
                if self._reset_local is not None and now >= self._reset_local + self._jitter:
                    self._new_window()
                if self._probing and self.in_flight:
                    self._cond.wait(0.5)
                    continue
                if self.remaining is not None and self.remaining - self.in_flight <= 0:
                    if self._reset_local is None:
                        self._reset_local = now + MIN_WAIT
                    self._cond.wait(max(0.01, self._reset_local + self._jitter - now))
                    continue
                break
            self.in_flight += 1
            delay = 0.0
            if self._interval:
                slot = max(now, self._next_slot)
                self._next_slot = slot + self._interval
                delay = slot - now
        if delay > 0 and self.stop.wait(delay):
            self.release()
            return False
        return True

    def release(self, headers: Mapping[str, str] | None = None,
                received_at: float | None = None, status: int = 0) -> None:
        """Return the slot, learning what the answer's headers say about the window."""
        with self._cond:
            self.in_flight -= 1
            self._probing = False
            if headers is not None:
                self._learn(headers, received_at or time.time(), status)
            self._cond.notify_all()

    # -- internals -------------------------------------------------------------------------
    def _new_window(self) -> None:
        # The reset has passed: assume the full limit until an answer says otherwise.
        self.remaining = self.limit
        self._learned = False
        self._reset_local = None

    def _date(self, value: str | None) -> float | None:
        if not value:
            return None
        cached, parsed = self._date_cache
        if value != cached:
            parsed = _parse_date(value)
            self._date_cache = (value, parsed)
        return parsed

    def _learn(self, headers: Mapping[str, str], received_at: float, status: int) -> None:
        server_now = self._date(headers.get("Date"))
        if server_now is not None:
            low = server_now - received_at
            if self._skew is None or low > self._skew:
                self._skew = low
        retry_after = headers.get("Retry-After")
        if retry_after and retry_after.isdigit() and status in (429, 503):
            until = received_at + min(float(retry_after), MAX_WAIT)
            if self._reset_local is None or until > self._reset_local:
                self._reset_local = until
            if status == 429:
                self.remaining = 0
        try:
            limit = int(headers["X-RateLimit-Limit"])
            remaining = int(headers["X-RateLimit-Remaining"])
            reset = int(float(headers["X-RateLimit-Reset"]))
        except (KeyError, ValueError, TypeError):
            if status == 429:  # a 429 without headers: wait a little before anyone tries again
                self.remaining = 0
                self._reset_local = max(self._reset_local or 0.0, received_at + MIN_WAIT)
            return
        self.limit = limit
        latest = self._window_reset
        if latest is not None and (reset < latest or (reset == latest and not self._learned)):
            # An answer from a window that is over here. A 429 among them means we woke too
            # early (no usable Date header): hold everyone back a little.
            if status == 429:
                self.remaining = 0
                self._reset_local = time.time() + MIN_WAIT
            return
        if status == 429:
            remaining = 0
        if latest is None or reset > latest:
            self._window_reset = reset
            self._learned = True
            self.remaining = remaining
            now = time.time()
            reset_local = reset - (self._skew or 0.0)
            self._reset_local = min(max(reset_local, now), now + MAX_WAIT)
            self._jitter = random.uniform(0.02, 0.2)
        elif self.remaining is None or remaining < self.remaining:
            self.remaining = remaining
