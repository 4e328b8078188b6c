"""Jobs, their planned outcomes, and the bodies the sandbox answers with.

Job bodies are rendered once, when the server's URL is known (at start, or at creation for a
job added later): answering a request only picks the pending or the final body. A job's pending
time runs on the sandbox's clock (``Sandbox(clock=)``): on a `FakeClock`, jobs finish in fake
seconds, as the rate-limit windows pass.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"

FIRST_JOB_ID = 1001
RESOURCE_ID_OFFSET = 4000  # job 1001 created ticket 5001: easy to tell the two apart
JOB_STATUSES = ("success", "failed", "pending")
STATUS_PATH = "/jobs/status/"

#: What a proxy in front of the API might answer instead of the API (the ``html`` fault).
HTML_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>Service temporarily unavailable</title></head>\n"
    b"<body><h1>We'll be right back</h1><p>This page is served by a proxy, not by the API."
    b"</p></body></html>\n"
)
#: A body cut short mid-object (the ``not_json`` fault).
NOT_JSON_BODY = b'{"type": "job", "id"'


def dumps(obj: Any) -> bytes:
    """Compact JSON, as bytes."""
    return json.dumps(obj, separators=(",", ":")).encode()


def error_body(request_id: str, code: str, message: str | None) -> bytes:
    """An ``error.list`` body (the OpenAPI ``error`` schema) with a single error."""
    return dumps(
        {
            "type": "error.list",
            "request_id": request_id,
            "errors": [{"code": code, "message": message}],
        }
    )


class Job:
    """One job: its planned outcome, when it becomes final, and its pre-rendered bodies."""

    __slots__ = ("id", "outcome", "pending_for", "final_at", "pending_body", "final_body", "now")

    def __init__(
        self,
        job_id: str,
        outcome: str,
        pending_for: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = job_id
        self.now = now  # the sandbox clock's monotonic time
        self.outcome = outcome  # "success", "failed", or "pending" (pending forever)
        self.pending_for = pending_for  # seconds after start (or after creation, once started)
        self.final_at = math.inf  # the clock's monotonic time at which the job is final
        self.pending_body = b""
        self.final_body = b""

    def render(self, base_url: str) -> None:
        self.pending_body = dumps(self.as_dict(base_url, final=False))
        self.final_body = dumps(self.as_dict(base_url, final=True))

    def as_dict(self, base_url: str, *, final: bool) -> dict[str, Any]:
        """The job as the OpenAPI ``jobs`` schema has it, pending or final."""
        status = self.outcome if final else "pending"
        resource_id = str(int(self.id) + RESOURCE_ID_OFFSET) if status == "success" else None
        return {
            "type": "job",
            "id": self.id,
            "url": f"{base_url}{STATUS_PATH}{self.id}",
            "status": status,
            "resource_type": "ticket",
            "resource_id": resource_id,
            "resource_url": f"{base_url}/tickets/{resource_id}" if resource_id else None,
        }

    def is_final(self) -> bool:
        return self.now() >= self.final_at

    def body_now(self) -> bytes:
        return self.final_body if self.is_final() else self.pending_body


def job_without_id(job: Job | None, base_url: str) -> bytes:
    """The job's current body without its ``id`` (a pending job's, for an unknown job)."""
    if job is not None:
        obj = job.as_dict(base_url, final=job.is_final())
        del obj["id"]
    else:
        obj = {
            "type": "job",
            "status": "pending",
            "resource_type": "ticket",
            "resource_id": None,
            "resource_url": None,
        }
    return dumps(obj)


class JobStore:
    """The jobs ``"1001"``, ``"1002"``, ... in creation order. Not thread-safe: the sandbox
    calls it under its lock (or before it serves)."""

    __slots__ = ("jobs", "_next_id", "_base_url", "now", "started_at")

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.jobs: dict[str, Job] = {}
        self._next_id = FIRST_JOB_ID
        self._base_url: str | None = None
        self.now = now
        self.started_at: float | None = None  # the clock's monotonic time at start

    def __len__(self) -> int:
        return len(self.jobs)

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def add(self, outcome: str, pending_for: float) -> Job:
        """Create and register a job; once started it is rendered and its clock runs."""
        job = Job(str(self._next_id), outcome, pending_for, self.now)
        self._next_id += 1
        if self._base_url is not None:
            job.render(self._base_url)
            job.final_at = _final_at(job, self.now())
        self.jobs[job.id] = job
        return job

    def start(self, base_url: str) -> None:
        """Render every job for ``base_url`` and start their pending clocks now."""
        self._base_url = base_url
        now = self.started_at = self.now()
        for job in self.jobs.values():
            job.render(base_url)
            job.final_at = _final_at(job, now)

    def finish_all(self) -> None:
        """Make every job final now, except those planned to stay pending forever."""
        now = self.now() if self.started_at is not None else -math.inf
        for job in self.jobs.values():
            if job.outcome != "pending":
                job.pending_for = 0.0
                job.final_at = min(job.final_at, now)  # final from now (recorded so)

    def final_since(self, job: Job) -> float | None:
        """Seconds after start at which ``job`` became final (0: final at start), on the
        store's clock; None while it is not final."""
        started = self.started_at
        if started is None or not job.is_final():
            return None
        return max(0.0, job.final_at - started)


def _final_at(job: Job, since: float) -> float:
    if job.outcome == "pending":
        return math.inf
    if job.final_at == -math.inf:  # finish_all() before start()
        return -math.inf
    return since + job.pending_for if job.pending_for > 0 else -math.inf
