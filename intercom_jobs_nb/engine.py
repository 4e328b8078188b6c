"""The run engine: the one loop behind `fetch_jobs`, `refresh`, `wait_for_jobs`, the panel and
the CLI.

A run is a list of distinct ids, the rows already known for some of them (from an input frame or
a checkpoint), and passes: each pass asks every id whose row is missing or not final, with
``max_workers`` threads (each its own `transport.Client`) sharing one `RateGate` and one
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
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from . import codes as C
from . import errors as E
from .checkpoint import Checkpoint
from .ids import JobIds
from .options import Options
from .pacing import RateGate
from .progress import Progress
from .rows import Row, error_row, frame_rows, to_frame, user_columns
from .transport import Client, Fatal, Stopped, Watchdog, fetch_row, identify

__all__ = ["run", "from_frame", "BATCH_ROWS"]

BATCH_ROWS = 200  # rows handed to the checkpoint at most at once
_DONE = object()  # a worker has finished


def from_frame(df: pd.DataFrame) -> tuple[JobIds, dict[str, Row]]:
    """A result frame's ids (with the user's own columns) and its rows, to run again."""
    rows = frame_rows(df)
    return JobIds([row.job_id for row in rows], {}, user_columns(df)), {
        row.job_id: row for row in rows
    }


class _Run:
    """The state of one run: a row slot per id, the progress, the checkpoint."""

    def __init__(
        self,
        job_ids: JobIds,
        options: Options,
        until_final: bool,
        checkpoint: Checkpoint | None,
        stop: threading.Event | None,
    ) -> None:
        self.ids = job_ids.ids
        self.extra = job_ids.extra
        self.invalid = job_ids.invalid
        self.options = options
        self.until_final = until_final
        self.checkpoint = checkpoint
        self.rows: list[Row | None] = [None] * len(self.ids)
        self.external_stop = stop
        self.stop = threading.Event()
        self.gate = RateGate(max_rps=options.max_rps, stop=self.stop)
        self.watchdog = Watchdog()
        self.batch: list[Row] = []
        self.progress: Progress | None = None

    def start(self, known: Mapping[str, Row]) -> None:
        """Fill in the rows known before the first pass, and start the progress display."""
        for i, job_id in enumerate(self.ids):
            problem = self.invalid.get(job_id)
            self.rows[i] = (
                error_row(job_id, None, C.INVALID_JOB_ID, problem)
                if problem is not None
                else known.get(job_id)
            )
        if self.options.progress:
            settled = sum(1 for row in self.rows if row is not None and row.final)
            self.progress = Progress(
                self.options.progress,
                len(self.ids),
                desc="final" if self.until_final else "jobs",
                done=settled,
            )
            for row in self.rows:
                if row is not None:
                    self.progress.count(row)

    def todo(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row is None or not row.final]

    def frame(self, *, consume: bool = False) -> pd.DataFrame:
        """The rows so far (ids never answered left out), with the user's columns."""
        present = [i for i, row in enumerate(self.rows) if row is not None]
        extra = self.extra
        if len(present) < len(self.rows):
            rows = [self.rows[i] for i in present]
            if extra is not None:
                extra = extra.iloc[present].reset_index(drop=True)
            return to_frame(rows, extra)
        return to_frame(self.rows, extra, consume=consume)

    def receive(self, i: int, row: Row) -> None:
        old = self.rows[i]
        self.rows[i] = row
        self.batch.append(row)
        if self.progress is not None:
            self.progress.count(row, replaces=old)
            settles = row.final if self.until_final else True
            self.progress.advance(1 if settles and not (old is not None and old.final) else 0)

    def flush(self) -> None:
        batch, self.batch = self.batch, []
        if batch and self.checkpoint is not None:
            self.checkpoint.write(batch)

    # -- one pass --------------------------------------------------------------------------
    def one_pass(self, indices: Sequence[int]) -> None:
        """Ask the ids at ``indices`` once each (retries included)."""
        if not indices:
            return
        out: queue.SimpleQueue = queue.SimpleQueue()
        take = threading.Lock()
        pending = iter(indices)
        ids, options, gate, stop = self.ids, self.options, self.gate, self.stop

        def work() -> None:
            client = None
            try:
                client = Client(options, self.watchdog)
                while not stop.is_set():
                    with take:
                        i = next(pending, None)
                    if i is None:
                        break
                    out.put((i, fetch_row(client, gate, ids[i])))
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
            # Rows answered but not yet read are fetched too: keep them, don't ask again.
            while True:
                try:
                    item = out.get_nowait()
                except queue.Empty:
                    break
                if item is not _DONE and not isinstance(item[0], str):
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
        self.stop.set()
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
    """Run passes over ``job_ids`` and return the result frame.

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
    state: _Run | None = None
    try:
        state = _Run(job_ids, options, until_final, cp, stop)
        if cp is not None:
            # Bound to the token's workspace before any job is asked.
            try:
                cp.bind(identify(Client(options, state.watchdog), state.gate))
            except Fatal as fatal:
                raise fatal.aborted() from None
            for job_id, row in cp.rows().items():
                mine = known.get(job_id)
                if mine is None or (row.final and not mine.final):
                    known[job_id] = row
        state.start(known)
        deadline = None if timeout is None else time.monotonic() + timeout
        timed_out = False
        while todo := state.todo():
            state.one_pass(todo)
            if not until_final or not state.todo():
                break
            if deadline is not None and time.monotonic() + poll_interval > deadline:
                timed_out = True
                break
            if state.stop.wait(poll_interval) or (stop is not None and stop.is_set()):
                raise KeyboardInterrupt
        state.close()
        df = state.frame(consume=True)
        if until_final:
            df.attrs["timed_out"] = timed_out
        return df
    except KeyboardInterrupt:
        raise _with_frame(
            E.FetchInterrupted("interrupted: the rows fetched so far are on .df"), state
        ) from None
    except E.RunAbortedError as exc:
        raise _with_frame(exc, state) from exc.__cause__
    except E.ConfigurationError:
        raise
    except Exception as exc:
        raise _with_frame(
            E.RunFailedError(f"the run failed unexpectedly ({type(exc).__name__}: {exc})"), state
        ) from exc
    finally:
        if state is not None:
            state.close()
        if cp is not None:
            cp.close()


def _with_frame(exc: Any, state: _Run | None) -> Any:
    """``exc`` with ``.df``: the one place a run-ending exception gets its rows."""
    if state is not None:
        state.halt()
        with contextlib.suppress(E.CheckpointError):  # the rows are still on .df
            state.flush()
        exc.df = state.frame()
    else:
        exc.df = to_frame([])
    return exc
