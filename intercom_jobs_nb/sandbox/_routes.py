"""Routes: which API path a request names, and the decision taken for it.

A new route is one row of :data:`ROUTES` (its path, a new route number and its method), plus
its answer in ``Sandbox._route_locked`` (``_sandbox.py``). Paths are matched segment by
segment after percent-decoding each segment (``/jobs/status/%31%30`` is job ``10``); a
decoded ``/`` stays inside its segment, so ``/jobs/status/1%2F2`` names no job. A path
parameter may only be the last segment.
"""

from __future__ import annotations

from urllib.parse import unquote

from ._faults import Fault
from ._ratelimit import Admission
from ._store import Job

# Route numbers, as the handler classifies a request before counting it.
R_NONE, R_METHOD, R_STATUS, R_ENQUEUE, R_ME, R_TICKET = range(6)

#: API paths: path -> (route number, the one method it answers; HEAD goes with GET).
ROUTES: dict[str, tuple[int, str]] = {
    "/jobs/status/{job_id}": (R_STATUS, "GET"),
    "/tickets/enqueue": (R_ENQUEUE, "POST"),
    "/me": (R_ME, "GET"),
    "/tickets/{ticket_id}": (R_TICKET, "GET"),  # /tickets/enqueue is the static path above
}

_STATIC = {tuple(p.split("/")[1:]): v for p, v in ROUTES.items() if "{" not in p}
_WITH_PARAM = {tuple(p.split("/")[1:-1]): v for p, v in ROUTES.items() if p.endswith("}")}
assert len(_STATIC) + len(_WITH_PARAM) == len(ROUTES), "a path parameter must come last"

_NO_ROUTE = (R_NONE, None, "")


def classify(path: str, method: str) -> tuple[int, str | None, str]:
    """Route a request path (without its query).

    Returns:
        ``(route, parameter, allowed)``: the route number (``R_METHOD`` for a known path asked
        with another method, ``R_NONE`` for an unknown path), the decoded path parameter (the
        job or ticket id) or None, and the method the path answers ("" if unknown).
    """
    segments = path.split("/")
    if segments[0]:  # not an absolute path
        return _NO_ROUTE
    if "%" in path:
        segments = [unquote(segment) for segment in segments]
    key = tuple(segments[1:])
    param = None
    found = _STATIC.get(key)
    if found is None:
        found = _WITH_PARAM.get(key[:-1])
        param = key[-1] if key else ""
        if found is None or not param or "/" in param:
            return _NO_ROUTE
    route, allowed = found
    if method != allowed and not (method == "HEAD" and allowed == "GET"):
        return R_METHOD, param, allowed
    return route, param, allowed


class Decision:
    """What the counting step decided for one request (built under the sandbox lock)."""

    __slots__ = ("code", "error", "fault", "rate", "job", "body")

    def __init__(
        self,
        code: int,
        error: tuple[str, str] | None = None,
        fault: Fault | None = None,
        rate: Admission | None = None,
        job: Job | None = None,
        body: bytes | None = None,
    ) -> None:
        self.code = code  # HTTP status; 0 when no answer is sent (the drop fault)
        self.error = error  # (code, message) of an error.list body
        self.fault = fault
        self.rate = rate  # the rate limiter's verdict, for the X-RateLimit-* headers
        self.job = job  # the job whose current body answers a 200
        self.body = body  # a fixed body answering a 200 (no job)
