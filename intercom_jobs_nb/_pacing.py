"""Pacing: every worker of a run shares one `RateGate`, fed by Intercom's rate-limit headers.

Intercom answers each authenticated request with ``X-RateLimit-Limit``, ``-Remaining`` (left in
the current window) and ``-Reset`` (UNIX seconds, server clock, when the window resets). The gate
keeps a *budget*: what the window has left, less the requests in flight. A request goes out only
while the budget is positive. When it is spent (or a 429 arrives) every worker waits for the
reset, converted to the local clock with the answers' ``Date`` header, plus a little jitter so
that many clients do not stampede together. Before the first answer only one request is in
flight: a bad token is found with one request, not one per worker.

A *budget share* (``budget_share``, 0 < share <= 1) leaves the rest of each window to the
workspace's other integrations: the gate sends at most ``floor(share * X-RateLimit-Limit)``
requests (at least one) a window, whatever ``-Remaining`` says. Every request sent in the
window counts, those in flight included; when a window ends, the requests still in flight, and
those sent after the server's reset but before the gate's jittered start of the next window,
count against the next one (the server may count them there). The gate is shared by every run
with the same token and host, so the share holds for all of them together; it is the latest
run's, as ``max_rps`` is.

Nothing a server sends can make the gate wait for ever:

- headers are parsed as RFC 9110 says (ASCII digits only; ``inf``, ``1e400`` or ``٣`` are no
  information, not a crash);
- one wait lasts at most `MAX_WAIT` seconds (`MAX_RETRY_AFTER` for a ``Retry-After``);
- the clock offset is the consensus of recent ``Date`` headers (outliers more than a couple of
  seconds from their median are ignored, and so is a ``Date`` that disagrees with its own
  answer's ``X-RateLimit-Reset``), so one absurd ``Date``, first or later, cannot shift every
  window;
- when `BLOCKED_WINDOWS` windows in a row end without one answer other than a 429, or the server
  says its windows allow no request at all (``X-RateLimit-Limit: 0``), the gate is *blocked*:
  `acquire` returns `BLOCKED` at once and the jobs not sent become ``rate_limit_exceeded`` rows,
  which `refresh` asks again later.
"""

from __future__ import annotations

import hashlib
import random
import re
import statistics
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ._clock import SYSTEM, Clock

__all__ = [
    "RateGate",
    "Pacer",
    "PaceStatus",
    "shared_gate",
    "GO",
    "BLOCKED",
    "STOPPED",
    "MAX_WAIT",
    "MAX_RETRY_AFTER",
    "BLOCKED_WINDOWS",
    "BLOCKED_FOR",
    "check_budget_share",
]

MAX_WAIT = 15.0  # Intercom's windows are 10 s: a reset further away is not believed
MAX_RETRY_AFTER = 60.0  # a Retry-After is believed up to this
MIN_WAIT = 0.5  # when a window is spent but its reset looks past, wait at least this
BLOCKED_WINDOWS = 3  # windows in a row with nothing but 429s before the gate gives up
BLOCKED_FOR = 60.0  # seconds a blocked gate refuses requests before it probes again
SKEW_SAMPLES = 15  # Date headers kept for the clock-offset consensus
SKEW_SPREAD = 2.0  # seconds from the median within which a sample is believed

GO = 1
STOPPED = 0  # the run is stopping
BLOCKED = -1  # the server allows nothing: give up on the request

_UINT = re.compile(r"[0-9]{1,15}")
_RESET = re.compile(r"([0-9]{1,15})(?:\.[0-9]{1,9})?")


def parse_uint(value: str | None) -> int | None:
    """A header's delta-seconds or count per RFC 9110: ASCII digits only, else None."""
    if value is None:
        return None
    value = value.strip()
    return int(value) if _UINT.fullmatch(value) else None


def parse_reset(value: str | None) -> int | None:
    """``X-RateLimit-Reset``: UNIX seconds (a fraction is tolerated and dropped), else None."""
    if value is None:
        return None
    match = _RESET.fullmatch(value.strip())
    return int(match.group(1)) if match else None


def parse_http_date(value: str | None) -> float | None:
    """An HTTP date (RFC 9110, via `email.utils`) as UNIX seconds, else None."""
    if not value or len(value) > 64:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def check_budget_share(share: object) -> float:
    """``budget_share`` as a float, if it is one: 0 < share <= 1.

    Raises:
        ValueError: anything else (the option's check words it for the caller).
    """
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise ValueError(f"budget_share must be a number with 0 < share <= 1, got {share!r}")
    return float(share)


def share_cap(limit: int | None, share: float) -> int | None:
    """Requests a window allows one gate at ``share`` of ``limit`` (None: no cap)."""
    if limit is None or share >= 1.0:
        return None
    return max(1, int(limit * share))


@dataclass(frozen=True)
class PaceStatus:
    """What the gate knows and does right now (for progress displays; read-only).

    Attributes:
        limit: requests per window Intercom allows (``X-RateLimit-Limit``); None: not known.
        remaining: requests left in the current window, less those in flight; None: no limit
            known.
        waiting: seconds until the gate would let the next request go; 0.0 when it would now.
        blocked: the server allows nothing for now (requests are given up, not held).
    """

    limit: int | None
    remaining: int | None
    waiting: float
    blocked: bool


class RateGate:
    """Shared pacing for all the workers of one run. Thread-safe.

    The budget is ``remaining - in_flight``: ``remaining`` is the lowest ``X-RateLimit-Remaining``
    seen in the current window (every request answered so far was counted at or before that
    answer), and any request still in flight may yet be counted. So the window is never overrun
    by this client, however the server orders concurrent requests.

    Args:
        max_rps: an optional cap on requests per second, below what Intercom allows, to leave
            headroom for the workspace's other integrations.
        budget_share: the share of each window's ``X-RateLimit-Limit`` the gate may use.
        stop: set it to release every waiting worker (`acquire` then returns `STOPPED`).
        clock: what the gate reads the time from and waits through (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        max_rps: float | None = None,
        budget_share: float = 1.0,
        stop: threading.Event | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.clock = clock
        self.share = check_budget_share(budget_share)
        self.sent = 0  # requests sent in the current window (those in flight included)
        self._late = 0  # of those, sent after the server's reset: the next window's too
        self._cond = threading.Condition(threading.Lock())
        self.stop = stop or threading.Event()
        self._interval = 1.0 / max_rps if max_rps else 0.0
        self._next_slot = 0.0
        self._probing = True
        self.in_flight = 0
        self.limit: int | None = None
        self.remaining: int | None = None  # None: no headers, no limit known
        self.blocked = False
        self._blocked_at = 0.0
        self._window_reset: int | None = None  # the latest reset value the server sent
        self._learned = False  # whether the current local window has heard of itself yet
        self._reset_local: float | None = None  # local time of that reset, never early
        self._jitter = 0.0
        self._answered_in_window = False  # an answer other than 429 since the window began
        self._refused_in_window = False  # a 429 since the window began
        self._empty_windows = 0
        self._skew = 0.0  # server clock - local clock, a lower bound
        self._skew_samples: deque[float] = deque(maxlen=SKEW_SAMPLES)
        self._last_date = ""
        self.waited = 0.0  # seconds workers were held back for the window (for progress)

    @property
    def budget(self) -> int | None:
        """Requests that may still go out in this window (None: no limit known)."""
        if self.remaining is None:
            return None
        budget = self.remaining - self.in_flight
        cap = share_cap(self.limit, self.share)
        return budget if cap is None else min(budget, cap - self.sent)

    @property
    def skew(self) -> float:
        """The estimated offset of the server's clock (seconds ahead of ours)."""
        return self._skew

    def status(self) -> PaceStatus:
        """The gate's state at this moment, read under its lock (cheap: no waiting, no change).

        ``waiting`` follows the rules of `acquire`: a spent window holds requests until its
        reset (plus jitter), a ``max_rps`` cap until the next slot; a gate that is probing
        (one request in flight before the first answer) waits for an answer, not for time.
        """
        with self._cond:
            now = self.clock.time()
            budget = None if self.budget is None else max(0, self.budget)
            if self.blocked and now - self._blocked_at < BLOCKED_FOR:
                return PaceStatus(self.limit, budget, 0.0, True)
            waiting = 0.0
            window_over = self._reset_local is not None and now >= self._reset_local + self._jitter
            if window_over:  # the next `acquire` starts a new window
                cap = share_cap(self.limit, self.share)
                budget = self.limit if cap is None else cap
            elif self.remaining is not None and (self.budget or 0) <= 0:
                if self._reset_local is None:
                    waiting = MIN_WAIT
                else:
                    waiting = min(MAX_WAIT, max(0.0, self._reset_local + self._jitter - now))
            if self._interval:
                waiting = max(waiting, self._next_slot - now)
            return PaceStatus(self.limit, budget, max(0.0, waiting), False)

    # -- called by workers -------------------------------------------------------------------
    def acquire(self, stop: threading.Event | None = None) -> int:
        """Block until a request may go out: `GO`, `STOPPED` (``stop``, default the gate's own,
        is set) or `BLOCKED`."""
        stop = stop or self.stop
        with self._cond:
            while True:
                if stop.is_set():
                    return STOPPED
                now = self.clock.time()
                if self.blocked:
                    if now - self._blocked_at < BLOCKED_FOR:
                        return BLOCKED
                    self.blocked = False  # time to try again, one request first
                    self._empty_windows = 0
                    self._probing = True
                if self._reset_local is not None and now >= self._reset_local + self._jitter:
                    self._new_window()
                    continue
                if self._probing and self.in_flight:
                    self.clock.wait(self._cond, 0.5)
                    continue
                budget = self.budget
                if budget is not None and budget <= 0:
                    if self._reset_local is None:
                        self._reset_local = now + MIN_WAIT
                    wait = min(MAX_WAIT, max(0.01, self._reset_local + self._jitter - now))
                    self.clock.wait(self._cond, wait)
                    self.waited += self.clock.time() - now
                    continue
                break
            self.in_flight += 1
            self.sent += 1
            if self._reset_local is not None and now >= self._reset_local:
                self._late += 1
            delay = 0.0
            if self._interval:
                slot = max(now, self._next_slot)
                self._next_slot = slot + self._interval
                delay = slot - now
        if delay > 0 and self.clock.wait(stop, delay):
            self.release()
            return STOPPED
        return GO

    def begin_run(self) -> None:
        """A run starts using the gate: a blocked gate may probe again, and what an idle gate
        learned of windows that are over is forgotten (it may even be another server's, on a
        loopback port used again)."""
        with self._cond:
            if self.blocked:
                self.blocked = False
                self._empty_windows = 0
                self._probing = True
            now = self.clock.time()
            if self.in_flight == 0 and (self._reset_local is None or now >= self._reset_local):
                self.limit = self.remaining = self._window_reset = self._reset_local = None
                self.sent = self._late = 0
                self._learned = self._answered_in_window = self._refused_in_window = False
                self._skew_samples.clear()
                self._skew = 0.0
                self._last_date = ""
                self._probing = True

    def set_pace(self, max_rps: float | None, budget_share: float = 1.0) -> None:
        """The cap and the budget share of the latest run that uses the gate."""
        share = check_budget_share(budget_share)
        with self._cond:
            self._interval = 1.0 / max_rps if max_rps else 0.0
            self.share = share
            self._cond.notify_all()

    def wake(self) -> None:
        """Wake every waiting worker (one of them was told to stop)."""
        with self._cond:
            self._cond.notify_all()

    def release(
        self,
        headers: Mapping[str, str] | None = None,
        received_at: float | None = None,
        status: int = 0,
    ) -> None:
        """Return the slot, learning what the answer's headers say about the window."""
        with self._cond:
            self.in_flight -= 1
            self._probing = False
            if headers is not None:
                if status == 429:
                    self._refused_in_window = True
                else:
                    self._answered_in_window = True
                    self._empty_windows = 0
                self._learn(headers, received_at or self.clock.time(), status)
            self._cond.notify_all()

    # -- internals -------------------------------------------------------------------------
    def _new_window(self) -> None:
        # The reset has passed: assume the full limit until an answer says otherwise.
        # A window counts as refused when it met 429s and nothing else; an idle one is neutral.
        if self._answered_in_window:
            self._empty_windows = 0
        elif self._refused_in_window:
            self._empty_windows += 1
        if self._empty_windows >= BLOCKED_WINDOWS or self.limit == 0:
            self.blocked = True
            self._blocked_at = self.clock.time()
            self._cond.notify_all()
        self._answered_in_window = self._refused_in_window = False
        self.remaining = self.limit
        self.sent, self._late = self.in_flight + self._late, 0
        self._learned = False
        self._reset_local = None

    def _learn_skew(self, date: str | None, received_at: float, reset: float | None) -> None:
        # One sample per distinct Date value: the first answer stamped with a second is the
        # one received earliest after it, so its offset is the tightest lower bound.
        if not date or date == self._last_date:
            return
        self._last_date = date
        server_now = parse_http_date(date)
        if server_now is None:
            return
        # A window resets within MAX_WAIT of the server's now: a Date that disagrees with its
        # own answer's reset is no clock (a 2099 Date, even the first, would put every reset in
        # the past and every worker into 429s). One checked that way is believed alone; one
        # without a reset to check it against needs a second that agrees, or to say the clocks
        # agree.
        checked = reset is not None
        if reset is not None and not -SKEW_SPREAD <= reset - server_now <= MAX_WAIT + SKEW_SPREAD:
            return
        samples = self._skew_samples
        samples.append(server_now - received_at)
        median = statistics.median(samples)
        near = [s for s in samples if abs(s - median) <= SKEW_SPREAD]
        agreed = checked or len(near) >= 2 or abs(median) <= SKEW_SPREAD
        if near and agreed:  # two samples far apart have no consensus yet: keep what we had
            self._skew = max(near)

    def _learn(self, headers: Mapping[str, str], received_at: float, status: int) -> None:
        reset = parse_reset(headers.get("X-RateLimit-Reset"))
        self._learn_skew(headers.get("Date"), received_at, reset)
        if status in (429, 503):
            retry_after = headers.get("Retry-After")
            seconds: float | None = parse_uint(retry_after)
            if seconds is None:
                at = parse_http_date(retry_after)
                seconds = None if at is None else at - self._skew - received_at
            if seconds is not None:
                until = received_at + min(max(seconds, 0.0), MAX_RETRY_AFTER)
                if self._reset_local is None or until > self._reset_local:
                    self._reset_local = until
                if status == 429:
                    self.remaining = 0
        limit = parse_uint(headers.get("X-RateLimit-Limit"))
        remaining = parse_uint(headers.get("X-RateLimit-Remaining"))
        if limit is None or remaining is None or reset is None:
            if status == 429:  # a 429 without headers: wait a little before anyone tries again
                self.remaining = 0
                self._reset_local = max(self._reset_local or 0.0, received_at + MIN_WAIT)
            return
        self.limit = limit
        latest = self._window_reset
        if latest is not None and (reset < latest or (reset == latest and not self._learned)):
            # An answer from a window that is over here. A 429 among them means we woke too
            # early: hold everyone back a little.
            if status == 429:
                self.remaining = 0
                self._reset_local = self.clock.time() + MIN_WAIT
            return
        if status == 429:
            remaining = 0
        if latest is None or reset > latest:
            self._window_reset = reset
            self._learned = True
            self.remaining = remaining
            now = self.clock.time()
            reset_local = reset - self._skew
            self._reset_local = min(max(reset_local, now), now + MAX_WAIT)
            self._jitter = random.uniform(0.02, 0.2)
        elif self.remaining is None or remaining < self.remaining:
            self.remaining = remaining


class Pacer:
    """One run's handle on a gate that may be shared with other runs: the gate, and the run's
    own stop event (stopping one run releases its workers, not the others')."""

    def __init__(self, gate: RateGate, stop: threading.Event | None = None) -> None:
        self.gate = gate
        self.stop = stop or threading.Event()
        gate.begin_run()

    @property
    def clock(self) -> Clock:
        """The gate's clock: the run's backoffs wait through it too."""
        return self.gate.clock

    def acquire(self) -> int:
        return self.gate.acquire(self.stop)

    def release(
        self,
        headers: Mapping[str, str] | None = None,
        received_at: float | None = None,
        status: int = 0,
    ) -> None:
        self.gate.release(headers, received_at, status)

    def status(self) -> PaceStatus:
        """The shared gate's `RateGate.status`."""
        return self.gate.status()

    def halt(self) -> None:
        self.stop.set()
        self.gate.wake()


_GATES: dict[tuple[str, str, Clock], RateGate] = {}
_GATES_LOCK = threading.Lock()


def shared_gate(
    token: str,
    base_url: str,
    max_rps: float | None = None,
    clock: Clock = SYSTEM,
    budget_share: float = 1.0,
) -> RateGate:
    """The process's one gate for a (token, host): calls one after another, or at the same time
    (the panel while a cell runs), share Intercom's per-app budget (and the ``budget_share`` of
    it they leave to others). Keyed by a hash of the token, never the token itself (and by the
    clock: a test's fake time is not the process's)."""
    key = (hashlib.sha256(token.encode()).hexdigest(), base_url, clock)
    with _GATES_LOCK:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = RateGate(max_rps=max_rps, budget_share=budget_share, clock=clock)
        else:
            gate.set_pace(max_rps, budget_share)
        return gate
