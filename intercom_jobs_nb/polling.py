"""Polling: ask again only what may change, until every job is final.

`refresh` makes one pass over the rows that may still change (those whose ``final`` is False:
pending jobs, and fetches that failed for a passing reason); `wait_for_jobs` repeats that every
``poll_interval`` seconds until all jobs are final or the time is up. Both are runs of the one
engine (``engine.py``); a row already final is never asked for again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from . import errors as E
from .engine import from_frame, run
from .ids import read_job_ids
from .options import (
    DEFAULT_API_VERSION,
    DEFAULT_MAX_RPS,
    DEFAULT_MAX_WORKERS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_PROGRESS,
    DEFAULT_REGION,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Options,
    Secret,
)
from .progress import Snapshot
from .rows import REQUIRED_COLUMNS
from .tickets import fetch_tickets

__all__ = ["refresh", "wait_for_jobs"]


def _is_jobs_frame(source: Any) -> bool:
    return isinstance(source, pd.DataFrame) and set(REQUIRED_COLUMNS) <= set(source.columns)


def refresh(
    df: pd.DataFrame,
    *,
    checkpoint: str | os.PathLike | None = None,
    token: str | Secret | None = None,
    tokens: Mapping[str, str | Secret] | None = None,
    region: str = DEFAULT_REGION,
    base_url: str | None = None,
    api_version: str | None = DEFAULT_API_VERSION,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    max_workers: int = DEFAULT_MAX_WORKERS,
    max_rps: float | None = DEFAULT_MAX_RPS,
    progress: bool | Callable[[Snapshot], Any] = DEFAULT_PROGRESS,
) -> pd.DataFrame:
    """A new DataFrame in which only the rows that may change were asked for again.

    Rows whose ``final`` is False (pending jobs; fetches that failed for a passing reason:
    timeout, connection error, any 5xx, 429, malformed answer) are asked again; final rows
    (success, failed, job_not_found, invalid_job_id...) are kept as they were. Takes the options
    of `fetch_jobs`.

    Example:
        >>> df = ij.refresh(df, token=token)                          # doctest: +SKIP
    """
    token = Secret.wrap(token)
    if not isinstance(df, pd.DataFrame) or "job_id" not in df.columns:
        raise E.ConfigurationError(
            "refresh needs a DataFrame with a job_id column (from fetch_jobs, wait_for_jobs or "
            "enqueue_tickets)"
        )
    options = Options.build(
        token=token,
        region=region,
        base_url=base_url,
        api_version=api_version,
        timeout=timeout,
        retries=retries,
        max_workers=max_workers,
        max_rps=max_rps,
        progress=progress,
        tokens=tokens,
    )
    job_ids, known = from_frame(df) if _is_jobs_frame(df) else (read_job_ids(df), {})
    return run(job_ids, options, known=known, checkpoint=checkpoint)


def wait_for_jobs(
    ids_or_df: Any,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float | None = None,
    checkpoint: str | os.PathLike | None = None,
    request_timeout: float = DEFAULT_TIMEOUT,
    tickets: bool = False,
    token: str | Secret | None = None,
    tokens: Mapping[str, str | Secret] | None = None,
    region: str = DEFAULT_REGION,
    base_url: str | None = None,
    api_version: str | None = DEFAULT_API_VERSION,
    retries: int = DEFAULT_RETRIES,
    max_workers: int = DEFAULT_MAX_WORKERS,
    max_rps: float | None = DEFAULT_MAX_RPS,
    progress: bool | Callable[[Snapshot], Any] = DEFAULT_PROGRESS,
) -> pd.DataFrame:
    """Fetch, then poll only the jobs still pending until all are final or ``timeout`` passes.

    Args:
        ids_or_df: what `fetch_jobs` takes, or a DataFrame it returned (its final rows are kept).
        poll_interval: seconds between two passes over the jobs not final yet.
        timeout: seconds after which to stop waiting (None: wait as long as it takes).
        checkpoint: a SQLite file, as in `fetch_jobs`.
        request_timeout: seconds for one answer (``timeout`` of `fetch_jobs`; here ``timeout``
            is the whole wait's).
        tickets: then fetch the ticket behind every successful job (`fetch_tickets`).
        token, region, base_url, api_version, retries, max_workers, max_rps, progress: as in
            `fetch_jobs`.

    Returns:
        The DataFrame; jobs still pending at the timeout keep ``status == "pending"``, and
        ``df.attrs["timed_out"]`` says whether time ran out first.
    """
    token = Secret.wrap(token)
    if isinstance(poll_interval, bool) or not (
        isinstance(poll_interval, (int, float)) and 0 <= poll_interval < 1e6
    ):
        raise E.ConfigurationError(f"poll_interval must be >= 0 seconds, got {poll_interval!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and timeout >= 0)
    ):
        raise E.ConfigurationError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
    options = Options.build(
        token=token,
        region=region,
        base_url=base_url,
        api_version=api_version,
        timeout=request_timeout,
        retries=retries,
        max_workers=max_workers,
        max_rps=max_rps,
        progress=progress,
        tokens=tokens,
    )
    if tickets and options.tokens is not None:  # said before anything is asked
        raise E.ConfigurationError(
            "tickets=True is for one workspace: wait for many with tokens=, then call "
            "fetch_tickets per workspace with its token"
        )
    if _is_jobs_frame(ids_or_df):
        job_ids, known = from_frame(ids_or_df)
    else:
        job_ids, known = read_job_ids(ids_or_df), {}
    df = run(
        job_ids,
        options,
        known=known,
        checkpoint=checkpoint,
        until_final=True,
        poll_interval=poll_interval,
        timeout=timeout,
    )
    if tickets:
        timed_out = df.attrs.get("timed_out", False)
        df = fetch_tickets(
            df,
            token=options.token,
            base_url=options.base_url,
            api_version=api_version,
            timeout=request_timeout,
            retries=retries,
            max_workers=max_workers,
            max_rps=max_rps,
            progress=progress,
        )
        df.attrs["timed_out"] = timed_out
    return df
