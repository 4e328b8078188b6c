"""The run engine: the one loop behind `fetch_jobs`, `refresh`, `wait_for_jobs`, the panel and
the CLI.

A run is a list of distinct ids, the rows already known for some of them (from an input frame or
a checkpoint), and passes: each pass asks every id whose row is missing or not final, with
``max_workers`` threads (each its own connection: `transports.connect`) sharing one `Pacer` and one
`Watchdog`. The calling thread only reads the rows the workers queue: it counts them, shows
progress, hands them to the checkpoint in batches, and stays responsive to Ctrl-C. A single pass
is `fetch_jobs` and `refresh`; passes (rounds) every ``poll_interval`` seconds until every row is
final (or the deadline), each starting ``poll_interval`` after the one before began (or
``poll_interval`` after its end, if it took longer), is `wait_for_jobs`, every way it is
reached (``tickets=True``, the CLI's ``--wait``, ``intercom_jobs_nb.dask``): which items each
round asks is its `Schedule`'s
(``_schedule.py``). A wait given rows fetched a moment ago (the CLI's ``--wait`` after its first
pass) goes on at their cadence: its first round starts ``poll_interval`` after the oldest of them.

How a run ends is decided here, once: a finished run returns its DataFrame; everything that
stops it early raises an exception whose ``.df`` holds every row so far (see ``_errors.py``):
`FetchInterrupted` (Ctrl-C, or the ``stop`` event), `AuthenticationError` / `ApiVersionError`
(an answer that every job would meet), `UnreachableError` (`Reach`: no request could be sent
and none was answered, or a certificate that does not verify), `CheckpointError` (the file
cannot be written), and `RunFailedError` for anything unexpected.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import numpy as np
import pandas as pd

from . import _codes as C
from . import _errors as E
from ._checkpoint import Checkpoint
from ._clock import SYSTEM, Clock
from ._ids import JobIds, workspace_names
from ._options import Options
from ._pacing import Pacer, PaceStatus, RateGate, shared_gate
from ._progress import JOB_OUTCOMES, Progress, job_outcome
from ._rows import (
    DTYPES,
    Row,
    RowStore,
    error_row,
    frame_rows,
    to_frame,
    unasked_row,
    user_columns,
    with_extra,
)
from ._schedule import FixedSchedule, Schedule, ScheduleName, make_schedule
from ._transport import (
    Channel,
    Fatal,
    Route,
    Settled,
    Stopped,
    TransportFailure,
    Watchdog,
    check_connection,
    fetch_row,
    identify,
)
from ._transports import connect

__all__ = [
    "Run",
    "Work",
    "JobsWork",
    "Key",
    "Reach",
    "run",
    "from_frame",
    "check_workspaces",
    "BATCH_ROWS",
    "UNREACHABLE_AFTER",
    "UNREACHABLE_WITHIN",
]

BATCH_ROWS = 200  # rows handed to the sink (the checkpoint) at most at once
STOP_GRACE = 1.0  # seconds a stopping run waits for its workers to end
STOP_POLL = 0.1  # seconds between two looks at the `stop` event while no row arrives
QUEUED_ROWS = 4 * BATCH_ROWS  # rows answered and waiting to be taken in, at most


class _Ended(NamedTuple):
    """A worker's end by an exception: a `Fatal` answer, or a bug (the run fails with it)."""

    exc: BaseException


class _Done:
    """A worker has finished."""


_DONE = _Done()


@contextlib.contextmanager
def deferred_sigint() -> Iterator[threading.Event]:
    """While a pass takes rows in, a Ctrl-C sets the event this yields, and the pass stops at
    the next row boundary, instead of a `KeyboardInterrupt` raised wherever the run's thread
    happens to be (between taking a row off the queue and putting it in the batch, the row
    would be lost to the checkpoint and asked again on resume). A second Ctrl-C raises at once.

    Only in the main thread, and only where Ctrl-C would raise `KeyboardInterrupt` anyway
    (Python's default handler, which the terminal and Jupyter kernels use): a run in another
    thread, or with SIGINT ignored or handled by the application, is left as it is.
    """
    pressed = threading.Event()
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield pressed
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if pressed.is_set():
            raise KeyboardInterrupt
        pressed.set()

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


# What a worker hands the run's thread (see `Run.one_pass`): ``(index, row)``s, then `_DONE`;
# or `_Ended` first.
# A run that has had no answer yet ends with UnreachableError when this many requests in a row
# failed before anything was sent (refused, DNS, the proxy's CONNECT refused, a failed TLS
# handshake), counted across workers: `max_workers` workers reach it in their first round of
# tries, milliseconds after the first refusal, however many ids the run has. It is more than
# one id's tries by default (`retries` 4: five), so a single refused connection (a blip while a
# load balancer restarts) or one id's failures alone do not end a run, nor make `fetch_job`
# raise anything but its own error.
UNREACHABLE_AFTER = 8
# ...or when such failures have gone on this long since the run's first request could go: one
# worker (or `identify`, alone before the passes) reaches 8 only through its backoff, and a
# host that drops packets fails each connection after `timeout` seconds, not at once. Longer
# than the first retries' backoff (0.25 to 0.5 s, then 0.5 to 1 s, then 1 to 2 s...).
UNREACHABLE_WITHIN = 10.0


Key = tuple[str | None, str]  # (workspace, job_id): a job's identity (workspace None: one)


def _gate(options: Options, clock: Clock) -> RateGate:
    """The pacing gate of a run's lane: the process's one per token and host over the network
    (`shared_gate`); a run through a transport of its own (a `MockTransport`) has its own,
    so a mock's answers never hold back a real run of the same token."""
    if options.transport is not None:
        return RateGate(max_rps=options.max_rps, budget_share=options.budget_share, clock=clock)
    return shared_gate(
        options.token.reveal(), options.base_url, options.max_rps, clock, options.budget_share
    )


def from_frame(df: pd.DataFrame) -> tuple[JobIds, dict[Key, Row]]:
    """A result frame's ids (with the user's own columns) and its rows by `Key`, to run again;
    rows without a job id are carried along."""
    rows = frame_rows(df)
    extra = user_columns(df)
    names = workspace_names(df)
    present = [i for i, row in enumerate(rows) if row.job_id is not None]
    known = {(rows[i].workspace, rows[i].job_id): rows[i] for i in present}
    workspaces = None if names is None else [names[i] for i in present]
    if len(present) == len(rows):
        return JobIds([row.job_id for row in rows], {}, extra, workspaces=workspaces), known
    missing = [i for i, row in enumerate(rows) if row.job_id is None]
    carried = extra if extra is not None else pd.DataFrame(index=range(len(rows)))
    job_ids = JobIds(
        [rows[i].job_id for i in present],
        {},
        None if extra is None else extra.iloc[present].reset_index(drop=True),
        positions=present,
        carried=carried.iloc[missing].reset_index(drop=True),
        carried_positions=missing,
        workspaces=workspaces,
    )
    return job_ids, known


R = TypeVar("R", bound=Settled)  # the row a run's work gives for each item


class Work(Protocol[R]):
    """What a run asks of each of its items: the kind of run (job statuses, tickets, enqueues).

    A row is any object with a boolean ``final``: the engine asks again (in the next pass of a
    run ``until_final``) exactly the items whose row is missing or not final.
    """

    desc: str  # the progress bar's label
    kinds: tuple[str, ...]  # the progress buckets, in display order

    def outcome(self, row: R) -> str:
        """The progress bucket of a row."""
        ...

    def ask(self, client: Channel, gate: Pacer, index: int) -> R:
        """The row of item ``index`` (called in a worker thread)."""
        ...

    def frame(self, rows: Any, consume: bool) -> pd.DataFrame:
        """The result frame of the rows so far (None where an item has none): ``rows`` is a
        list, or what the work's ``slots(size)`` made, if it has that method."""
        ...


class JobsWork:
    """Job statuses: `fetch_row` for each distinct id (of its workspace, in a run of many)."""

    desc = "jobs"
    kinds: tuple[str, ...] = JOB_OUTCOMES

    def __init__(self, job_ids: JobIds) -> None:
        self.ids = job_ids.ids
        self.extra = job_ids.extra
        self.job_ids = job_ids
        self.lanes = job_ids.workspaces  # the workspace of each item, or None

    @staticmethod
    def outcome(row: Row) -> str:
        return job_outcome(row)

    def key(self, index: int) -> Key:
        lanes = self.lanes
        return (None if lanes is None else lanes[index], self.ids[index])

    def ask(self, client: Channel, gate: Pacer, index: int) -> Row:
        row = fetch_row(client, gate, self.ids[index])
        lanes = self.lanes
        return row if lanes is None else row._replace(workspace=lanes[index])

    @staticmethod
    def slots(size: int) -> RowStore:
        return RowStore(size)

    def unasked(self, index: int) -> Row:
        """The row of an item a wait had not asked when its time ran out."""
        row = unasked_row(self.ids[index])
        lanes = self.lanes
        return row if lanes is None else row._replace(workspace=lanes[index])

    def frame(self, rows: RowStore, consume: bool) -> pd.DataFrame:
        """The rows so far (ids never answered left out), with the user's columns, and the
        rows carried along without a job id in their places."""
        df, present = rows.frame(consume=consume)
        extra = self.extra
        if extra is not None and len(present) < len(rows):
            extra = extra.iloc[present].reset_index(drop=True)
        return self._with_carried(with_extra(df, extra), present.tolist())

    def _with_carried(self, df: pd.DataFrame, present: list[int]) -> pd.DataFrame:
        job_ids = self.job_ids
        if job_ids.carried is None or job_ids.positions is None:
            return df
        carried = job_ids.carried
        blank = to_frame(
            [unasked_row(None)._replace(final=True)] * len(carried),  # type: ignore[arg-type]
            carried if len(carried.columns) else None,
        )
        order = [job_ids.positions[i] for i in present] + job_ids.carried_positions
        both = pd.concat([df, blank], ignore_index=True)
        for column, dtype in DTYPES.items():  # concat loses categories that differ
            if dtype == "category" and column in both.columns:
                both[column] = both[column].astype("category")
        return both.iloc[sorted(range(len(order)), key=order.__getitem__)].reset_index(drop=True)


Sink = Callable[[list[Any]], None]


class Reach:
    """Whether a run can reach Intercom at all: the one rule that ends a run early when
    nothing can work, whatever the number of ids, instead of every id spending its retries
    (2,000 ids against a closed port took minutes; 100,000 would take hours).

    Every client of the run reports each request's outcome here (`report`). Until the first
    answer (any status: then the host is there, and failures are the rows' business), requests
    that failed before being sent are counted; `UNREACHABLE_AFTER` in a row, or such failures
    for `UNREACHABLE_WITHIN` seconds, trip it. A failure that may have been sent resets the
    count: something at the other end took the request. A certificate that does not verify
    (``TransportFailure.configuration``) trips it at once, answered or not: every connection
    would meet it, and no retry can change it.

    Tripping sets ``error`` and calls ``stop``, which lets the workers end as they do on a stop:
    a request in flight finishes (it is not cut: a POST in flight may have been sent), nothing
    more is sent. The engine raises ``error`` once they have.
    """

    def __init__(
        self, base_url: str, way: Route, stop: Callable[[], None], clock: Clock = SYSTEM
    ) -> None:
        self.base_url = base_url
        self.clock = clock
        self.way = way
        self._stop = stop
        self._lock = threading.Lock()
        self.answered = False
        self.unsent = 0  # failures before sending, in a row, with no answer yet
        self.since: float | None = None  # when this streak could begin (`start`)
        self.error: E.UnreachableError | None = None

    def start(self) -> None:
        """Requests may go from now (a pass, or `identify`, begins): the clock of
        `UNREACHABLE_WITHIN` starts here, not while a checkpoint was being read."""
        with self._lock:
            if self.since is None or not self.unsent:
                self.since = self.clock.monotonic()

    def report(self, failure: TransportFailure | None) -> None:
        """One request's outcome: None when it was answered (called from worker threads)."""
        if failure is None:
            if not self.answered:
                with self._lock:
                    self.answered = True
            return
        with self._lock:
            if self.error is not None:
                return
            if failure.configuration:
                self._trip(failure.message, failure.code)
            elif self.answered:
                return
            elif failure.sent:
                self.unsent = 0
                self.since = self.clock.monotonic()
            else:
                self.unsent += 1
                now = self.clock.monotonic()
                since = self.since if self.since is not None else now
                if self.unsent >= UNREACHABLE_AFTER:
                    why = f"{self.unsent} requests in a row failed before anything was sent"
                elif now - since >= UNREACHABLE_WITHIN:
                    why = f"requests failed before anything was sent for {now - since:.0f} s"
                else:
                    return
                self._trip(f"{why}, and none was answered ({failure.message})", failure.code)
        if self.error is not None:
            self._stop()

    def _trip(self, why: str, code: str) -> None:
        via = "" if self.way.variable is None else f" through the proxy {self.way.variable} names"
        self.error = E.UnreachableError(
            f"cannot reach Intercom at {self.base_url}{via}: {why}", code=code
        )


class Run(Generic[R]):
    """One run: a row slot per item, the workers' shared gate and watchdog, progress, a sink.

    Args:
        work: what is asked of each item.
        size: how many items.
        options: checked options.
        until_final: `execute` passes again until every row is final.
        sink: receives the rows in batches as they arrive (a checkpoint's ``write``).
        stop: an event that, once set, ends the run like Ctrl-C.
        clock: what the gates, the backoffs and the pauses between passes wait through.
    """

    def __init__(
        self,
        work: Work[R],
        size: int,
        options: Options,
        *,
        until_final: bool = False,
        sink: Sink | None = None,
        stop: threading.Event | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.work = work
        self.clock = clock
        self.options = options
        self.until_final = until_final
        self.sink = sink
        slots = getattr(work, "slots", None)  # a compact store of rows, if the work has one
        self.rows: Any = slots(size) if slots is not None else [None] * size
        self.external_stop = stop
        self.stop = threading.Event()
        # One lane per workspace (one for a run of one): its own token, and its own gate, so
        # that one workspace's rate limit or slow answers never hold another back.
        self.lane_of: Sequence[str] | None = getattr(work, "lanes", None)
        names: dict[str | None, None] = (
            dict.fromkeys(self.lane_of) if self.lane_of is not None else {None: None}
        )
        tokens = options.tokens
        self.lane_options = {
            name: options if name is None or tokens is None else options.for_token(tokens[name])
            for name in names
        }
        self.gates = {
            name: Pacer(_gate(o, clock), self.stop) for name, o in self.lane_options.items()
        }
        self.gate = next(iter(self.gates.values()))  # the gate of a run of one workspace
        # The environment's proxy and CA bundle, checked before any request (a mistake there
        # is a ConfigurationError naming the variable, not a row per job).
        way = check_connection(options) if options.transport is None else Route(None, None)
        self.reach = Reach(options.base_url, way, self._stop_sending, clock)
        self._lane_codes: np.ndarray | None = None
        self.watchdog = Watchdog()
        self.batch: list[Any] = []
        self.progress: Progress | None = None
        self.schedule: Schedule | None = None  # a wait's: what each round asks

    def client(self, lane: str | None = None) -> Channel:
        """A connection for the calling thread (to ask something before the passes), of a
        lane."""
        options = self.lane_options[lane] if lane is not None else self.options
        return connect(options, self.watchdog, self.reach.report, clock=self.clock)

    def identify(self, lane: str | None = None) -> str:
        """The workspace a lane's token belongs to (``GET /me``), asked from the calling
        thread before the passes, on a connection closed after.

        Raises:
            UnreachableError: no answer (`Reach`'s rule, or the retries spent).
        """
        self.reach.start()
        with contextlib.closing(self.client(lane)) as client:
            try:
                return identify(client, self.gates[lane])
            except Fatal as fatal:
                fatal.workspace = lane
                raise
            except Stopped:
                if self.reach.error is not None:
                    raise self.reach.error from None
                raise

    def _stop_sending(self) -> None:
        """Let no more requests go (`Reach` tripped): the workers end as on a stop, but the
        requests in flight are not cut."""
        for gate in self.gates.values():
            gate.halt()

    def lane(self, index: int) -> str | None:
        lanes = self.lane_of
        return None if lanes is None else lanes[index]

    def start_progress(self) -> None:
        """Show progress, counting the rows already known."""
        if not self.options.progress:
            return
        work = self.work
        lanes = self.lane_of
        final = [i for i, row in enumerate(self.rows) if row is not None and row.final]
        self.progress = Progress(
            self.options.progress,
            len(self.rows),
            desc=f"final {work.desc}" if self.until_final else work.desc,
            done=len(final),
            kinds=work.kinds,
            outcome=work.outcome,
            lanes=None if lanes is None else Counter(lanes),
            lanes_done=None if lanes is None else Counter(lanes[i] for i in final),
            pace=self.pace_status,
            rows=(row for row in self.rows if row is not None),
        )

    def pace_status(self) -> PaceStatus:
        """What the gates hold back, for progress: one lane's, or all lanes' together."""
        statuses = [gate.status() for gate in self.gates.values()]
        if len(statuses) == 1:
            return statuses[0]
        limits = [s.limit for s in statuses]
        remaining = [s.remaining for s in statuses]
        return PaceStatus(
            limit=None if None in limits else sum(limits),  # type: ignore[arg-type]
            remaining=None if None in remaining else sum(remaining),  # type: ignore[arg-type]
            waiting=min(s.waiting for s in statuses),
            blocked=all(s.blocked for s in statuses),
        )

    def todo(self) -> np.ndarray:
        """The items to ask (row missing or not final), as an array: a million Python ints
        would cost 36 MB for the whole pass."""
        rows = self.rows
        if isinstance(rows, RowStore):
            return rows.todo()
        return np.array(
            [i for i, row in enumerate(rows) if row is None or not row.final], dtype=np.int64
        )

    def frame(self, *, consume: bool = False) -> pd.DataFrame:
        return self.work.frame(self.rows, consume)

    def receive(self, i: int, row: R) -> None:
        old = self.rows[i]
        self.rows[i] = row
        self.batch.append(row)
        if self.schedule is not None:
            self.schedule.heard(i, row)
        if self.progress is not None:
            self.progress.count(row, replaces=old)
            settles = row.final if self.until_final else True
            self.progress.advance(
                1 if settles and not (old is not None and old.final) else 0, lane=self.lane(i)
            )

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if batch and self.sink is not None:
            try:
                self.sink(batch)
            except BaseException:  # a write cut short (Ctrl-C): the next flush writes it again
                self.batch = batch + self.batch
                raise

    def execute(
        self,
        prepare: Callable[[Run[R]], None] | None = None,
        *,
        poll_interval: float = 0.0,
        timeout: float | None = None,
        schedule: Schedule | None = None,
    ) -> pd.DataFrame:
        """Run the passes and return the frame; or raise, with ``.df``, what ended the run.

        ``prepare(run)`` runs first, inside the same guard (to ask who the token is, fill in
        known rows...); then `start_progress`; then the passes: one, or, ``until_final``, the
        rounds of ``schedule`` (default: `FixedSchedule`), each starting ``poll_interval``
        after the one before began (after it ended, if that one took longer).
        """
        try:
            if prepare is not None:
                prepare(self)
            if self.until_final or schedule is not None:
                self.schedule = schedule or FixedSchedule()
            self.start_progress()
            deadline = None if timeout is None else self.clock.monotonic() + timeout
            timed_out = False
            first = self._since_fetched(poll_interval) if self.until_final else 0.0
            if first > 0:
                if deadline is not None and self.clock.monotonic() + first > deadline:
                    timed_out = True
                elif self._pause(first):
                    raise KeyboardInterrupt
            while not timed_out and len(todo := self.todo()):
                began = self.clock.monotonic()
                self.one_pass(todo)
                del todo
                if self.schedule is not None:
                    self.schedule.ended()
                if not self.until_final or not len(self.todo()):
                    break
                # Rounds start poll_interval apart: a job asked in one is asked again about
                # poll_interval later. After a round that took longer (held back by the rate
                # limit, or very many jobs) a whole poll_interval: never back to back.
                took = self.clock.monotonic() - began
                pause = poll_interval - took if took < poll_interval else poll_interval
                if deadline is not None and self.clock.monotonic() + pause > deadline:
                    timed_out = True
                    break
                if self._pause(pause):
                    raise KeyboardInterrupt
            self.close()
            unasked = getattr(self.work, "unasked", None)
            if timed_out and unasked is not None:  # a wait's items not asked yet have a row
                for i in self.todo():
                    if self.rows[i] is None:
                        self.rows[i] = unasked(int(i))
            df = self.frame(consume=True)
            if self.until_final:
                df.attrs["timed_out"] = timed_out
            return df
        except KeyboardInterrupt:
            raise self._with_frame(
                E.FetchInterrupted("interrupted: the rows fetched so far are on .df")
            ) from None
        except Fatal as fatal:
            raise self._with_frame(fatal.aborted()) from None
        except E.RunAbortedError as exc:
            raise self._with_frame(exc) from exc.__cause__
        except E.ConfigurationError:
            raise
        except Exception as exc:
            raise self._with_frame(
                E.RunFailedError(f"the run failed unexpectedly ({type(exc).__name__}: {exc})")
            ) from exc
        finally:
            self.close()

    def _since_fetched(self, poll_interval: float) -> float:
        """Seconds until a wait's first round: ``poll_interval`` after the oldest of the rows
        not final, when every one of them was fetched less than that ago (0 otherwise)."""
        todo = self.todo()
        if not len(todo) or poll_interval <= 0:
            return 0.0
        oldest = float("inf")
        for i in todo:
            fetched = getattr(self.rows[i], "fetched_at", None)
            if fetched is None or fetched != fetched:  # never asked, or no time: ask now
                return 0.0
            oldest = min(oldest, float(fetched))
        age = self.clock.time() - oldest  # answers are stamped with the run's clock
        return max(0.0, min(poll_interval, poll_interval - age))

    def _pause(self, seconds: float) -> bool:
        """Wait between two passes; True as soon as the run is to stop (either event)."""
        clock, external = self.clock, self.external_stop
        if external is None:
            return clock.wait(self.stop, seconds)
        deadline = clock.monotonic() + seconds
        while (left := deadline - clock.monotonic()) > 0:
            if clock.wait(external, min(left, STOP_POLL)) or self.stop.is_set():
                return True
        return external.is_set()

    def _with_frame(self, exc: Any) -> Any:
        """``exc`` with ``.df``: the one place a run-ending exception gets its rows."""
        self.halt()
        with contextlib.suppress(E.CheckpointError):  # the rows are still on .df
            self.flush()
        exc.df = self.frame()
        return exc

    # -- one pass --------------------------------------------------------------------------
    def one_pass(self, indices: np.ndarray) -> None:
        """Ask the ids at ``indices`` once each (retries included)."""
        if not len(indices):
            return
        out: queue.SimpleQueue[tuple[int, R] | _Ended | _Done] = queue.SimpleQueue()
        ask, stop = self.work.ask, self.stop
        by_lane: dict[str | None, np.ndarray]
        if self.lane_of is None:
            by_lane = {None: indices}
        else:
            if self._lane_codes is None:  # each item's lane as a number, made once
                numbers = {name: k for k, name in enumerate(self.lane_options)}
                self._lane_codes = np.array([numbers[n] for n in self.lane_of], dtype=np.int32)
            codes = self._lane_codes[indices]
            by_lane = {name: indices[codes == k] for k, name in enumerate(self.lane_options)}
            by_lane = {name: mine for name, mine in by_lane.items() if len(mine)}

        # Rows answered but not yet taken by this thread are bounded: workers faster than the
        # checkpoint's writes would otherwise pile up rows (and memory) in the queue.
        workers = {lane: min(self.options.max_workers, len(mine)) for lane, mine in by_lane.items()}
        room = threading.Semaphore(sum(workers.values()) + QUEUED_ROWS)

        def work(lane: str | None, pending: Any, take: threading.Lock) -> None:
            client = None
            gate = self.gates[lane]
            try:
                client = connect(
                    self.lane_options[lane], self.watchdog, self.reach.report, clock=self.clock
                )
                while not stop.is_set():
                    if not room.acquire(timeout=STOP_POLL):
                        continue
                    with take:
                        i = next(pending, None)
                    if i is None:
                        break
                    out.put((i, ask(client, gate, i)))
            except Stopped:
                pass
            except Fatal as fatal:
                fatal.workspace = lane
                out.put(_Ended(fatal))
                stop.set()
            except BaseException as exc:  # a bug: end the run, keep the rows
                out.put(_Ended(exc))
                stop.set()
            finally:
                if client is not None:
                    client.close()
                out.put(_DONE)

        running = 0
        problem: BaseException | None = None
        with deferred_sigint() as pressed:
            self.reach.start()
            try:
                # Started inside the try: a Ctrl-C between two starts still stops those started.
                schedule = self.schedule
                for lane, mine in by_lane.items():
                    pending: Iterator[int] = (
                        map(int, mine)  # ints made one at a time
                        if schedule is None
                        else schedule.round(lane, mine, stop)
                    )
                    take = threading.Lock()
                    for k in range(workers[lane]):
                        thread = threading.Thread(
                            target=work,
                            args=(lane, pending, take),
                            name=f"intercom-jobs-{k}"
                            if lane is None
                            else f"intercom-jobs-{lane}-{k}",
                            daemon=True,
                        )
                        thread.start()
                        running += 1
                while running:
                    if pressed.is_set() or (
                        self.external_stop is not None and self.external_stop.is_set()
                    ):
                        raise KeyboardInterrupt
                    try:
                        item = out.get(timeout=STOP_POLL)
                    except queue.Empty:
                        continue
                    # Drain what is ready and hand it on in one batch, but never more than
                    # BATCH_ROWS: workers faster than this loop would keep rows out of the file.
                    while True:
                        if isinstance(item, _Done):
                            running -= 1
                        elif isinstance(item, _Ended):
                            problem = problem or item.exc
                        else:
                            self.receive(*item)
                            room.release()
                        if len(self.batch) >= BATCH_ROWS:
                            break
                        try:
                            item = out.get_nowait()
                        except queue.Empty:
                            break
                    self.flush()
            except BaseException:
                self.halt()
                # The workers end at once (their requests in flight are cut): wait for them a
                # moment, so that none still writes (a ledger) once the run has ended, and keep the
                # rows they answered: fetched is fetched, not asked again.
                deadline = time.monotonic() + STOP_GRACE
                while running and time.monotonic() < deadline:
                    try:
                        item = out.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
                        break
                    if isinstance(item, _Done):
                        running -= 1
                    elif not isinstance(item, _Ended):
                        self.receive(*item)
                raise
        if problem is not None:
            exc = problem
            if isinstance(exc, Fatal):
                raise exc.aborted()
            raise E.RunFailedError(
                f"the run failed unexpectedly ({type(exc).__name__}: {exc})"
            ) from exc
        if self.reach.error is not None:
            raise self.reach.error

    def halt(self) -> None:
        """Stop every worker and cut the requests in flight; no request is sent after this."""
        for gate in self.gates.values():
            gate.halt()
        self.watchdog.cut_all()

    def close(self) -> None:
        self.halt()
        self.watchdog.close()
        progress, self.progress = self.progress, None  # closed once, even if closing raises
        if progress is not None:
            progress.close()


def run(
    job_ids: JobIds,
    options: Options,
    *,
    known: Mapping[Key, Row] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    until_final: bool = False,
    poll_interval: float = 0.0,
    timeout: float | None = None,
    schedule: ScheduleName | Schedule = "adaptive",
    stop: threading.Event | None = None,
    clock: Clock = SYSTEM,
) -> pd.DataFrame:
    """Job statuses for ``job_ids``: the run behind `fetch_jobs`, `refresh`, `wait_for_jobs`.

    Args:
        job_ids: the distinct ids, with the invalid ones and the user's columns (and their
            workspaces, in a run of many: then ``options.tokens`` has a token for each).
        options: checked options.
        known: rows already known by `Key` (from an input frame): final ones are kept, others
            asked.
        checkpoint: a SQLite file; its rows count as known, and new rows are saved to it.
        until_final: pass again every ``poll_interval`` seconds until every row is final.
        timeout: with ``until_final``, stop passing after this many seconds
            (``df.attrs["timed_out"]`` then says so).
        schedule: with ``until_final``, which jobs each round asks (``_schedule.py``); or a
            `Schedule` that lasts longer than the run, whose next round this run's one pass
            is (the panel's auto-refresh: a run per round, one schedule learning across them).
        stop: an event that, once set, ends the run like Ctrl-C.
        clock: what the run's waits go through (tests pass a `clock.FakeClock`).

    Raises:
        ConfigurationError: workspaces without ``tokens`` (or the reverse), or a workspace
            with no token; nothing was sent.
    """
    check_workspaces(job_ids.workspaces, options.tokens)
    known = dict(known or {})
    cp = Checkpoint(checkpoint, options.base_url) if checkpoint is not None else None
    work = JobsWork(job_ids)

    def prepare(state: Run[Row]) -> None:
        if cp is not None:  # each workspace bound to its token's before any job is asked
            for lane in state.gates:
                cp.bind(state.identify(lane), label=lane)
            for key, row in cp.rows().items():
                mine = known.get(key)
                if mine is None or (row.final and not mine.final):
                    known[key] = row
        lanes = work.lanes
        if not known and not job_ids.invalid:  # a fresh run of good ids: every slot is empty
            return  # (millions of ids from a file: no loop over them before the first request)
        for i, job_id in enumerate(job_ids.ids):
            problem = job_ids.invalid.get(job_id)
            if problem is not None:
                row = error_row(job_id, None, C.INVALID_JOB_ID, problem)
                state.rows[i] = row if lanes is None else row._replace(workspace=lanes[i])
            elif known:
                state.rows[i] = known.get(work.key(i))

    try:
        state = Run(
            work,
            len(job_ids.ids),
            options,
            until_final=until_final,
            sink=cp.write if cp is not None else None,
            stop=stop,
            clock=clock,
        )
        plan = (
            schedule
            if isinstance(schedule, Schedule)
            else make_schedule(
                schedule, job_ids.extra, len(job_ids.ids), work.lanes, options.max_workers
            )
            if until_final
            else None
        )
        return state.execute(prepare, poll_interval=poll_interval, timeout=timeout, schedule=plan)
    finally:
        if cp is not None:
            cp.close()


def check_workspaces(workspaces: Sequence[str] | None, tokens: Mapping[str, object] | None) -> None:
    """A run of many workspaces has a token for each; ``tokens`` needs a workspace column.

    Raises:
        ConfigurationError: they do not match (no token is shown).
    """
    if tokens is None:
        if workspaces is not None and len(set(workspaces)) > 1:
            names = sorted(set(workspaces))
            shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
            raise E.ConfigurationError(
                f"these jobs belong to {len(names)} workspaces ({shown}): pass tokens={{name: "
                "token}} with a token for each (a token, an ij.Secret or 'env:NAME')"
            )
        return
    if workspaces is None:
        raise E.ConfigurationError(
            "tokens= needs a DataFrame with a workspace column (the workspace of each job_id); "
            "for one workspace pass token="
        )
    lacking = sorted(set(workspaces) - set(tokens))
    if lacking:
        shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
        raise E.ConfigurationError(
            f"no token for the workspaces {shown}: tokens= has {', '.join(sorted(tokens))}"
        )
