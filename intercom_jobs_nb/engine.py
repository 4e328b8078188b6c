"""The run engine: the one loop behind `fetch_jobs`, `refresh`, `wait_for_jobs`, the panel and
the CLI.

A run is a list of distinct ids, the rows already known for some of them (from an input frame or
a checkpoint), and passes: each pass asks every id whose row is missing or not final, with
``max_workers`` threads (each its own `transport.Client`) sharing one `Pacer` and one
`Watchdog`. The calling thread only reads the rows the workers queue: it counts them, shows
progress, hands them to the checkpoint in batches, and stays responsive to Ctrl-C. A single pass
is `fetch_jobs` and `refresh`; passes every ``poll_interval`` seconds until every row is final
(or the deadline) is `wait_for_jobs`.

How a run ends is decided here, once: a finished run returns its DataFrame; everything that
stops it early raises an exception whose ``.df`` holds every row so far (see ``errors.py``):
`FetchInterrupted` (Ctrl-C, or the ``stop`` event), `AuthenticationError` / `ApiVersionError`
(an answer that every job would meet), `CheckpointError` (the file cannot be written), and
`RunFailedError` for anything unexpected.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from . import codes as C
from . import errors as E
from .checkpoint import Checkpoint
from .ids import JobIds
from .options import Options
from .pacing import Pacer, shared_gate
from .progress import JOB_OUTCOMES, Progress, job_outcome
from .rows import DTYPES, Row, error_row, frame_rows, to_frame, unasked_row, user_columns
from .transport import Client, Fatal, Stopped, Watchdog, fetch_row, identify

__all__ = ["Run", "Work", "JobsWork", "run", "from_frame", "BATCH_ROWS"]

BATCH_ROWS = 200  # rows handed to the sink (the checkpoint) at most at once
STOP_GRACE = 1.0  # seconds a stopping run waits for its workers to end
_DONE = object()  # a worker has finished


def from_frame(df: pd.DataFrame) -> tuple[JobIds, dict[str, Row]]:
    """A result frame's ids (with the user's own columns) and its rows, to run again; rows
    without a job id are carried along."""
    rows = frame_rows(df)
    extra = user_columns(df)
    present = [i for i, row in enumerate(rows) if row.job_id is not None]
    if len(present) == len(rows):
        return JobIds([row.job_id for row in rows], {}, extra), {row.job_id: row for row in rows}
    missing = [i for i, row in enumerate(rows) if row.job_id is None]
    carried = extra if extra is not None else pd.DataFrame(index=range(len(rows)))
    job_ids = JobIds(
        [rows[i].job_id for i in present],
        {},
        None if extra is None else extra.iloc[present].reset_index(drop=True),
        positions=present,
        carried=carried.iloc[missing].reset_index(drop=True),
        carried_positions=missing,
    )
    return job_ids, {rows[i].job_id: rows[i] for i in present}


class Work(Protocol):
    """What a run asks of each of its items: the kind of run (job statuses, tickets, enqueues).

    A row is any object with a boolean ``final``: the engine asks again (in the next pass of a
    run ``until_final``) exactly the items whose row is missing or not final.
    """

    desc: str  # the progress bar's label
    kinds: tuple[str, ...]  # the progress buckets, in display order

    def outcome(self, row: Any) -> str:
        """The progress bucket of a row."""
        ...

    def ask(self, client: Client, gate: Pacer, index: int) -> Any:
        """The row of item ``index`` (called in a worker thread)."""
        ...

    def frame(self, rows: list[Any], consume: bool) -> pd.DataFrame:
        """The result frame of the rows so far (None where an item has none)."""
        ...


class JobsWork:
    """Job statuses: `fetch_row` for each distinct id."""

    desc = "jobs"
    kinds: tuple[str, ...] = JOB_OUTCOMES

    def __init__(self, job_ids: JobIds) -> None:
        self.ids = job_ids.ids
        self.extra = job_ids.extra
        self.job_ids = job_ids

    @staticmethod
    def outcome(row: Row) -> str:
        return job_outcome(row)

    def ask(self, client: Client, gate: Pacer, index: int) -> Row:
        return fetch_row(client, gate, self.ids[index])

    def frame(self, rows: list[Row | None], consume: bool) -> pd.DataFrame:
        """The rows so far (ids never answered left out), with the user's columns, and the
        rows carried along without a job id in their places."""
        present = [i for i, row in enumerate(rows) if row is not None]
        extra = self.extra
        if len(present) < len(rows):
            if extra is not None:
                extra = extra.iloc[present].reset_index(drop=True)
            df = to_frame([rows[i] for i in present], extra)
        else:
            df = to_frame(rows, extra, consume=consume)
        return self._with_carried(df, present)

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
            if dtype == "category":
                both[column] = both[column].astype("category")
        return both.iloc[sorted(range(len(order)), key=order.__getitem__)].reset_index(drop=True)


Sink = Callable[[list[Any]], None]


class Run:
    """One run: a row slot per item, the workers' shared gate and watchdog, progress, a sink.

    Args:
        work: what is asked of each item.
        size: how many items.
        options: checked options.
        until_final: `execute` passes again until every row is final.
        sink: receives the rows in batches as they arrive (a checkpoint's ``write``).
        stop: an event that, once set, ends the run like Ctrl-C.
    """

    def __init__(
        self,
        work: Work,
        size: int,
        options: Options,
        *,
        until_final: bool = False,
        sink: Sink | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.work = work
        self.options = options
        self.until_final = until_final
        self.sink = sink
        self.rows: list[Any] = [None] * size
        self.external_stop = stop
        self.stop = threading.Event()
        self.gate = Pacer(
            shared_gate(options.token.reveal(), options.base_url, options.max_rps), self.stop
        )
        self.watchdog = Watchdog()
        self.batch: list[Any] = []
        self.progress: Progress | None = None

    def client(self) -> Client:
        """A client for the calling thread (to ask something before the passes)."""
        return Client(self.options, self.watchdog)

    def start_progress(self) -> None:
        """Show progress, counting the rows already known."""
        if not self.options.progress:
            return
        work = self.work
        settled = sum(1 for row in self.rows if row is not None and row.final)
        self.progress = Progress(
            self.options.progress,
            len(self.rows),
            desc=f"final {work.desc}" if self.until_final else work.desc,
            done=settled,
            kinds=work.kinds,
            outcome=work.outcome,
        )
        for row in self.rows:
            if row is not None:
                self.progress.count(row)

    def todo(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row is None or not row.final]

    def frame(self, *, consume: bool = False) -> pd.DataFrame:
        return self.work.frame(self.rows, consume)

    def receive(self, i: int, row: Any) -> None:
        old = self.rows[i]
        self.rows[i] = row
        self.batch.append(row)
        if self.progress is not None:
            self.progress.count(row, replaces=old)
            settles = row.final if self.until_final else True
            self.progress.advance(1 if settles and not (old is not None and old.final) else 0)

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if batch and self.sink is not None:
            self.sink(batch)

    def execute(
        self,
        prepare: Callable[[Run], None] | None = None,
        *,
        poll_interval: float = 0.0,
        timeout: float | None = None,
    ) -> pd.DataFrame:
        """Run the passes and return the frame; or raise, with ``.df``, what ended the run.

        ``prepare(run)`` runs first, inside the same guard (to ask who the token is, fill in
        known rows...); then `start_progress`; then the passes.
        """
        try:
            if prepare is not None:
                prepare(self)
            self.start_progress()
            deadline = None if timeout is None else time.monotonic() + timeout
            timed_out = False
            external = self.external_stop
            while todo := self.todo():
                self.one_pass(todo)
                if not self.until_final or not self.todo():
                    break
                if deadline is not None and time.monotonic() + poll_interval > deadline:
                    timed_out = True
                    break
                if self.stop.wait(poll_interval) or (external is not None and external.is_set()):
                    raise KeyboardInterrupt
            self.close()
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

    def _with_frame(self, exc: Any) -> Any:
        """``exc`` with ``.df``: the one place a run-ending exception gets its rows."""
        self.halt()
        with contextlib.suppress(E.CheckpointError):  # the rows are still on .df
            self.flush()
        exc.df = self.frame()
        return exc

    # -- one pass --------------------------------------------------------------------------
    def one_pass(self, indices: Sequence[int]) -> None:
        """Ask the ids at ``indices`` once each (retries included)."""
        if not indices:
            return
        out: queue.SimpleQueue = queue.SimpleQueue()
        take = threading.Lock()
        pending = iter(indices)
        ask, options, gate, stop = self.work.ask, self.options, self.gate, self.stop

        def work() -> None:
            client = None
            try:
                client = Client(options, self.watchdog)
                while not stop.is_set():
                    with take:
                        i = next(pending, None)
                    if i is None:
                        break
                    out.put((i, ask(client, gate, i)))
            except Stopped:
                pass
            except Fatal as fatal:
                out.put(("fatal", fatal))
                stop.set()
            except BaseException as exc:  # a bug: end the run, keep the rows
                out.put(("crash", exc))
                stop.set()
            finally:
                if client is not None:
                    client.close()
                out.put(_DONE)

        running = 0
        problem: tuple[str, BaseException] | None = None
        try:
            # Started inside the try: a Ctrl-C between two starts still stops those started.
            for k in range(min(options.max_workers, len(indices))):
                thread = threading.Thread(target=work, name=f"intercom-jobs-{k}", daemon=True)
                thread.start()
                running += 1
            while running:
                if self.external_stop is not None and self.external_stop.is_set():
                    raise KeyboardInterrupt
                try:
                    item = out.get(timeout=0.25)
                except queue.Empty:
                    continue
                # Drain what is ready and hand it on in one batch, but never more than
                # BATCH_ROWS: workers faster than this loop would keep rows out of the file.
                while True:
                    if item is _DONE:
                        running -= 1
                    elif isinstance(item[0], str):
                        problem = problem or item
                    else:
                        self.receive(*item)
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
                if item is _DONE:
                    running -= 1
                elif not isinstance(item[0], str):
                    self.receive(*item)
            raise
        if problem is not None:
            kind, exc = problem
            if isinstance(exc, Fatal):
                raise exc.aborted()
            raise E.RunFailedError(
                f"the run failed unexpectedly ({type(exc).__name__}: {exc})"
            ) from exc

    def halt(self) -> None:
        """Stop every worker and cut the requests in flight; no request is sent after this."""
        self.gate.halt()
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
    known: Mapping[str, Row] | None = None,
    checkpoint: str | os.PathLike | None = None,
    until_final: bool = False,
    poll_interval: float = 0.0,
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> pd.DataFrame:
    """Job statuses for ``job_ids``: the run behind `fetch_jobs`, `refresh`, `wait_for_jobs`.

    Args:
        job_ids: the distinct ids, with the invalid ones and the user's columns.
        options: checked options.
        known: rows already known (from an input frame): final ones are kept, others asked.
        checkpoint: a SQLite file; its rows count as known, and new rows are saved to it.
        until_final: pass again every ``poll_interval`` seconds until every row is final.
        timeout: with ``until_final``, stop passing after this many seconds
            (``df.attrs["timed_out"]`` then says so).
        stop: an event that, once set, ends the run like Ctrl-C.
    """
    known = dict(known or {})
    cp = Checkpoint(checkpoint, options.base_url) if checkpoint is not None else None

    def prepare(state: Run) -> None:
        if cp is not None:  # bound to the token's workspace before any job is asked
            cp.bind(identify(state.client(), state.gate))
            for job_id, row in cp.rows().items():
                mine = known.get(job_id)
                if mine is None or (row.final and not mine.final):
                    known[job_id] = row
        for i, job_id in enumerate(job_ids.ids):
            problem = job_ids.invalid.get(job_id)
            state.rows[i] = (
                error_row(job_id, None, C.INVALID_JOB_ID, problem)
                if problem is not None
                else known.get(job_id)
            )

    try:
        state = Run(
            JobsWork(job_ids),
            len(job_ids.ids),
            options,
            until_final=until_final,
            sink=cp.write if cp is not None else None,
            stop=stop,
        )
        return state.execute(prepare, poll_interval=poll_interval, timeout=timeout)
    finally:
        if cp is not None:
            cp.close()
