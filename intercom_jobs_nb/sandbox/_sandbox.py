"""The :class:`Sandbox` front: options, lifecycle, test controls, and the per-request decision."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from ._faults import FaultPlan
from ._http import Server
from ._ratelimit import Admission, FixedWindow
from ._routes import R_ENQUEUE, R_ME, R_METHOD, R_STATUS, Decision
from ._stats import Stats
from ._store import JOB_STATUSES, JobStore
from ._versions import INTERCOM_VERSIONS
from ._workspaces import DEFAULT_TOKEN, DEFAULT_WORKSPACE, Workspace, workspaces_by_auth

_ENQUEUE_PENDING_SECONDS = (1.0, 5.0)
_UNAUTHORIZED = ("unauthorized", "Access Token Invalid")
_JOB_NOT_FOUND = ("job_not_found", "Job Not Found")
_NOT_FOUND = ("not_found", "Resource Not Found")
_METHOD_NOT_ALLOWED = ("method_not_allowed", "Method Not Allowed")
_NOT_JSON = ("parameter_invalid", "Request body is not valid JSON")


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
        workspace: The ``id_code`` of the token's workspace, as ``GET /me`` answers it.
        tokens: Extra tokens to accept, each mapped to its workspace's ``id_code`` (the same
            as ``workspace`` or another). Every token sees the same jobs and shares the one
            rate limit; ``GET /me`` answers the admin of the token's workspace, one admin id
            per workspace.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.

    Attributes:
        token: The main token.
        workspace: Its workspace's ``id_code``.
        tokens: The extra tokens, as given (a copy).
        job_ids: The ids of the jobs created at construction.

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
        workspace: str = DEFAULT_WORKSPACE,
        tokens: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if jobs < 0:
            raise ValueError("jobs must be >= 0")
        if latency < 0 or slow_seconds < 0:
            raise ValueError("latency and slow_seconds must be >= 0")
        self._limiter = FixedWindow(rate_limit, window, clock=self._server_time)
        for name, share in (("failed_share", failed_share), ("pending_share", pending_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        low, high = pending_seconds
        if not 0 <= low <= high:
            raise ValueError("pending_seconds must be (low, high) with 0 <= low <= high")
        self._faults = FaultPlan(faults, seed)

        self.seed = seed
        self.latency = float(latency)
        self.slow_seconds = float(slow_seconds)
        self.clock_skew = float(clock_skew)
        self.host = host
        self.port = port
        self.token = DEFAULT_TOKEN if token is None else token
        self.workspace = workspace
        self.tokens: dict[str, str] = dict(tokens or {})
        # Authorization header value -> workspace: read by the handler without the lock.
        self._workspaces: dict[str, Workspace] = workspaces_by_auth(
            self.token, workspace, self.tokens
        )
        self._versions = frozenset(INTERCOM_VERSIONS)
        self._enqueue_rng = random.Random(f"{seed}-enqueue")

        self._lock = threading.Lock()
        self._base_url: str | None = None
        self._store = JobStore()
        rng = random.Random(seed)
        for _ in range(jobs):
            # Three draws per job whatever the shares, so changing one share keeps the others.
            failed = rng.random() < failed_share
            pending = rng.random() < pending_share
            pending_for = rng.uniform(low, high)
            self._store.add("failed" if failed else "success", pending_for if pending else 0.0)
        self.job_ids: list[str] = list(self._store.jobs)

        self._stats = Stats()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

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
        server = Server((self.host, self.port), self)
        host, port = server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{host}]" if ":" in host else host
        self._base_url = f"http://{shown}:{port}"
        with self._lock:
            self._store.start(self._base_url)
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
            f"Sandbox({where}, jobs={len(self._store)}, rate_limit={self.rate_limit}"
            f"/{self.window}s, latency={self.latency}, {state})"
        )

    @property
    def base_url(self) -> str:
        """The server's root URL, e.g. ``"http://127.0.0.1:54321"`` (known once started)."""
        if self._base_url is None:
            raise RuntimeError("the Sandbox is not started; use start() or a with block")
        return self._base_url

    @property
    def rate_limit(self) -> int | None:
        """Requests allowed per window, or None for no limit."""
        return self._limiter.limit

    @property
    def window(self) -> int:
        """Length of the rate-limit windows, in seconds."""
        return self._limiter.window

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
        with self._lock:
            self._faults.inject(str(job_id), faults)

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
        if status not in JOB_STATUSES:
            raise ValueError(f"status must be one of {JOB_STATUSES}, not {status!r}")
        if pending_for is not None and pending_for < 0:
            raise ValueError("pending_for must be >= 0 or None")
        with self._lock:
            return self._store.add(status, pending_for or 0.0).id

    def finish_all(self) -> None:
        """Make every pending job final now, with its planned outcome.

        Jobs added with ``add_job(status="pending")`` have no other outcome and stay pending.
        """
        with self._lock:
            self._store.finish_all()

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
            return self._stats.snapshot(self.window)

    def reset_stats(self) -> None:
        """Clear the counters (the rate-limit budget of the current window is kept)."""
        with self._lock:
            self._stats.reset()

    # -- internals -------------------------------------------------------------------------

    def _server_time(self) -> float:
        """The server clock: epoch seconds, skewed by ``clock_skew``."""
        return time.time() + self.clock_skew

    def _admit(
        self,
        route: int,
        job_id: str | None,
        workspace: Workspace | None,
        version: str | None,
        body_ok: bool,
    ) -> Decision:
        """Count one request and decide its answer: the one lock section per request.

        ``workspace`` is that of the request's token, None for no or an unknown token.
        """
        with self._lock:
            stats = self._stats
            stats.enter()
            if route == R_STATUS:
                key = job_id or ""
                stats.per_job[key] = stats.per_job.get(key, 0) + 1
            if workspace is None:
                return self._decided(Decision(401, _UNAUTHORIZED))
            if version is not None:
                stats.versions[version] = stats.versions.get(version, 0) + 1

            rate = self._limiter.admit()
            row = stats.window(rate.window_index)
            if not rate.allowed:
                row[1] += 1
                return self._decided(Decision(429, self._limiter.error(), rate=rate))

            d = self._route_locked(route, job_id, workspace, version, body_ok, rate)
            if d.fault is not None and d.fault.rate_limited:  # a 429 that costs no budget
                d.rate = self._limiter.refund(rate)
                row[1] += 1
            else:
                row[0] += 1
            return self._decided(d)

    def _route_locked(
        self,
        route: int,
        job_id: str | None,
        workspace: Workspace,
        version: str | None,
        body_ok: bool,
        rate: Admission,
    ) -> Decision:
        """The answer to an authenticated request within the rate limit, by route."""
        if version is not None and version not in self._versions:
            error = ("intercom_version_invalid", f"Requested version {version!r} is not valid")
            return Decision(400, error, rate=rate)
        if route == R_STATUS:
            job = self._store.get(job_id)  # type: ignore[arg-type]
            fault = self._faults.take(job_id)  # type: ignore[arg-type]
            if fault is not None:
                seen = self._stats.faults
                seen[fault.name] = seen.get(fault.name, 0) + 1
                if fault.drop:
                    return Decision(0, None, fault)
                if fault.rate_limited:
                    return Decision(429, self._limiter.error(), fault, rate)
                if fault.status is not None:
                    return Decision(fault.status, fault.error, fault, rate, job)
            if job is None:
                return Decision(404, _JOB_NOT_FOUND, fault, rate)
            return Decision(200, None, fault, rate, job)
        if route == R_ME:
            return Decision(200, rate=rate, body=workspace.me_body)
        if route == R_ENQUEUE:
            if not body_ok:
                return Decision(400, _NOT_JSON, rate=rate)
            job = self._store.add("success", self._enqueue_rng.uniform(*_ENQUEUE_PENDING_SECONDS))
            return Decision(200, None, None, rate, job)
        if route == R_METHOD:
            return Decision(405, _METHOD_NOT_ALLOWED, rate=rate)
        return Decision(404, _NOT_FOUND, rate=rate)

    def _decided(self, d: Decision) -> Decision:
        if d.code:  # a dropped connection has no status
            by_status = self._stats.by_status
            by_status[d.code] = by_status.get(d.code, 0) + 1
        return d

    def _leave(self) -> None:
        with self._lock:
            self._stats.in_flight -= 1
