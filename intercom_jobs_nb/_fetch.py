"""Fetching: one job, or many at once into a DataFrame (the run itself is ``_engine.py``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._client import Client
from ._options import hide_token

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import ClientOptions

__all__ = ["fetch_job", "fetch_jobs"]


def fetch_jobs(
    ids: Any,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    **options: Unpack[ClientOptions],
) -> pd.DataFrame:
    """Fetch the status of many jobs into a DataFrame, one row per distinct id.

    Args:
        ids: job ids (str or int) in any iterable, a pandas Series, a DataFrame with a ``job_id``
            column (its other columns come back alongside the results), or the path of a
            .txt (one id a line) or .csv (a ``job_id`` column, else the first) file.
        checkpoint: a SQLite file; rows are saved as they arrive and jobs already final there
            are not asked for again.
        **options: the `ClientOptions` of `Client` (each one's default and meaning:
            ``help(ij.ClientOptions)``), e.g. ``token`` (default: the ``INTERCOM_TOKEN``
            environment variable), ``tokens`` (a token per workspace), ``region`` (``"us"``,
            ``"eu"`` or ``"au"``), ``base_url`` (overrides ``region``, e.g. a `Sandbox`'s),
            ``timeout`` (seconds for one answer), ``retries`` (further tries after a passing
            failure; a malformed answer is asked at most twice), ``transport`` (an
            `ij.MockTransport` answers from a function).

    Returns:
        A DataFrame in first-seen order with the columns ``job_id``, ``status``,
        ``resource_type``, ``resource_id``, ``resource_url``, ``url``, ``http_status``,
        ``error_code``, ``error_message``, ``request_id``, ``attempts``, ``fetched_at``,
        ``final`` (False where asking again may change the row). A job that could not be read
        is a row with ``status`` missing and ``error_code`` set.

    Raises:
        TypeError: a keyword that is not an option (the nearest one is named).
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
    hide_token(options)
    with Client(**options) as client:
        return client.fetch_jobs(ids, checkpoint=checkpoint)


def fetch_job(job_id: str | int, **options: Unpack[ClientOptions]) -> dict[str, Any]:
    """Fetch one job. Returns its row as a dict (the `fetch_jobs` columns). Takes the options
    of `fetch_jobs` (``max_workers`` and ``progress`` do not apply to one job).

    Raises:
        InvalidJobIdError: the id is not a job id; nothing was sent.
        JobNotFoundError: Intercom has no such job.
        AuthenticationError: Intercom rejected the token.
        JobError: any other failure, once the retries are spent (``.code`` says which).

    Example:
        >>> ij.fetch_job("20")["status"]                              # doctest: +SKIP
        'success'
    """
    hide_token(options)
    with Client(**options) as client:
        return client.fetch_job(job_id)
