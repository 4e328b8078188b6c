"""Time, injected: what the pacing gate and the run engine read the time and wait through.

Every wait that stands for time passing (a rate-limit window, a backoff, the pause between two
polls) goes through one `Clock`: ``clock.wait(on, seconds)``, where ``on`` is a
`threading.Event` (a run's stop) or a `threading.Condition` the caller holds (the gate's),
returns True as soon as it is set or notified, False once ``seconds`` have passed. So a stop
interrupts every wait at once, on any clock.

`SYSTEM` is the real clock, the default everywhere. `FakeClock` is a test's: it stands still
while anything runs and jumps to the earliest deadline once every thread waiting on it has been
idle a moment, so a test of windows, resets and backoffs takes milliseconds, not seconds.

Example:
    >>> clock = FakeClock()
    >>> before = clock.monotonic()
    >>> clock.wait(threading.Event(), 10.0)   # returns at once, ten fake seconds later
    False
    >>> clock.monotonic() - before
    10.0
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "Waitable", "SystemClock", "FakeClock", "SYSTEM"]


class Waitable(Protocol):
    """What a clock waits on: `threading.Event`, or a `threading.Condition` the caller holds."""

    def wait(self, timeout: float | None = None) -> bool: ...


class Clock(Protocol):
    """The time, and the one way to wait for it."""

    def time(self) -> float:
        """UNIX seconds (the wall clock: what ``Date`` and ``X-RateLimit-Reset`` compare to)."""
        ...

    def monotonic(self) -> float:
        """Seconds that only go forward (for durations and deadlines)."""
        ...

    def wait(self, on: Waitable, seconds: float) -> bool:
        """Wait up to ``seconds``: True as soon as ``on`` is set (or notified), else False."""
        ...


class SystemClock:
    """The real clock: `time.time`, `time.monotonic`, and ``on.wait(seconds)``."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, on: Waitable, seconds: float) -> bool:
        return on.wait(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Clock = SystemClock()


class FakeClock:
    """A clock for tests that moves only when told (`advance`) or when nothing else happens.

    A `wait` returns True at once when ``on`` is set or notified, as on the real clock. Else it
    blocks (really, `TICK` at a time) until the fake time reaches its deadline. The
    time jumps to the earliest deadline of the threads waiting once the clock has not been
    read, nor a wait begun, for ``idle`` real seconds: every thread that had something to do has
    done it and waits. Each wait ends exactly at its deadline, so what a test sees of the time
    (a window's reset, a backoff's length) does not depend on how busy the machine is. A thread
    busy that long without reading the clock (a request on a loaded machine) may see the time
    jump meanwhile, as a slow network would make it.
    Thread-safe: any number of workers may wait on it at once.

    Args:
        start: the wall time it starts at (UNIX seconds; the default is in 2027).
        idle: real seconds without activity after which the time jumps.
    """

    TICK = 0.002  # real seconds between two looks at the fake time by a waiting thread

    def __init__(self, start: float = 1_800_000_000.0, *, idle: float = 0.01) -> None:
        self._lock = threading.Lock()
        self._start = float(start)
        self._now = 0.0  # fake seconds since start
        self._idle = idle
        self._deadlines: dict[int, float] = {}  # wait number -> its fake deadline
        self._waits = 0
        self._touched = time.monotonic()

    def time(self) -> float:
        with self._lock:
            self._touched = time.monotonic()
            return self._start + self._now

    def monotonic(self) -> float:
        with self._lock:
            self._touched = time.monotonic()
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the time forward by ``seconds`` (waits whose deadline passed then end)."""
        with self._lock:
            self._now += max(0.0, seconds)
            self._touched = time.monotonic()

    def wait(self, on: Waitable, seconds: float) -> bool:
        with self._lock:
            self._waits += 1
            key = self._waits
            deadline = self._now + max(0.0, seconds)
            self._deadlines[key] = deadline
            self._touched = time.monotonic()
        try:
            while True:
                if on.wait(0 if seconds <= 0 else self.TICK):
                    return True
                with self._lock:
                    if self._now >= deadline:
                        return False
                    if time.monotonic() - self._touched >= self._idle:
                        self._now = max(self._now, min(self._deadlines.values()))
                        self._touched = time.monotonic()
                        if self._now >= deadline:
                            return False
        finally:
            with self._lock:
                del self._deadlines[key]

    def __repr__(self) -> str:
        return f"FakeClock(now={self._start + self._now!r})"
