"""A stand-in for Intercom as a plain function, for `ij.MockTransport`: tests of what lies above
the network (the engine, the panel's table, enqueue's rules) run on it with no socket.

`MockIntercom(jobs)` answers ``GET /jobs/status/{id}`` from ``jobs`` (id -> status), a 404
``job_not_found`` for any other id, ``GET /me`` as workspace ``acme``, and
``POST /tickets/enqueue`` from ``enqueue`` (a function of the body, default: a job named for the
body's title). It counts the requests by path.
"""

from __future__ import annotations

import threading
from collections import Counter

import intercom_jobs_nb as ij


def error(status: int, code: str, message: str = "") -> ij.Response:
    """An Intercom ``error.list`` answer."""
    return ij.Response(
        status, json={"type": "error.list", "errors": [{"code": code, "message": message}]}
    )


def made_jobs(n: int, start: int = 5001) -> dict[str, str]:
    """``n`` jobs: a tenth failed, a fifth pending for good, the rest succeeded."""
    return {
        str(start + i): "failed" if i % 10 == 0 else "pending" if i % 5 == 1 else "success"
        for i in range(n)
    }


class MockIntercom:
    def __init__(self, jobs=None, enqueue=None):
        self.jobs = dict(jobs or {})
        self.enqueue = enqueue or (lambda body: {"type": "job", "id": f"j-{body['key']}"})
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: ij.Request):
        path = request.path
        with self._lock:
            self.requests[path] = self.requests[path] + 1
        if path == "/me":
            return {"type": "admin", "app": {"id_code": "acme"}}
        if path == "/tickets/enqueue" and request.method == "POST":
            return self.enqueue(request.json())
        kind, _, job_id = path.rpartition("/")
        if kind == "/jobs/status" and job_id in self.jobs:
            status = self.jobs[job_id]
            done = status == "success"
            return {
                "type": "job",
                "id": job_id,
                "status": status,
                "resource_type": "ticket" if done else None,
                "resource_id": str(int(job_id) + 70000) if done else None,
                "url": f"https://api.intercom.io/jobs/status/{job_id}",
            }
        return error(404, "job_not_found", "Job Not Found")

    @property
    def transport(self) -> ij.MockTransport:
        return ij.MockTransport(self)
