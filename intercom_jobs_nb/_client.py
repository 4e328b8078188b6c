"""The client: what a run is configured with, held once, and the calls that use it.

`Client` checks its options once (`options.Options.build`: the token, the region or base URL,
timeouts, pacing, the ``transport``), and each of its methods is one run of the engine
(``_engine.py``) with them. The module's functions (`fetch_jobs`, `refresh`, `wait_for_jobs`,
`enqueue_tickets`, `fetch_tickets`, `fetch_job`) are each a call through a client made for that
call and closed after it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from . import _codes as C
from . import _errors as E
from ._engine import from_frame, run
from ._ids import JobIds, check_job_id, read_job_ids
from ._options import DEFAULT_POLL_INTERVAL, Options, hide_token
from ._rows import REQUIRED_COLUMNS
from ._schedule import ScheduleName, check_schedule

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self, Unpack

    from ._options import ClientOptions

__all__ = ["Client"]


def _is_jobs_frame(source: Any) -> bool:
    return isinstance(source, pd.DataFrame) and set(REQUIRED_COLUMNS) <= set(source.columns)


class Client:
    """A client for Intercom's job statuses and tickets, with its options checked once.

    Args:
        **options: the `ClientOptions` (each one's default and meaning:
            ``help(ij.ClientOptions)``), e.g. ``token`` (default: `get_token`), ``region``,
            ``base_url``, ``timeout``, ``transport`` (None: the network; an `ij.MockTransport`
            answers from a function).

    Use it as a context manager (or call `close`): closing closes its transport.

    Raises:
        TypeError: a keyword that is not an option (the nearest one is named).
        ConfigurationError: an option that is not valid; MissingTokenError: no token.

    Example:
        >>> import intercom_jobs_nb as ij
        >>> def intercom(request):                       # a stand-in for Intercom
        ...     return {"id": request.path.rsplit("/", 1)[-1], "status": "pending"}
        >>> with ij.Client(token="t", transport=ij.MockTransport(intercom)) as client:
        ...     client.fetch_job("42")["status"]
        'pending'
    """

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        hide_token(options)
        self.options = Options.build(**options)
        self._closed = False

    # -- the context manager ----------------------------------------------------------------

    def close(self) -> None:
        """Close the client's transport (a run's own connections close when it ends)."""
        if self._closed:
            return
        self._closed = True
        transport = self.options.transport
        if transport is not None:
            transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        options = getattr(self, "options", None)  # a traceback may show one not made yet
        if options is None:
            return "Client(not made)"
        via = "" if options.transport is None else f", transport={options.transport!r}"
        return f"Client(base_url={options.base_url!r}{via})"

    def _open(self) -> Options:
        if self._closed:
            raise E.ConfigurationError("this Client is closed: make a new one")
        return self.options

    # -- job statuses -----------------------------------------------------------------------

    def fetch_job(self, job_id: str | int) -> dict[str, Any]:
        """Fetch one job: its row as a dict (the `fetch_jobs` columns).

        Raises:
            InvalidJobIdError: the id is not a job id; nothing was sent.
            JobNotFoundError: Intercom has no such job.
            AuthenticationError: Intercom rejected the token.
            JobError: any other failure, once the retries are spent (``.code`` says which).
        """
        options = replace(self._open(), max_workers=1, progress=False)
        checked, problem = check_job_id(job_id)
        if problem:
            raise E.InvalidJobIdError(
                f"job id {checked!r} {problem}; it was not sent",
                job_id=checked,
                code=C.INVALID_JOB_ID,
            )
        df = run(JobIds([checked]), options)
        record = {
            str(k): (None if v is pd.NA or (not isinstance(v, str) and pd.isna(v)) else v)
            for k, v in df.iloc[0].to_dict().items()
        }
        if record["error_code"] is not None:
            raise E.job_error_for(record)
        return record

    def fetch_jobs(
        self, ids: Any, *, checkpoint: str | os.PathLike[str] | None = None
    ) -> pd.DataFrame:
        """The status of many jobs, one row per distinct id (see `intercom_jobs_nb.fetch_jobs`
        for what ``ids`` may be, the columns and the exceptions)."""
        return run(read_job_ids(ids), self._open(), checkpoint=checkpoint)

    def refresh(
        self, df: pd.DataFrame, *, checkpoint: str | os.PathLike[str] | None = None
    ) -> pd.DataFrame:
        """A new frame in which only the rows that may change were asked again (see
        `intercom_jobs_nb.refresh`)."""
        options = self._open()
        if not isinstance(df, pd.DataFrame) or "job_id" not in df.columns:
            raise E.ConfigurationError(
                "refresh needs a DataFrame with a job_id column (from fetch_jobs, wait_for_jobs "
                "or enqueue_tickets)"
            )
        job_ids, known = from_frame(df) if _is_jobs_frame(df) else (read_job_ids(df), {})
        return run(job_ids, options, known=known, checkpoint=checkpoint)

    def wait_for_jobs(
        self,
        ids_or_df: Any,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        tickets: bool = False,
        schedule: ScheduleName = "adaptive",
    ) -> pd.DataFrame:
        """Fetch, then poll the jobs still pending until all are final or ``timeout`` (seconds
        of the whole wait; the client's own ``timeout`` is each answer's) passes (see
        `intercom_jobs_nb.wait_for_jobs`)."""
        options = self._open()
        try:
            schedule = check_schedule(schedule)
        except ValueError as exc:
            raise E.ConfigurationError(str(exc)) from None
        if isinstance(poll_interval, bool) or not (
            isinstance(poll_interval, (int, float)) and 0 <= poll_interval < 1e6
        ):
            raise E.ConfigurationError(f"poll_interval must be >= 0 seconds, got {poll_interval!r}")
        if timeout is not None and (
            isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and timeout >= 0)
        ):
            raise E.ConfigurationError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
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
            schedule=schedule,
        )
        if tickets:
            timed_out = df.attrs.get("timed_out", False)
            df = self.fetch_tickets(df)
            df.attrs["timed_out"] = timed_out
        return df

    # -- tickets ----------------------------------------------------------------------------

    def enqueue_tickets(
        self,
        rows: Any,
        *,
        ledger: str | os.PathLike[str],
        ticket_type_id: str | int | None = None,
        key: str | None = None,
        resend_unknown: bool = False,
    ) -> pd.DataFrame:
        """Create a ticket for each row, never two for one key (see
        `intercom_jobs_nb.enqueue_tickets`)."""
        from ._enqueue import enqueue  # _enqueue.py's function is a call through a Client

        return enqueue(
            rows,
            self._open(),
            ledger=ledger,
            ticket_type_id=ticket_type_id,
            key=key,
            resend_unknown=resend_unknown,
        )

    def fetch_tickets(
        self, df: pd.DataFrame, *, checkpoint: str | os.PathLike[str] | None = None
    ) -> pd.DataFrame:
        """The ticket behind every successful job, as columns added to ``df`` (see
        `intercom_jobs_nb.fetch_tickets`)."""
        from ._tickets import tickets_for  # _tickets.py's function is a call through a Client

        return tickets_for(df, self._open(), checkpoint=checkpoint)
