"""Exceptions: what stops a whole run, and what `fetch_job` raises for its one job.

In bulk calls (`fetch_jobs`, `wait_for_jobs`, `refresh`) one job's failure is a row with
``error_code`` set, never an exception. Exceptions are for what stops the whole run, and for
`fetch_job`, where the one job *is* the run.

    IntercomJobsError                   base of everything raised here
    ├── ConfigurationError (ValueError) bad arguments, unsafe base_url, unreadable ids file
    │   └── MissingTokenError           no token given and INTERCOM_TOKEN unset
    ├── RunAbortedError                 the run cannot go on; ``.df`` holds the rows fetched so far
    │   ├── AuthenticationError         Intercom rejected the token (401, token_*, forbidden)
    │   ├── ApiVersionError             Intercom rejected the Intercom-Version header
    │   ├── UnreachableError            no request could be sent and none answered; bad certificate
    │   ├── CheckpointError             a checkpoint or ledger cannot be used (disk full...)
    │   │   └── FileInUseError          another run holds it; nothing was sent
    │   └── RunFailedError              an unexpected error; the original is ``__cause__``
    └── JobError                        `fetch_job` only: this job could not be read; ``.code``
        ├── InvalidJobIdError           the id is not a job id; nothing was sent
        ├── JobNotFoundError            404 job_not_found
        ├── RateLimitError              429, retries spent
        ├── TransportError              timeout or connection error, retries spent
        ├── ServerError                 5xx, retries spent
        └── InvalidResponseError        not a job: HTML, not JSON, no ``id``, a redirect

`FetchInterrupted` (a `KeyboardInterrupt`, so ``except Exception`` does not swallow Ctrl-C)
carries the rows fetched before the interruption as ``.df``.

Partial results are a contract: every exception that ends a bulk run (`RunAbortedError` and its
subclasses, `FetchInterrupted`) declares ``df``, and the run engine (``_engine.py``) sets it to a
DataFrame of every row fetched so far (final rows from a checkpoint or an input frame included),
in input order, with the same columns as a finished run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _codes as C

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "IntercomJobsError",
    "ConfigurationError",
    "MissingTokenError",
    "RunAbortedError",
    "AuthenticationError",
    "ApiVersionError",
    "UnreachableError",
    "CheckpointError",
    "FileInUseError",
    "RunFailedError",
    "FetchInterrupted",
    "JobError",
    "InvalidJobIdError",
    "JobNotFoundError",
    "RateLimitError",
    "TransportError",
    "ServerError",
    "InvalidResponseError",
    "job_error_for",
]


class IntercomJobsError(Exception):
    """Base class of every exception this package raises on purpose."""


class ConfigurationError(IntercomJobsError, ValueError):
    """An argument or setting is wrong; nothing was sent."""


class MissingTokenError(ConfigurationError):
    """No token was given and ``INTERCOM_TOKEN`` is not set."""


class RunAbortedError(IntercomJobsError):
    """The run cannot go on. ``df`` holds the rows fetched before it stopped."""

    #: Every row fetched before the run stopped (set by the run engine; None only when the
    #: exception was raised outside a run).
    df: pd.DataFrame | None

    def __init__(
        self,
        message: str,
        *,
        df: pd.DataFrame | None = None,
        code: str | None = None,
        http_status: int | None = None,
        workspace: str | None = None,
    ) -> None:
        super().__init__(message)
        self.df = df
        self.code = code
        self.http_status = http_status
        #: In a run of many workspaces, the one whose answer ended the run.
        self.workspace = workspace


class AuthenticationError(RunAbortedError):
    """Intercom rejected the token (401 or a ``token_*`` code)."""


class ApiVersionError(RunAbortedError):
    """Intercom rejected the ``Intercom-Version`` header (``intercom_version_invalid``)."""


class UnreachableError(RunAbortedError):
    """Intercom cannot be reached: the run's first requests all failed before anything was
    sent (connection refused, DNS, a proxy that refused the tunnel, a failed TLS handshake) and
    none was answered; or the server's certificate does not verify against the CAs in use
    (``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``), which no retry can change. The message says
    which, in one sentence.

    A certificate problem is one of configuration, yet it is this class, not a
    `ConfigurationError`: it is found by trying (a request, not a check of arguments), may come
    after rows were read or kept (``.df`` has them, as for every run-ending error), and the
    command line and the panel already say "cannot reach Intercom" for it, with exit code 4.
    """


class CheckpointError(RunAbortedError):
    """A checkpoint or ledger cannot be used: it could not be written (disk full, read-only),
    or its last run did not end cleanly and a file it needs is missing; rows committed before
    stay in the file."""


class FileInUseError(CheckpointError):
    """Another run (another kernel, process, thread or machine) is using the ledger or
    checkpoint; this one stopped before sending anything (see ``_locking.py``)."""


class RunFailedError(RunAbortedError):
    """An unexpected error ended the run (a bug: please report it); ``__cause__`` is it."""


class FetchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run. ``df`` holds the rows fetched before it."""

    #: Every row fetched before the interruption (set by the run engine).
    df: pd.DataFrame | None

    def __init__(self, message: str = "interrupted", *, df: pd.DataFrame | None = None) -> None:
        super().__init__(message)
        self.df = df


class JobError(IntercomJobsError):
    """`fetch_job` could not read this job. ``code`` is the row's ``error_code``."""

    def __init__(
        self, message: str, *, job_id: str, code: str, record: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.code = code
        self.record = record


class InvalidJobIdError(JobError, ValueError):
    """The id is not a job id (empty, too long, ``/``, ``?``, ``..``, whitespace...)."""


class JobNotFoundError(JobError):
    """Intercom answered 404 ``job_not_found``."""


class RateLimitError(JobError):
    """Intercom answered 429 and the retries were spent."""


class TransportError(JobError):
    """A timeout or a connection error, and the retries were spent."""


class ServerError(JobError):
    """Intercom answered 5xx, and the retries were spent."""


class InvalidResponseError(JobError):
    """The answer was not a job (HTML, not JSON, no ``id``, a redirect)."""


_JOB_ERRORS: dict[str, type[JobError]] = {
    C.INVALID_JOB_ID: InvalidJobIdError,
    C.JOB_NOT_FOUND: JobNotFoundError,
    C.RATE_LIMIT_EXCEEDED: RateLimitError,
    C.TIMEOUT: TransportError,
    C.CONNECTION_ERROR: TransportError,
    C.INVALID_RESPONSE: InvalidResponseError,
}


def job_error_for(record: dict[str, Any]) -> JobError:
    """The exception that stands for an error row."""
    code = record["error_code"]
    cls = _JOB_ERRORS.get(code) or (
        ServerError if (record.get("http_status") or 0) >= 500 else JobError
    )
    message = f"job {record['job_id']!r}: {code}: {record.get('error_message') or ''}".rstrip(": ")
    return cls(message, job_id=record["job_id"], code=code, record=record)
