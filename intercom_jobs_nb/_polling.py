"""Polling: ask again only what may change, until every job is final.

`refresh` makes one pass over the rows that may still change (those whose ``final`` is False:
pending jobs, and fetches that failed for a passing reason); `wait_for_jobs` goes in rounds
``poll_interval`` seconds apart until all jobs are final or the time is up, each round asking
what its schedule (``_schedule.py``: ``"adaptive"``, or ``"fixed"``: every job not final) says.
Both are runs of the one engine (``_engine.py``); a row already final is never asked for again.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._client import Client
from ._options import DEFAULT_POLL_INTERVAL, DEFAULT_TIMEOUT, hide_token
from ._schedule import ScheduleName

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import ClientOptions, ConnectionOptions, TokenOptions

    class WaitOptions(TokenOptions, ConnectionOptions, total=False):
        """`ClientOptions` but ``timeout``: `wait_for_jobs` calls it ``request_timeout``."""


__all__ = ["refresh", "wait_for_jobs"]


def refresh(
    df: pd.DataFrame,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    **options: Unpack[ClientOptions],
) -> pd.DataFrame:
    """A new DataFrame in which only the rows that may change were asked for again.

    Rows whose ``final`` is False (pending jobs; fetches that failed for a passing reason:
    timeout, connection error, any 5xx, 429, malformed answer) are asked again; final rows
    (success, failed, job_not_found, invalid_job_id...) are kept as they were. Takes the options
    of `fetch_jobs`.

    Example:
        >>> df = ij.refresh(df, token=token)                          # doctest: +SKIP
    """
    hide_token(options)
    with Client(**options) as client:
        return client.refresh(df, checkpoint=checkpoint)


def wait_for_jobs(
    ids_or_df: Any,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    request_timeout: float = DEFAULT_TIMEOUT,
    tickets: bool = False,
    schedule: ScheduleName = "adaptive",
    **options: Unpack[WaitOptions],
) -> pd.DataFrame:
    """Fetch, then poll only the jobs still pending until all are final or ``timeout`` passes.

    Args:
        ids_or_df: what `fetch_jobs` takes, or a DataFrame it returned (its final rows are kept;
            pending rows fetched less than ``poll_interval`` ago are asked again only then).
        poll_interval: seconds from the start of one round to the next: the longest a finished
            job goes unnoticed (give or take the rate limit).
        timeout: seconds after which to stop waiting (None: wait as long as it takes).
        checkpoint: a SQLite file, as in `fetch_jobs`.
        request_timeout: seconds for one answer (``timeout`` of `fetch_jobs`; here ``timeout``
            is the whole wait's).
        tickets: then fetch the ticket behind every successful job (`fetch_tickets`).
        schedule: ``"adaptive"`` (jobs enqueued together finish about in order: each round
            finds how far the queue has got and asks the jobs behind it, about one request per
            job; when the order is not there, every job not final each round) or ``"fixed"``
            (every job not final each round, the schedule of old). How and why: the module
            ``intercom_jobs_nb._schedule``.
        **options: the other options of `fetch_jobs` (``token``, ``region``, ``base_url``...).

    Returns:
        The DataFrame; jobs still pending at the timeout keep ``status == "pending"``, and
        ``df.attrs["timed_out"]`` says whether time ran out first (jobs the schedule had not
        asked yet then have an empty ``status`` and ``attempts == 0``).
    """
    hide_token(options)
    with Client(timeout=request_timeout, **options) as client:
        return client.wait_for_jobs(
            ids_or_df,
            poll_interval=poll_interval,
            timeout=timeout,
            checkpoint=checkpoint,
            tickets=tickets,
            schedule=schedule,
        )
