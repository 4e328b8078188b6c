"""Faults: the ways a job-status or enqueue request can be made to go wrong, as tables.

Each entry of :data:`TABLE` says what the sandbox answers instead of the normal answer; the
sandbox and its HTTP handler only read the entry, so a new fault is one new row here (and a
test). Faults apply to authenticated job-status requests with a valid ``Intercom-Version``
that are within the rate limit: injected ones first (:meth:`Sandbox.inject`), else one random
draw per request from the shares given as ``Sandbox(faults=...)``.

``POST /tickets/enqueue`` requests meet the faults of :data:`ENQUEUE_TABLE` the same way
(injected with :meth:`Sandbox.inject_enqueue`, else a draw of their own seeded generator from
the same ``faults`` shares): every fault of :data:`TABLE`, plus ``drop_after``, which only
makes sense for a request that changes something. A fault's ``processed`` says whether the
request is carried out (the job and its ticket created) before the fault strikes: a 5xx, a
proxy's page, a drop and a 429 come before, so nothing is created; ``drop_after``, ``slow``,
``not_json`` and ``no_id`` come after, so the client cannot tell whether it was.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from ._store import HTML, HTML_BODY, JSON, NOT_JSON_BODY, Job, job_without_id


class Fault(NamedTuple):
    """What one fault makes the sandbox answer."""

    name: str
    summary: str  # one line, for people
    #: HTTP status answered; None for the normal one (200, or 404 for an unknown job).
    status: int | None = None
    #: ``(code, message)`` of the ``error.list`` body, for an error status.
    error: tuple[str, str] | None = None
    #: Renders the body of a 200 answer from the job (None if unknown) and the base URL.
    body: Callable[[Job | None, str], bytes] | None = None
    content_type: str = JSON
    #: Close the connection without answering.
    drop: bool = False
    #: Wait ``Sandbox.slow_seconds`` (or until the sandbox stops) before answering.
    delay: bool = False
    #: Answer the rate limiter's own 429 (error and headers, nothing remaining) and give back
    #: the budget the request cost.
    rate_limited: bool = False
    #: For an enqueue request: it is carried out (job and ticket created) before the fault.
    processed: bool = False


#: Every fault, by name. The order matters: it is the order of ``FAULTS``, in which the
#: random shares are laid end to end on one draw, so appending keeps existing seeds' faults.
TABLE: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault(
            "server_error",
            "500 with an error.list body, code server_error",
            status=500,
            error=("server_error", "Server Error"),
        ),
        Fault(
            "service_unavailable",
            "503 with an error.list body, code service_unavailable",
            status=503,
            error=("service_unavailable", "Service Unavailable"),
        ),
        Fault("drop", "the connection is closed without an answer", drop=True),
        Fault("slow", "the normal answer, after Sandbox.slow_seconds", delay=True, processed=True),
        Fault(
            "html",
            "200 with a proxy's HTML page",
            status=200,
            body=lambda job, base_url: HTML_BODY,
            content_type=HTML,
        ),
        Fault(
            "not_json",
            "200 with a JSON content type and a body cut short",
            status=200,
            body=lambda job, base_url: NOT_JSON_BODY,
            processed=True,
        ),
        Fault(
            "no_id",
            "200 with the job's body without its id",
            status=200,
            body=job_without_id,
            processed=True,
        ),
        Fault(
            "rate_limit",
            "429 rate_limit_exceeded with nothing remaining, that costs no budget",
            status=429,
            rate_limited=True,
        ),
    )
}

#: Names of the faults :meth:`Sandbox.inject` understands (job-status requests).
FAULTS: tuple[str, ...] = tuple(TABLE)

#: The faults of enqueue requests: every job-status fault, then ``drop_after``.
ENQUEUE_TABLE: dict[str, Fault] = {
    **TABLE,
    "drop_after": Fault(
        "drop_after",
        "the request is carried out, then the connection is closed without an answer",
        drop=True,
        processed=True,
    ),
}

#: Names of the faults :meth:`Sandbox.inject_enqueue` understands.
ENQUEUE_FAULTS: tuple[str, ...] = tuple(ENQUEUE_TABLE)


def check_fault_names(names: Iterable[str], table: Mapping[str, Fault] = TABLE) -> None:
    """Raise ValueError naming every name that is not in ``table``."""
    unknown = [name for name in names if name not in table]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(table)}")


class FaultPlan:
    """Which fault, if any, the next request about a job (or the next enqueue) meets.

    Injected faults come first, one per request, in order; then one draw of a seeded random
    generator against the shares laid end to end in ``table`` order. Shares of faults that
    are not in ``table`` are left out (``drop_after`` is not drawn for job-status requests).
    Not thread-safe: the sandbox calls it under its lock.
    """

    __slots__ = ("_injected", "_thresholds", "_rng", "_table")

    def __init__(
        self,
        shares: Mapping[str, float] | None,
        seed: object,
        table: Mapping[str, Fault] = TABLE,
        stream: str = "faults",
    ) -> None:
        shares = dict(shares or {})
        check_fault_names(shares, ENQUEUE_TABLE)
        mine = [shares[name] for name in table if name in shares]
        if any(p < 0 for p in shares.values()) or sum(mine) > 1.0:
            raise ValueError("fault probabilities must be >= 0 and sum to at most 1")
        self._table = table
        self._injected: dict[str, deque[Fault]] = {}
        self._thresholds: list[tuple[float, Fault]] = []
        cumulative = 0.0
        for name, fault in table.items():
            if shares.get(name):
                cumulative += shares[name]
                self._thresholds.append((cumulative, fault))
        self._rng = random.Random(f"{seed}-{stream}")

    def inject(self, job_id: str, names: Iterable[str]) -> None:
        names = list(names)
        check_fault_names(names, self._table)
        self._injected.setdefault(job_id, deque()).extend(self._table[name] for name in names)

    def take(self, job_id: str) -> Fault | None:
        queue = self._injected.get(job_id)
        if queue:
            return queue.popleft()
        if self._thresholds:
            draw = self._rng.random()
            for threshold, fault in self._thresholds:
                if draw < threshold:
                    return fault
        return None
