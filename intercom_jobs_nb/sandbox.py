"""A local stand-in for Intercom's job-status API ("Intercom on your laptop").

:class:`Sandbox` runs an HTTP/1.1 server on a free loopback port that answers
``GET /jobs/status/{job_id}`` the way Intercom's API 2.15 does: the same bodies (the OpenAPI
``jobs`` and ``error`` schemas), bearer-token auth, the ``Intercom-Version`` header, and the
fixed-window rate limit with its ``X-RateLimit-*`` headers. It also answers
``POST /tickets/enqueue`` (which creates a pending job), and lets a test steer it: jobs whose
outcome follows from a seed, jobs that stay pending for a while (or forever), added jobs,
injected faults (5xx, dropped connections, slow or malformed answers), added latency and a
skewed server clock. Counters are kept for benchmarks and served at ``GET /__sandbox/stats``
(``POST /__sandbox/reset_stats`` clears them); these two control paths need no token and are
left out of the counters.

Standard library only, so it can run anywhere the package does.

Example:
    >>> import requests
    >>> from intercom_jobs_nb.sandbox import Sandbox
    >>> with Sandbox(jobs=3, seed=0, pending_share=0.0, failed_share=0.0) as sb:
    ...     r = requests.get(f"{sb.base_url}/jobs/status/{sb.job_ids[0]}",
    ...                      headers={"Authorization": f"Bearer {sb.token}"})
    ...     r.json()["status"], r.headers["X-RateLimit-Remaining"]
    ('success', '9999')
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

__all__ = ["FAULTS", "INTERCOM_VERSIONS", "DEFAULT_TOKEN", "Sandbox"]

#: Names of the faults :meth:`Sandbox.inject` and ``Sandbox(faults=...)`` understand.
FAULTS: tuple[str, ...] = (
    "server_error",
    "service_unavailable",
    "drop",
    "slow",
    "html",
    "not_json",
    "no_id",
    "rate_limit",
)

#: Values of ``Intercom-Version`` that are accepted: the ``intercom_version`` enum of the
#: 2.15 OpenAPI description, plus the two named versions Intercom also serves.
INTERCOM_VERSIONS: tuple[str, ...] = (
    *(f"1.{minor}" for minor in range(5)),
    *(f"2.{minor}" for minor in range(16)),
    "Preview",
    "Unstable",
)

#: The bearer token a sandbox accepts unless told otherwise; readable on purpose.
DEFAULT_TOKEN = "sandbox-token"

_FIRST_JOB_ID = 1001
_RESOURCE_ID_OFFSET = 4000  # job 1001 created ticket 5001: easy to tell the two apart
_ENQUEUE_PENDING_SECONDS = (1.0, 5.0)
_JOB_STATUSES = ("success", "failed", "pending")
_JSON = "application/json; charset=utf-8"
_HTML = "text/html; charset=utf-8"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_HTML_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>Service temporarily unavailable</title></head>\n"
    b"<body><h1>We'll be right back</h1><p>This page is served by a proxy, not by the API."
    b"</p></body></html>\n"
)
_NOT_JSON_BODY = b'{"type": "job", "id"'  # a body cut short mid-object
_CONTROL_PREFIX = "/__sandbox/"
_STATUS_PREFIX = "/jobs/status/"

# Routes, as the handler classifies a request before counting it.
_R_STATUS, _R_ENQUEUE, _R_METHOD, _R_NONE = range(4)


class _Job:
    """One job: its planned outcome, when it becomes final, and its pre-rendered bodies."""

    __slots__ = ("id", "outcome", "pending_for", "final_at", "pending_body", "final_body")

    def __init__(self, job_id: str, outcome: str, pending_for: float) -> None:
        self.id = job_id
        self.outcome = outcome  # "success", "failed", or "pending" (pending forever)
        self.pending_for = pending_for  # seconds after start (or after creation, once started)
        self.final_at = math.inf  # time.monotonic() at which the job is final
        self.pending_body = b""
        self.final_body = b""

    def render(self, base_url: str) -> None:
        self.pending_body = _dumps(self.as_dict(base_url, final=False))
        self.final_body = _dumps(self.as_dict(base_url, final=True))

    def as_dict(self, base_url: str, *, final: bool) -> dict[str, Any]:
        status = self.outcome if final else "pending"
        resource_id = str(int(self.id) + _RESOURCE_ID_OFFSET) if status == "success" else None
        return {
            "type": "job",
            "id": self.id,
            "url": f"{base_url}{_STATUS_PREFIX}{self.id}",
            "status": status,
            "resource_type": "ticket",
            "resource_id": resource_id,
            "resource_url": f"{base_url}/tickets/{resource_id}" if resource_id else None,
        }

    def is_final(self) -> bool:
        return time.monotonic() >= self.final_at

    def body_now(self) -> bytes:
        return self.final_body if time.monotonic() >= self.final_at else self.pending_body


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error_body(request_id: str, code: str, message: str | None) -> bytes:
    return _dumps(
        {
            "type": "error.list",
            "request_id": request_id,
            "errors": [{"code": code, "message": message}],
        }
    )


class _Decision:
    """What the counting step decided for one request (built under the sandbox lock)."""

    __slots__ = ("code", "error", "fault", "rate_headers", "job")

    def __init__(
        self,
        code: int,
        error: tuple[str, str] | None = None,
        fault: str | None = None,
        rate_headers: str = "",
        job: _Job | None = None,
    ) -> None:
        self.code = code
        self.error = error
        self.fault = fault
        self.rate_headers = rate_headers
        self.job = job


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "intercom-jobs-nb-sandbox"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: a benchmark's stderr is not a log file."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        return self.server.sandbox._http_date(timestamp)

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _send(
        self, code: int, body: bytes, *, request_id: str, content_type: str = _JSON, extra: str = ""
    ) -> None:
        # One write per answer: the head is built by hand instead of send_header() calls.
        head = (
            f"HTTP/1.1 {code} {_REASONS.get(code, '')}\r\n"
            f"Server: {self.server_version}\r\n"
            f"Date: {self.date_time_string()}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Request-Id: {request_id}\r\n"
            f"{extra}"
        )
        if self.close_connection:
            head += "Connection: close\r\n"
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)

    def _send_error(self, code: int, error: tuple[str, str | None], *, extra: str = "") -> None:
        request_id = str(uuid.uuid4())
        body = _error_body(request_id, *error)
        self._send(code, body, request_id=request_id, extra=extra)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self, method: str) -> None:
        sb = self.server.sandbox
        body = self._read_body()
        if body is None:
            self.close_connection = True
            self._send_error(400, ("parameter_invalid", "Invalid Content-Length"))
            return
        path = self.path.split("?", 1)[0]
        if path.startswith(_CONTROL_PREFIX):
            self._control(sb, method, path)
            return

        job_id: str | None = None
        allowed = ""
        if path.startswith(_STATUS_PREFIX) and len(path) > len(_STATUS_PREFIX):
            job_id = path[len(_STATUS_PREFIX) :]
            route, allowed = (_R_STATUS, "GET") if "/" not in job_id else (_R_NONE, "")
        elif path == "/tickets/enqueue":
            route, allowed = _R_ENQUEUE, "POST"
        else:
            route = _R_NONE
        if route != _R_NONE and method != allowed:
            route = _R_METHOD
        body_ok = True
        if route == _R_ENQUEUE:
            try:
                json.loads(body)
            except ValueError:
                body_ok = False

        d = sb._admit(
            route,
            job_id,
            self.headers.get("Authorization") == sb._auth_header,
            self.headers.get("Intercom-Version"),
            body_ok,
        )
        try:
            self._answer(sb, d, allowed)
        finally:
            sb._leave()

    def _answer(self, sb: Sandbox, d: _Decision, allowed: str) -> None:
        if sb.latency:
            time.sleep(sb.latency)
        fault = d.fault
        if fault == "drop":
            self.close_connection = True
            return
        if fault == "slow":
            sb._stopping.wait(sb.slow_seconds)
        if sb._stopping.is_set():  # a server going down does not answer
            self.close_connection = True
            return
        if d.error is not None:
            extra = d.rate_headers + (f"Allow: {allowed}\r\n" if d.code == 405 else "")
            self._send_error(d.code, d.error, extra=extra)
            return
        request_id = str(uuid.uuid4())
        job = d.job
        if fault == "html":
            self._send(
                200, _HTML_BODY, request_id=request_id, content_type=_HTML, extra=d.rate_headers
            )
            return
        if fault == "not_json":
            body = _NOT_JSON_BODY
        elif fault == "no_id":
            if job is not None:
                obj = job.as_dict(sb.base_url, final=job.is_final())
            else:
                obj = {
                    "type": "job",
                    "status": "pending",
                    "resource_type": "ticket",
                    "resource_id": None,
                    "resource_url": None,
                }
            obj.pop("id", None)
            body = _dumps(obj)
        else:
            assert job is not None
            body = job.body_now()
        self._send(200, body, request_id=request_id, extra=d.rate_headers)

    def _control(self, sb: Sandbox, method: str, path: str) -> None:
        name = path[len(_CONTROL_PREFIX) :]
        wanted = {"stats": "GET", "reset_stats": "POST"}.get(name)
        if wanted is None:
            self._send_error(404, ("not_found", "Resource Not Found"))
        elif method != wanted:
            self._send_error(
                405, ("method_not_allowed", "Method Not Allowed"), extra=f"Allow: {wanted}\r\n"
            )
        else:
            if name == "reset_stats":
                sb.reset_stats()
            body = json.dumps(sb.stats).encode()
            self._send(200, body, request_id=str(uuid.uuid4()))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the default 5 resets connections under 30+ concurrent clients

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls getfqdn(), which can stall on a DNS lookup.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Swallow errors from clients that went away; never write to stderr."""

    def track(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            # shutdown() wakes the handler thread blocked in recv(); it closes the socket itself.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Sandbox:
    """A local Intercom job-status API, for tests, benchmarks, demos and notebooks.

    Jobs ``"1001"``, ``"1002"``, ... are created at construction; each one's outcome follows
    from ``seed``: failed with probability ``failed_share``, else success, and, with
    probability ``pending_share``, pending for ``uniform(*pending_seconds)`` seconds after
    :meth:`start`. A successful job names its ticket (``resource_id`` = job id + 4000).

    Args:
        jobs: How many jobs to create.
        seed: Seed for the jobs' outcomes and for random faults.
        latency: Seconds slept before each answer, to stand in for the network.
        rate_limit: Requests allowed per window, or None for no limit (and no headers).
        window: Length of the fixed rate-limit windows, in seconds, aligned to the server clock.
        failed_share: Probability that a job fails.
        pending_share: Probability that a job is pending at start.
        pending_seconds: Range of a pending job's pending time; use e.g. ``(1e9, 1e9)`` for
            jobs that stay pending until :meth:`finish_all`.
        faults: Probability per authenticated job-status request of each fault in
            :data:`FAULTS`, e.g. ``{"server_error": 0.05, "drop": 0.02}``.
        slow_seconds: How long the ``"slow"`` fault waits before answering.
        clock_skew: Seconds added to the server clock (``Date`` header and rate-limit windows).
        token: The bearer token to accept; :data:`DEFAULT_TOKEN` by default.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.

    Example:
        >>> with Sandbox(jobs=10, rate_limit=5, window=10) as sb:
        ...     sb.inject(sb.job_ids[0], "server_error", "drop")
        ...     url = f"{sb.base_url}/jobs/status/{sb.job_ids[0]}"
    """

    def __init__(
        self,
        jobs: int = 2000,
        *,
        seed: int = 0,
        latency: float = 0.0,
        rate_limit: int | None = 10_000,
        window: int = 10,
        failed_share: float = 0.1,
        pending_share: float = 0.2,
        pending_seconds: tuple[float, float] = (1.0, 5.0),
        faults: Mapping[str, float] | None = None,
        slow_seconds: float = 5.0,
        clock_skew: float = 0.0,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if jobs < 0:
            raise ValueError("jobs must be >= 0")
        if latency < 0 or slow_seconds < 0:
            raise ValueError("latency and slow_seconds must be >= 0")
        if rate_limit is not None and rate_limit < 0:
            raise ValueError("rate_limit must be >= 0 or None")
        if int(window) != window or window < 1:
            raise ValueError("window must be a whole number of seconds >= 1")
        for name, share in (("failed_share", failed_share), ("pending_share", pending_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        low, high = pending_seconds
        if not 0 <= low <= high:
            raise ValueError("pending_seconds must be (low, high) with 0 <= low <= high")
        fault_shares = dict(faults or {})
        _check_fault_names(fault_shares)
        if any(p < 0 for p in fault_shares.values()) or sum(fault_shares.values()) > 1.0:
            raise ValueError("fault probabilities must be >= 0 and sum to at most 1")

        self.seed = seed
        self.latency = float(latency)
        self.rate_limit = rate_limit
        self.window = int(window)
        self.slow_seconds = float(slow_seconds)
        self.clock_skew = float(clock_skew)
        self.host = host
        self.port = port
        self.token = DEFAULT_TOKEN if token is None else token
        self._auth_header = f"Bearer {self.token}"
        self._versions = frozenset(INTERCOM_VERSIONS)

        # Random faults as cumulative thresholds, in FAULTS order: one draw per request.
        self._fault_thresholds: list[tuple[float, str]] = []
        cumulative = 0.0
        for name in FAULTS:
            if fault_shares.get(name):
                cumulative += fault_shares[name]
                self._fault_thresholds.append((cumulative, name))
        self._fault_rng = random.Random(f"{seed}-faults")
        self._enqueue_rng = random.Random(f"{seed}-enqueue")

        self._lock = threading.Lock()
        self._started_at: float | None = None
        self._base_url: str | None = None
        self._jobs: dict[str, _Job] = {}
        self._next_id = _FIRST_JOB_ID
        rng = random.Random(seed)
        for _ in range(jobs):
            # Three draws per job whatever the shares, so changing one share keeps the others.
            failed = rng.random() < failed_share
            pending = rng.random() < pending_share
            pending_for = rng.uniform(low, high)
            self._new_job("failed" if failed else "success", pending_for if pending else 0.0)
        self.job_ids: list[str] = list(self._jobs)

        self._injected: dict[str, deque[str]] = {}
        self._win_index = -1  # rate-limit window being counted
        self._win_count = 0
        self._stats_win_index = -1  # window the current stats row belongs to
        self._stats_win: list[int] = [0, 0]
        self._in_flight = 0
        self._reset_stats_locked()

        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._date_cache: tuple[int, str] = (-1, "")

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind the port and serve in a background thread.

        Returns:
            The sandbox itself, so ``sb = Sandbox().start()`` works.

        Raises:
            RuntimeError: If the sandbox was already started.
        """
        if self._server is not None or self._stopping.is_set():
            raise RuntimeError("a Sandbox can be started once")
        server = _Server((self.host, self.port), self)
        host, port = server.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        self._base_url = f"http://{shown}:{port}"
        with self._lock:
            self._started_at = time.monotonic()
            for job in self._jobs.values():
                job.render(self._base_url)
                job.final_at = self._final_at(job, self._started_at)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits at most this long for the loop
            name=f"intercom-sandbox-{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the listening socket and every open connection.

        Safe to call twice. Handlers waiting in a ``"slow"`` fault are woken at once.
        """
        server = self._server
        self._stopping.set()
        if server is None:
            return
        self._server = None
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def serve_forever(self) -> None:
        """Start (if needed) and block until :meth:`stop` is called or Ctrl-C is pressed."""
        if self._server is None:
            self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = (
            "running"
            if self._server is not None
            else ("stopped" if self._stopping.is_set() else "not started")
        )
        where = self._base_url or f"http://{self.host}:{self.port}"
        return (
            f"Sandbox({where}, jobs={len(self._jobs)}, rate_limit={self.rate_limit}"
            f"/{self.window}s, latency={self.latency}, {state})"
        )

    @property
    def base_url(self) -> str:
        """The server's root URL, e.g. ``"http://127.0.0.1:54321"`` (known once started)."""
        if self._base_url is None:
            raise RuntimeError("the Sandbox is not started; use start() or a with block")
        return self._base_url

    # -- control ---------------------------------------------------------------------------

    def inject(self, job_id: str, *faults: str) -> None:
        """Queue faults for the next requests about ``job_id``, one per request, in order.

        Only authenticated requests with a valid ``Intercom-Version`` that are within the rate
        limit consume them; afterwards the job is answered normally again.

        Args:
            job_id: The job whose next requests misbehave (need not exist).
            *faults: Names from :data:`FAULTS`.

        Raises:
            ValueError: For an unknown fault name.

        Example:
            >>> sb.inject("1003", "server_error", "drop")  # doctest: +SKIP
        """
        _check_fault_names(faults)
        with self._lock:
            self._injected.setdefault(str(job_id), deque()).extend(faults)

    def add_job(self, status: str = "success", pending_for: float | None = None) -> str:
        """Create a job and return its id.

        Args:
            status: The job's final outcome: ``"success"``, ``"failed"``, or ``"pending"`` for
                a job that never finishes (not even with :meth:`finish_all`).
            pending_for: Seconds the job is pending before ``status`` applies; None for final
                at once. Counted from now, or from :meth:`start` if not started yet.

        Returns:
            The new job's id.
        """
        if status not in _JOB_STATUSES:
            raise ValueError(f"status must be one of {_JOB_STATUSES}, not {status!r}")
        if pending_for is not None and pending_for < 0:
            raise ValueError("pending_for must be >= 0 or None")
        with self._lock:
            return self._new_job(status, pending_for or 0.0).id

    def finish_all(self) -> None:
        """Make every pending job final now, with its planned outcome.

        Jobs added with ``add_job(status="pending")`` have no other outcome and stay pending.
        """
        with self._lock:
            for job in self._jobs.values():
                if job.outcome != "pending":
                    job.pending_for = 0.0
                    job.final_at = -math.inf

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters since start or the last :meth:`reset_stats`.

        Keys: ``requests`` (every request received, control paths aside), ``by_status``
        ``{code: n}``, ``per_job`` ``{job_id: n}``, ``windows`` (``[{"start": epoch,
        "served": n, "rejected": n_429}, ...]`` for authenticated requests, oldest first),
        ``max_in_flight``, ``versions`` ``{Intercom-Version: n}`` and ``faults``
        ``{name: n}``.
        """
        with self._lock:
            return {
                "requests": self._requests,
                "by_status": dict(self._by_status),
                "per_job": dict(self._per_job),
                "windows": [
                    {"start": index * self.window, "served": row[0], "rejected": row[1]}
                    for index, row in self._windows.items()
                ],
                "max_in_flight": self._max_in_flight,
                "versions": dict(self._versions_seen),
                "faults": dict(self._faults_seen),
            }

    def reset_stats(self) -> None:
        """Clear the counters (the rate-limit budget of the current window is kept)."""
        with self._lock:
            self._reset_stats_locked()

    # -- internals -------------------------------------------------------------------------

    def _reset_stats_locked(self) -> None:
        self._requests = 0
        self._by_status: dict[int, int] = {}
        self._per_job: dict[str, int] = {}
        self._windows: dict[int, list[int]] = {}
        self._stats_win_index = -1
        self._max_in_flight = self._in_flight
        self._versions_seen: dict[str, int] = {}
        self._faults_seen: dict[str, int] = {}

    def _new_job(self, outcome: str, pending_for: float) -> _Job:
        """Create and register a job; the caller holds the lock (or is __init__)."""
        job = _Job(str(self._next_id), outcome, pending_for)
        self._next_id += 1
        if self._base_url is not None and self._started_at is not None:
            job.render(self._base_url)
            job.final_at = self._final_at(job, time.monotonic())
        self._jobs[job.id] = job
        return job

    @staticmethod
    def _final_at(job: _Job, since: float) -> float:
        if job.outcome == "pending":
            return math.inf
        if job.final_at == -math.inf:  # finish_all() before start()
            return -math.inf
        return since + job.pending_for if job.pending_for > 0 else -math.inf

    def _http_date(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return email.utils.formatdate(timestamp, usegmt=True)
        now = int(time.time() + self.clock_skew)
        cached = self._date_cache
        if cached[0] == now:
            return cached[1]
        text = email.utils.formatdate(now, usegmt=True)
        self._date_cache = (now, text)
        return text

    def _admit(
        self,
        route: int,
        job_id: str | None,
        authorized: bool,
        version: str | None,
        body_ok: bool,
    ) -> _Decision:
        """Count one request and decide its answer: the one lock section per request."""
        with self._lock:
            self._in_flight += 1
            if self._in_flight > self._max_in_flight:
                self._max_in_flight = self._in_flight
            self._requests += 1
            if route == _R_STATUS:
                self._per_job[job_id] = self._per_job.get(job_id, 0) + 1  # type: ignore[index]
            if not authorized:
                return self._decided(_Decision(401, ("unauthorized", "Access Token Invalid")))
            if version is not None:
                self._versions_seen[version] = self._versions_seen.get(version, 0) + 1

            now = time.time() + self.clock_skew
            index = int(now // self.window)
            if index > self._win_index:
                self._win_index, self._win_count = index, 0
            else:
                index = self._win_index  # a thread that read the clock late stays in the window
            if index != self._stats_win_index:
                self._stats_win_index = index
                self._stats_win = self._windows.setdefault(index, [0, 0])
            limit = self.rate_limit
            rate_headers = ""
            if limit is not None:
                self._win_count += 1
                reset = (index + 1) * self.window
                if self._win_count > limit:
                    self._stats_win[1] += 1
                    headers = self._rate_headers(0, reset)
                    return self._decided(_Decision(429, self._rate_error(), rate_headers=headers))
                rate_headers = self._rate_headers(limit - self._win_count, reset)

            d = self._route_locked(route, job_id, version, body_ok, rate_headers)
            if d.code == 429:  # the "rate_limit" fault: a 429 that costs no budget
                if limit is not None:
                    self._win_count -= 1
                    d.rate_headers = self._rate_headers(0, (index + 1) * self.window)
                self._stats_win[1] += 1
            else:
                self._stats_win[0] += 1
            return self._decided(d)

    def _route_locked(
        self, route: int, job_id: str | None, version: str | None, body_ok: bool, rate: str
    ) -> _Decision:
        if version is not None and version not in self._versions:
            return _Decision(
                400,
                ("intercom_version_invalid", f"Requested version {version!r} is not valid"),
                rate_headers=rate,
            )
        if route == _R_STATUS:
            job = self._jobs.get(job_id)  # type: ignore[arg-type]
            fault = self._take_fault(job_id)  # type: ignore[arg-type]
            if fault is not None:
                self._faults_seen[fault] = self._faults_seen.get(fault, 0) + 1
                if fault == "server_error":
                    return _Decision(500, ("server_error", "Server Error"), fault, rate)
                if fault == "service_unavailable":
                    return _Decision(
                        503, ("service_unavailable", "Service Unavailable"), fault, rate
                    )
                if fault == "rate_limit":
                    return _Decision(429, self._rate_error(), fault)
                if fault == "drop":
                    return _Decision(0, None, fault)
                if fault in ("html", "not_json", "no_id"):
                    return _Decision(200, None, fault, rate, job)
            if job is None:
                return _Decision(404, ("job_not_found", "Job Not Found"), fault, rate)
            return _Decision(200, None, fault, rate, job)
        if route == _R_ENQUEUE:
            if not body_ok:
                return _Decision(
                    400, ("parameter_invalid", "Request body is not valid JSON"), rate_headers=rate
                )
            job = self._new_job("success", self._enqueue_rng.uniform(*_ENQUEUE_PENDING_SECONDS))
            return _Decision(200, None, None, rate, job)
        if route == _R_METHOD:
            return _Decision(405, ("method_not_allowed", "Method Not Allowed"), rate_headers=rate)
        return _Decision(404, ("not_found", "Resource Not Found"), rate_headers=rate)

    def _take_fault(self, job_id: str) -> str | None:
        queue = self._injected.get(job_id)
        if queue:
            return queue.popleft()
        if self._fault_thresholds:
            draw = self._fault_rng.random()
            for threshold, name in self._fault_thresholds:
                if draw < threshold:
                    return name
        return None

    def _decided(self, d: _Decision) -> _Decision:
        if d.code:  # a dropped connection has no status
            self._by_status[d.code] = self._by_status.get(d.code, 0) + 1
        return d

    def _rate_error(self) -> tuple[str, str]:
        if self.rate_limit is None:  # only the "rate_limit" fault gets here
            return ("rate_limit_exceeded", "Exceeded rate limit")
        return (
            "rate_limit_exceeded",
            f"Exceeded rate limit of {self.rate_limit} in {self.window}_seconds",
        )

    def _rate_headers(self, remaining: int, reset: int) -> str:
        return (
            f"X-RateLimit-Limit: {self.rate_limit}\r\n"
            f"X-RateLimit-Remaining: {max(0, remaining)}\r\n"
            f"X-RateLimit-Reset: {reset}\r\n"
        )

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _check_fault_names(names: Iterable[str]) -> None:
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
