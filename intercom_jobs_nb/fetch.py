"""Fetching: one job, or many at once into a DataFrame (the run itself is ``engine.py``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from . import codes as C
from . import errors as E
from .engine import run
from .ids import JobIds, check_job_id, read_job_ids
from .options import (
    DEFAULT_API_VERSION,
    DEFAULT_MAX_RPS,
    DEFAULT_MAX_WORKERS,
    DEFAULT_PROGRESS,
    DEFAULT_REGION,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Options,
    Secret,
)
from .progress import Snapshot

__all__ = ["fetch_job", "fetch_jobs"]


def fetch_jobs(
    ids: Any,
    *,
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
    checkpoint: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Fetch the status of many jobs into a DataFrame, one row per distinct id.

    Args:
        ids: job ids (str or int) in any iterable, a pandas Series, a DataFrame with a ``job_id``
            column (its other columns come back alongside the results), or the path of a
            .txt (one id a line) or .csv (a ``job_id`` column, else the first) file.
        token: an Intercom access token; default: the ``INTERCOM_TOKEN`` environment variable.
        region: ``"us"``, ``"eu"`` or ``"au"``.
        base_url: overrides ``region`` (e.g. a `Sandbox`'s ``base_url``).
        api_version: sent as ``Intercom-Version``; None sends none.
        timeout: seconds to wait for one answer.
        retries: how many times to ask again after a passing failure (5xx, timeout, dropped
            connection, 429); malformed answers are asked for at most twice.
        max_workers: requests in flight at most (the rate limit may allow fewer).
        max_rps: a cap on requests per second, to leave headroom for other integrations.
        progress: True for a progress bar, False for none, or a callable taking a `Snapshot`.
        checkpoint: a SQLite file; rows are saved as they arrive and jobs already final there
            are not asked for again.

    Returns:
        A DataFrame in first-seen order with the columns ``job_id``, ``status``,
        ``resource_type``, ``resource_id``, ``resource_url``, ``url``, ``http_status``,
        ``error_code``, ``error_message``, ``request_id``, ``attempts``, ``fetched_at``,
        ``final`` (False where asking again may change the row). A job that could not be read
        is a row with ``status`` missing and ``error_code`` set.

    Raises:
        MissingTokenError: no token and no ``INTERCOM_TOKEN``.
        ConfigurationError: a bad argument or checkpoint, or a proxy or CA bundle from the
            environment that cannot be used (the message names the variable); nothing was sent.
        UnreachableError: no request could be sent and none was answered (refused, DNS, the
            proxy, TLS), or the server's certificate does not verify (``.df`` has the rows so
            far).
        CheckpointError: the checkpoint could not be written (``.df`` has the rows so far).
        RunFailedError: an unexpected error (``.df`` has the rows so far).
        AuthenticationError: Intercom rejected the token (``.df`` has the rows so far).
        FetchInterrupted: Ctrl-C (``.df`` has the rows so far).

    Example:
        >>> import intercom_jobs_nb as ij
        >>> with ij.Sandbox() as sb:                                  # doctest: +SKIP
        ...     df = ij.fetch_jobs(sb.job_ids, token=sb.token, base_url=sb.base_url)
    """
    token = Secret.wrap(token)
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
    return run(read_job_ids(ids), options, checkpoint=checkpoint)


def fetch_job(
    job_id: str | int,
    *,
    token: str | Secret | None = None,
    region: str = DEFAULT_REGION,
    base_url: str | None = None,
    api_version: str | None = DEFAULT_API_VERSION,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> dict[str, Any]:
    """Fetch one job. Returns its row as a dict (the `fetch_jobs` columns).

    Raises:
        InvalidJobIdError: the id is not a job id; nothing was sent.
        JobNotFoundError: Intercom has no such job.
        AuthenticationError: Intercom rejected the token.
        JobError: any other failure, once the retries are spent (``.code`` says which).

    Example:
        >>> ij.fetch_job("20")["status"]                              # doctest: +SKIP
        'success'
    """
    token = Secret.wrap(token)
    options = Options.build(
        token=token,
        region=region,
        base_url=base_url,
        api_version=api_version,
        timeout=timeout,
        retries=retries,
        max_workers=1,
        progress=False,
    )
    checked, problem = check_job_id(job_id)
    if problem:
        raise E.InvalidJobIdError(
            f"job id {checked!r} {problem}; it was not sent", job_id=checked, code=C.INVALID_JOB_ID
        )
    df = run(JobIds([checked]), options)
    record = {
        str(k): (None if v is pd.NA or (not isinstance(v, str) and pd.isna(v)) else v)
        for k, v in df.iloc[0].to_dict().items()
    }
    if record["error_code"] is not None:
        raise E.job_error_for(record)
    return record
