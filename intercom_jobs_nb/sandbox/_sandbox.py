"""The :class:`Sandbox` front: options, lifecycle, test controls, and the per-request decision."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from .._clock import SYSTEM, Clock
from ._completion import Independent, Queue, completion_model
from ._faults import ENQUEUE_TABLE, FaultPlan
from ._http import Server
from ._ratelimit import Admission, FixedWindow
from ._routes import R_ENQUEUE, R_ME, R_METHOD, R_STATUS, R_TICKET, Decision
from ._stats import Stats
from ._store import JOB_STATUSES, RESOURCE_ID_OFFSET, Job, JobStore
from ._tickets import (
    EnqueueRequest,
    Ticket,
    check_ticket_types,
    count_key,
    ticket_type_bodies,
)
from ._versions import INTERCOM_VERSIONS
from ._workspaces import DEFAULT_TOKEN, DEFAULT_WORKSPACE, Workspace, workspaces_by_auth

_UNAUTHORIZED = ("unauthorized", "Access Token Invalid")
_JOB_NOT_FOUND = ("job_not_found", "Job Not Found")
_NOT_FOUND = ("not_found", "Resource Not Found")
_METHOD_NOT_ALLOWED = ("method_not_allowed", "Method Not Allowed")
_TICKET_NOT_FOUND = ("ticket_not_found", "Ticket not found")  # as 2.15's other ticket paths


class Sandbox:
    """A local Intercom job-status and ticket API, for tests, benchmarks, demos and notebooks.

    Jobs ``"1001"``, ``"1002"``, ... are created at construction; each one's outcome follows
    from ``seed``: failed with probability ``failed_share``, else success, and, with
    probability ``pending_share``, pending for ``uniform(*pending_seconds)`` seconds after
    :meth:`start`. A successful job names its ticket (``resource_id`` = job id + 4000).

    ``POST /tickets/enqueue`` accepts the ticket type ids of :attr:`ticket_types`: by
    default one, ``"88"`` (the spec's example; ``ticket_type_id="88"``, ``--ticket-type-id
    88``); give ``ticket_types=`` to have others. It checks its body (a 400
    ``parameter_invalid`` and no job for a bad one, an unknown ``ticket_type_id`` included:
    "Ticket type not found") and answers a new pending job, numbered
    after the others. That job, after ``uniform(*enqueue_pending_seconds)`` seconds, fails
    with probability ``enqueue_failed_share`` (no ticket), else succeeds: its ticket then
    exists, ``GET /tickets/{resource_id}`` answers it, and :attr:`tickets` lists it. Before
    that (or for a job that failed) that path answers 404 ``ticket_not_found``, as do
    the ``resource_id`` of jobs made at construction or by :meth:`add_job`: they were not
    enqueued, so they have no ticket to show.

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
        completion: How the jobs made at construction become final: ``"uniform"`` (the two
            arguments above), ``"queue"`` (all pending, finishing in creation order, 60 a
            second, with jitter: ``Queue(rate=, jitter=)`` to choose) or ``"independent"``
            (all pending, each for its own log-normal time, median 20 s:
            ``Independent(median=, sigma=)``). See ``_completion.py``. :meth:`final_times`
            says when each became final, :meth:`unnoticed` how long it went unnoticed.
        enqueue_pending_seconds: Range of the pending time of an enqueued job; ``(0, 0)``
            for jobs final at once, ``(1e9, 1e9)`` for jobs pending until :meth:`finish_all`.
        enqueue_failed_share: Probability that an enqueued job fails (and creates no ticket).
        ticket_types: The ticket types an enqueue may name: id (a string of digits) -> name.
            By default one type, ``{"88": "Bug report"}`` (88 is the spec's example).
        faults: Probability per authenticated request of each fault, e.g.
            ``{"server_error": 0.05, "drop": 0.02}``: job-status requests draw from the
            :data:`FAULTS`, enqueue requests from the ``ENQUEUE_FAULTS`` (the same and
            ``"drop_after"``, which only they draw), each kind from its own seeded generator.
        slow_seconds: How long the ``"slow"`` fault waits before answering.
        clock_skew: Seconds added to the server clock (``Date`` header and rate-limit windows).
        clock: The time the server clock is read from (a test passes the `FakeClock` its
            client runs on too, to go through windows in milliseconds). Jobs' pending times
            run on it too; ``latency`` stays on the real clock.
        token: The bearer token to accept; :data:`DEFAULT_TOKEN` by default.
        workspace: The ``id_code`` of the token's workspace, as ``GET /me`` answers it.
        tokens: Extra tokens to accept, each mapped to its workspace's ``id_code`` (the same
            as ``workspace`` or another). Each workspace has its own rate limit (Intercom's
            limit is per app per workspace): ``rate_limit`` per ``window`` for each, shared by
            the tokens of that workspace. ``GET /me`` answers the admin of the token's
            workspace, one admin id per workspace.
        separate_jobs: Give each workspace its own jobs: the same ids, with outcomes drawn
            from ``seed`` and the workspace's ``id_code`` (the main workspace keeps those of
            ``seed`` alone), so that rows of two workspaces for one job id differ and a test
            can tell if they were mixed. Jobs enqueued or added later belong to the main
            workspace's jobs, which every workspace also sees (for an id not among its own).
            By default every workspace sees the same jobs.
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.

    Attributes:
        token: The main token.
        workspace: Its workspace's ``id_code``.
        tokens: The extra tokens, as given (a copy).
        job_ids: The ids of the jobs created at construction.
        ticket_types: The ticket types an enqueue may name, id -> name (a copy): what to
            pass as ``ticket_type_id`` (``intercom-jobs sandbox`` prints them).

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
        completion: str | Queue | Independent = "uniform",
        enqueue_pending_seconds: tuple[float, float] = (1.0, 5.0),
        enqueue_failed_share: float = 0.0,
        ticket_types: Mapping[str, str] | None = None,
        faults: Mapping[str, float] | None = None,
        slow_seconds: float = 5.0,
        clock_skew: float = 0.0,
        clock: Clock = SYSTEM,
        token: str | None = None,
        workspace: str = DEFAULT_WORKSPACE,
        tokens: Mapping[str, str] | None = None,
        separate_jobs: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if jobs < 0:
            raise ValueError("jobs must be >= 0")
        if latency < 0 or slow_seconds < 0:
            raise ValueError("latency and slow_seconds must be >= 0")
        self.clock = clock
        self._limiter = FixedWindow(rate_limit, window, clock=self._server_time)  # checks
        for name, share in (
            ("failed_share", failed_share),
            ("pending_share", pending_share),
            ("enqueue_failed_share", enqueue_failed_share),
        ):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        low, high = pending_seconds
        if not 0 <= low <= high:
            raise ValueError("pending_seconds must be (low, high) with 0 <= low <= high")
        enqueue_low, enqueue_high = enqueue_pending_seconds
        if not 0 <= enqueue_low <= enqueue_high:
            raise ValueError("enqueue_pending_seconds must be (low, high) with 0 <= low <= high")
        self._faults = FaultPlan(faults, seed)
        self._enqueue_faults = FaultPlan(faults, seed, ENQUEUE_TABLE, "enqueue-faults")
        self.ticket_types: dict[str, str] = check_ticket_types(ticket_types)
        # Read by the handler without the lock (to check enqueue bodies): never changed.
        self._ticket_type_bodies = ticket_type_bodies(self.ticket_types, workspace)

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
        # One fixed-window limit per workspace (id_code -> limiter), the main one's first.
        self._limiters: dict[str, FixedWindow] = {workspace: self._limiter}
        for known in self._workspaces.values():
            if known.id_code not in self._limiters:
                self._limiters[known.id_code] = FixedWindow(
                    rate_limit, window, clock=self._server_time
                )
        self._versions = frozenset(INTERCOM_VERSIONS)
        self._enqueue_rng = random.Random(f"{seed}-enqueue")
        self._enqueue_pending_seconds = (float(enqueue_low), float(enqueue_high))
        self._enqueue_failed_share = float(enqueue_failed_share)
        self._tickets: dict[str, Ticket] = {}  # ticket id -> ticket, in enqueue order
        self._enqueued = 0

        self._lock = threading.Lock()
        self._base_url: str | None = None
        self._store = JobStore(clock.monotonic)  # the main one's, and every job added later
        model = completion_model(completion)
        self.completion = completion

        def fill(store: JobStore, rng: random.Random) -> None:
            if model is not None:
                for position in range(jobs):
                    failed = rng.random() < failed_share
                    store.add("failed" if failed else "success", model.pending_for(position, rng))
                return
            for _ in range(jobs):
                # Three draws per job whatever the shares, so changing one share keeps the others.
                failed = rng.random() < failed_share
                pending = rng.random() < pending_share
                pending_for = rng.uniform(low, high)
                store.add("failed" if failed else "success", pending_for if pending else 0.0)

        fill(self._store, random.Random(seed))
        # id_code -> its jobs; read under the lock. Without separate_jobs, all share the main.
        self._stores: dict[str, JobStore] = {workspace: self._store}
        for id_code in self._limiters:
            if id_code not in self._stores:
                store = self._store
                if separate_jobs:
                    store = JobStore(clock.monotonic)
                    fill(store, random.Random(f"{seed}-workspace-{id_code}"))
                self._stores[id_code] = store
        self.separate_jobs = bool(separate_jobs)
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
            for store in self._distinct_stores():
                store.start(self._base_url)
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
            for store in self._distinct_stores():
                store.finish_all()

    # -- tickets ---------------------------------------------------------------------------

    def inject_enqueue(self, *faults: str) -> None:
        """Queue faults for the next ``POST /tickets/enqueue`` requests, one per request.

        Like :meth:`inject`, for enqueue requests, with the names of ``ENQUEUE_FAULTS``:
        ``"drop_after"`` carries the request out (the job, and later its ticket, are created)
        and then closes the connection without answering, the case a client cannot tell from
        ``"drop"``, which closes it before anything is created. ``"server_error"``,
        ``"service_unavailable"``, ``"html"`` and ``"rate_limit"`` also create nothing;
        ``"slow"``, ``"not_json"`` and ``"no_id"`` create the job and spoil only the answer.

        Raises:
            ValueError: For an unknown fault name.

        Example:
            >>> sb.inject_enqueue("drop_after", "server_error")  # doctest: +SKIP
        """
        with self._lock:
            self._enqueue_faults.inject("", faults)

    @property
    def enqueued(self) -> int:
        """How many enqueue requests were carried out (each made a job), answered or not."""
        with self._lock:
            return self._enqueued

    @property
    def tickets(self) -> list[dict[str, Any]]:
        """A snapshot of the tickets that exist now (their job succeeded), in enqueue order.

        Each is a dict (a copy): ``id`` (the ``resource_id``), ``ticket_id`` (the human id),
        ``job_id``, ``ticket_type_id``, ``title`` and ``description`` (the
        ``_default_title_``/``_default_description_`` attributes, or None), ``attributes``
        (every ticket attribute), ``contact`` (as sent), ``created_at`` and ``body`` (the
        enqueue body as sent).
        """
        with self._lock:
            tickets = list(self._tickets.values())
        return [ticket.snapshot() for ticket in tickets if ticket.exists()]

    def count_tickets(self, by: str | Callable[[dict[str, Any]], Any] = "title") -> dict[Any, int]:
        """How many existing tickets share each value of ``by``: more than one means a
        duplicate.

        Args:
            by: ``"title"``, ``"description"``, ``"ticket_type_id"``, or the name of any
                ticket attribute (e.g. an idempotency key the client stores there); a ticket
                without it counts under None, a list value under its JSON text. Or a
                function of a :attr:`tickets` entry.

        Returns:
            ``{value: number of tickets}``, in order of first appearance.

        Example:
            >>> counts = sb.count_tickets("title")  # doctest: +SKIP
            >>> duplicates = {title: n for title, n in counts.items() if n > 1}  # doctest: +SKIP
        """
        key = by if callable(by) else (lambda snapshot: count_key(snapshot, by))
        return dict(Counter(key(snapshot) for snapshot in self.tickets))

    @property
    def workspaces(self) -> list[str]:
        """The ``id_code`` of every workspace, the main one first."""
        return list(self._limiters)

    def _known(self, workspace: str | None) -> str:
        id_code = self.workspace if workspace is None else workspace
        if id_code not in self._limiters:
            raise KeyError(f"no workspace {id_code!r}; known: {', '.join(self._limiters)}")
        return id_code

    def window_counts(self, workspace: str | None = None) -> dict[int, int]:
        """Requests of ``workspace`` (default: the main one) accepted within its rate limit,
        per window: ``{window start (server epoch seconds): n}``, oldest first, since start or
        the last :meth:`reset_stats`. Windows without a request are left out.

        Raises:
            KeyError: for an unknown workspace.
        """
        id_code = self._known(workspace)
        with self._lock:
            rows = self._stats.by_workspace.get(id_code, {})
            return {index * self.window: row[0] for index, row in sorted(rows.items())}

    def refused(self, workspace: str | None = None) -> int:
        """How many 429s ``workspace`` (default: the main one) was answered since start or the
        last :meth:`reset_stats` (its rate limit's and the ``rate_limit`` fault's).

        Raises:
            KeyError: for an unknown workspace.
        """
        id_code = self._known(workspace)
        with self._lock:
            rows = self._stats.by_workspace.get(id_code, {})
            return sum(row[1] for row in rows.values())

    def job_outcomes(self, workspace: str | None = None) -> dict[str, str]:
        """The planned final outcome (``"success"``, ``"failed"`` or ``"pending"``) of every job
        ``workspace`` (default: the main one) sees, by job id: what a client should read once
        the jobs are final.

        Raises:
            KeyError: for an unknown workspace.
        """
        id_code = self._known(workspace)
        with self._lock:
            own = self._stores[id_code].jobs
            seen = {**self._store.jobs, **own}
            return {job_id: job.outcome for job_id, job in seen.items()}

    def final_times(self, workspace: str | None = None) -> dict[str, float]:
        """When each job ``workspace`` (default: the main one) sees became final: seconds after
        :meth:`start` on the sandbox's clock (0: final at start), for the jobs final now.

        Raises:
            KeyError: for an unknown workspace.
        """
        id_code = self._known(workspace)
        with self._lock:
            seen = {**self._store.jobs, **self._stores[id_code].jobs}
            times = {job_id: self._store.final_since(job) for job_id, job in seen.items()}
        return {job_id: t for job_id, t in times.items() if t is not None}

    def unnoticed(self) -> dict[str, float]:
        """How long each job went unnoticed: seconds from the moment it became final to its
        first answer saying so (on the sandbox's clock), for every job answered final since
        start or the last :meth:`reset_stats`. A job final at start counts from the start."""
        with self._lock:
            return dict(self._stats.unnoticed)

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters since start or the last :meth:`reset_stats`.

        Keys: ``requests`` (every request received, control paths aside), ``by_status``
        ``{code: n}``, ``per_job`` ``{job_id: n}``, ``windows`` (``[{"start": epoch,
        "served": n, "rejected": n_429}, ...]`` for authenticated requests, oldest first, all
        workspaces together), ``workspaces`` (``{id_code: [the same per window]}``, each
        workspace's own), ``max_in_flight``, ``versions`` ``{Intercom-Version: n}`` and
        ``faults`` ``{name: n}``.
        """
        with self._lock:
            return self._stats.snapshot(self.window)

    def reset_stats(self) -> None:
        """Clear the counters (the rate-limit budget of the current window is kept)."""
        with self._lock:
            self._stats.reset()

    # -- internals -------------------------------------------------------------------------

    def _distinct_stores(self) -> list[JobStore]:
        return list({id(store): store for store in self._stores.values()}.values())

    def _server_time(self) -> float:
        """The server clock: epoch seconds, skewed by ``clock_skew``."""
        return self.clock.time() + self.clock_skew

    def _admit(
        self,
        route: int,
        job_id: str | None,
        workspace: Workspace | None,
        version: str | None,
        payload: EnqueueRequest | tuple[str, str] | None,
    ) -> Decision:
        """Count one request and decide its answer: the one lock section per request.

        ``workspace`` is that of the request's token, None for no or an unknown token.
        ``payload`` is an enqueue request's checked body, or the error that refuses it.
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

            limiter = self._limiters[workspace.id_code]
            rate = limiter.admit()
            row = stats.window(rate.window_index)
            own = stats.workspace_window(workspace.id_code, rate.window_index)
            if not rate.allowed:
                row[1] += 1
                own[1] += 1
                return self._decided(Decision(429, limiter.error(), rate=rate))

            d = self._route_locked(route, job_id, workspace, version, payload, rate)
            if d.fault is not None and d.fault.rate_limited:  # a 429 that costs no budget
                d.rate = limiter.refund(rate)
                row[1] += 1
                own[1] += 1
            else:
                row[0] += 1
                own[0] += 1
            return self._decided(d)

    def _route_locked(
        self,
        route: int,
        job_id: str | None,
        workspace: Workspace,
        version: str | None,
        payload: EnqueueRequest | tuple[str, str] | None,
        rate: Admission,
    ) -> Decision:
        """The answer to an authenticated request within the rate limit, by route."""
        if version is not None and version not in self._versions:
            error = ("intercom_version_invalid", f"Requested version {version!r} is not valid")
            return Decision(400, error, rate=rate)
        if route == R_STATUS:
            job = self._stores[workspace.id_code].get(job_id)  # type: ignore[arg-type]
            if job is None:  # enqueued and added jobs are the main workspace's, seen by all
                job = self._store.get(job_id)  # type: ignore[arg-type]
            fault = self._faults.take(job_id)  # type: ignore[arg-type]
            if fault is not None:
                seen = self._stats.faults
                seen[fault.name] = seen.get(fault.name, 0) + 1
                if fault.drop:
                    return Decision(0, None, fault)
                if fault.rate_limited:
                    return Decision(429, self._limiters[workspace.id_code].error(), fault, rate)
                if fault.status is not None:
                    return Decision(fault.status, fault.error, fault, rate, job)
            if job is None:
                return Decision(404, _JOB_NOT_FOUND, fault, rate)
            return Decision(200, None, fault, rate, job)
        if route == R_ME:
            return Decision(200, rate=rate, body=workspace.me_body)
        if route == R_ENQUEUE:
            return self._enqueue_locked(payload, rate, self._limiters[workspace.id_code])
        if route == R_TICKET:
            ticket = self._tickets.get(job_id)  # type: ignore[arg-type]
            if ticket is None or not ticket.exists():
                return Decision(404, _TICKET_NOT_FOUND, rate=rate)
            return Decision(200, rate=rate, body=ticket.body)
        if route == R_METHOD:
            return Decision(405, _METHOD_NOT_ALLOWED, rate=rate)
        return Decision(404, _NOT_FOUND, rate=rate)

    def _enqueue_locked(
        self,
        payload: EnqueueRequest | tuple[str, str] | None,
        rate: Admission,
        limiter: FixedWindow,
    ) -> Decision:
        """Answer an enqueue request: its fault, the 400 for a bad body, or a new job."""
        fault = self._enqueue_faults.take("")
        if fault is not None:
            seen = self._stats.faults
            seen[fault.name] = seen.get(fault.name, 0) + 1
            if not fault.processed:
                if fault.drop:
                    return Decision(0, None, fault)
                if fault.rate_limited:
                    return Decision(429, limiter.error(), fault, rate)
                if fault.body is None:
                    return Decision(fault.status or 500, fault.error, fault, rate)
                return Decision(fault.status or 200, None, fault, rate)  # a proxy's page
        if not isinstance(payload, EnqueueRequest):
            if fault is not None and fault.drop:  # drop_after: checked, refused, no answer
                return Decision(0, None, fault)
            error = payload or ("parameter_invalid", "Request body is not valid JSON")
            return Decision(400, error, fault, rate)
        # Two draws per enqueue whatever the share, so changing it keeps the pending times.
        failed = self._enqueue_rng.random() < self._enqueue_failed_share
        pending_for = self._enqueue_rng.uniform(*self._enqueue_pending_seconds)
        job = self._store.add("failed" if failed else "success", pending_for)
        self._enqueued += 1
        if not failed:
            ticket_id = str(int(job.id) + RESOURCE_ID_OFFSET)  # digits: no JSON escaping
            self._tickets[ticket_id] = Ticket(ticket_id, len(self._tickets) + 1, job, payload)
        if fault is not None and fault.drop:  # drop_after: done, and no answer
            return Decision(0, None, fault)
        # Answered pending even if the job is final at once: it was only just enqueued.
        return Decision(200, None, fault, rate, job, job.pending_body)

    def _decided(self, d: Decision) -> Decision:
        if d.code:  # a dropped connection has no status
            by_status = self._stats.by_status
            by_status[d.code] = by_status.get(d.code, 0) + 1
        return d

    def _job_body(self, job: Job) -> bytes:
        """The job's body as it is now, the first final one recorded (`unnoticed`)."""
        with self._lock:
            if not job.is_final():
                return job.pending_body
            unnoticed = self._stats.unnoticed
            if job.id not in unnoticed:
                became = self._store.final_since(job) or 0.0
                started = self._store.started_at or 0.0
                unnoticed[job.id] = max(0.0, self.clock.monotonic() - started - became)
            return job.final_body

    def _leave(self) -> None:
        with self._lock:
            self._stats.in_flight -= 1
