"""Polling: ask again only what may change, until every job is final.

`refresh` makes one pass over the rows that may still change (pending jobs, and fetches that
failed for a passing reason); `wait_for_jobs` repeats that every ``poll_interval`` seconds until
all jobs are final or the time is up. A job already final is never asked for again.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pandas as pd

from . import errors as E
from .checkpoint import Checkpoint
from .fetch import fetch_rows, run_with_checkpoint
from .frames import frame_rows, to_frame
from .ids import JobIds, read_job_ids
from .options import options_from
from .progress import Progress
from .transport import COLUMNS, error_row, is_final_row


def _is_jobs_frame(source: Any) -> bool:
    return isinstance(source, pd.DataFrame) and set(COLUMNS) <= set(source.columns)


def _from_frame(df: pd.DataFrame) -> tuple[JobIds, dict[str, tuple]]:
    """The ids of a jobs DataFrame, its final rows, and the user's own columns."""
    rows = frame_rows(df)
    extra = df.drop(columns=list(COLUMNS))
    final = {row[0]: row for row in rows if is_final_row(row)}
    return JobIds([row[0] for row in rows], {}, extra if len(extra.columns) else None), final


def refresh(df: pd.DataFrame, *, checkpoint: str | os.PathLike | None = None,
            **options: Any) -> pd.DataFrame:
    """A new DataFrame in which only the rows that may change were asked for again.

    Pending jobs and fetches that failed for a passing reason (timeout, connection error,
    5xx, 429, malformed answer) are asked again; final rows (success, failed, job_not_found,
    invalid_job_id...) are kept as they were. Takes the same options as `fetch_jobs`.

    Example:
        >>> df = ij.refresh(df, token=token)                          # doctest: +SKIP
    """
    if not _is_jobs_frame(df):
        raise E.ConfigurationError("refresh needs a DataFrame returned by fetch_jobs")
    opts = options_from(options)
    job_ids, final = _from_frame(df)
    return run_with_checkpoint(job_ids, opts, checkpoint, known=final)


class _FinalProgress(Progress):
    """Progress of a wait: ``done`` counts final jobs, the counts describe each job's latest row."""

    def __init__(self, setting: Any, state: dict[str, tuple | None]) -> None:
        final = sum(1 for row in state.values() if row is not None and is_final_row(row))
        super().__init__(setting, len(state), desc="final", done=final)
        self.state = state
        for row in state.values():
            if row is not None:
                self.count(row)

    def row(self, row: tuple) -> None:
        old = self.state.get(row[0])  # the wait's sink records the new row right after
        self.count(row, replaces=old)
        if is_final_row(row) and not (old is not None and is_final_row(old)):
            self.advance()
        else:
            self.advance(0)


def wait_for_jobs(ids_or_df: Any, *, poll_interval: float = 10.0, timeout: float | None = None,
                  checkpoint: str | os.PathLike | None = None, request_timeout: float = 30.0,
                  **options: Any) -> pd.DataFrame:
    """Fetch, then poll only the jobs still pending until all are final or ``timeout`` passes.

    Args:
        ids_or_df: what `fetch_jobs` takes, or a DataFrame it returned (its final rows are kept).
        poll_interval: seconds between two passes over the pending jobs.
        timeout: seconds after which to stop waiting (None: wait as long as it takes).
        checkpoint: a SQLite file, as in `fetch_jobs`.
        request_timeout: seconds to wait for one answer (``timeout`` of `fetch_jobs`; here
            ``timeout`` is the whole wait's).
        **options: the other options of `fetch_jobs` (token, region, base_url, ...).

    Returns:
        The DataFrame; jobs still pending at the timeout keep ``status == "pending"``, and
        ``df.attrs["timed_out"]`` says whether time ran out first.
    """
    if not (isinstance(poll_interval, (int, float)) and poll_interval >= 0):
        raise E.ConfigurationError(f"poll_interval must be >= 0 seconds, got {poll_interval!r}")
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
        raise E.ConfigurationError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
    opts = options_from({**options, "timeout": request_timeout})
    if _is_jobs_frame(ids_or_df):
        job_ids, known = _from_frame(ids_or_df)
    else:
        job_ids, known = read_job_ids(ids_or_df), {}
    deadline = None if timeout is None else time.monotonic() + timeout
    cp = Checkpoint(checkpoint, opts.base_url) if checkpoint is not None else None
    try:
        if cp is not None:
            known = {**cp.final_rows(), **known}
        state: dict[str, tuple | None] = {}
        for job_id in job_ids.ids:
            if job_id in job_ids.invalid:
                state[job_id] = error_row(job_id, None, E.INVALID_JOB_ID, job_ids.invalid[job_id])
            else:
                state[job_id] = known.get(job_id)
        progress = _FinalProgress(opts.progress, state) if opts.progress else None

        def frame(timed_out: bool) -> pd.DataFrame:
            present = [i for i, row in enumerate(state.values()) if row is not None]
            rows = list(state.values())
            extra = job_ids.extra
            df = to_frame([rows[i] for i in present],
                          extra.iloc[present].reset_index(drop=True) if extra is not None else None)
            df.attrs["timed_out"] = timed_out
            return df

        def note(rows: list[tuple]) -> None:
            for row in rows:
                state[row[0]] = row
            if cp is not None:
                cp.write(rows)

        timed_out = False
        try:
            while True:
                todo = [job_id for job_id, row in state.items()
                        if row is None or not is_final_row(row)]
                if not todo:
                    break
                fetch_rows(todo, opts, progress=progress, sink=note)
                if all(is_final_row(state[job_id]) for job_id in todo):
                    break
                if deadline is not None and time.monotonic() + poll_interval > deadline:
                    timed_out = True
                    break
                time.sleep(poll_interval)
        except KeyboardInterrupt:
            raise E.FetchInterrupted("interrupted: the rows fetched so far are on .df",
                                     df=frame(False)) from None
        except E.RunAbortedError as exc:
            exc.__dict__.pop("rows", None)
            exc.df = frame(False)
            raise
        finally:
            if progress is not None:
                progress.close()
        return frame(timed_out)
    finally:
        if cp is not None:
            cp.close()
