"""intercom-jobs-nb: what became of my Intercom jobs?

The public API, in one place::

    import intercom_jobs_nb as ij
    job = ij.fetch_job("20")                      # one job -> dict; typed exceptions
    df = ij.fetch_jobs(ids, region="eu")          # many jobs -> pandas.DataFrame
    ij.summarize(df)                              # counts and shares
    ij.export_csv(df, "jobs.csv")                 # -> the path written
    df = ij.wait_for_jobs(ids, checkpoint="jobs.sqlite")   # poll until every job is final
    df = ij.refresh(df)                           # ask again only what may still change
    df = ij.fetch_jobs(frame, tokens={"acme": "env:ACME_TOKEN", ...})  # many workspaces
    with ij.Client(region="eu") as client:        # the options once, for many calls
        df = client.wait_for_jobs(client.enqueue_tickets(rows, ledger="t.sqlite"))
    ij.MockTransport(handler)                     # answers from a function: tests, offline

Every call that talks to Intercom takes the same keyword-only options, `ClientOptions` (each
one's default and meaning: ``help(ij.ClientOptions)``), e.g. ``token`` (default: the
``INTERCOM_TOKEN`` environment variable), ``region``, ``base_url``, ``timeout``, ``transport``.

The modules behind it, a concern each: ``rows`` (the result row and its one ``final`` rule),
``codes`` (every error code), ``options`` (every option, its default and check, and the
token), ``ids`` (input), ``client`` (`Client`: the options once, a method per call),
``transports`` (the `Transport` interface and `MockTransport`), ``transport`` (the network: one
request, bounded, with retries), ``pacing`` (the rate-limit gate), ``clock``
(the time the gate and the engine wait through; a fake one for tests), ``engine`` (the one run
loop), ``checkpoint``, ``fetch`` and ``polling`` (the public calls), ``frames`` (analysis and
CSV), ``parquet``, ``progress``, ``plotting``, ``panel_render``, ``panel_controller`` and
``widgets`` (the JobsPanel), ``sandbox`` (a local Intercom), ``cli``, and ``dask`` (many
workspaces on a cluster; the ``dask`` extra, imported only as ``intercom_jobs_nb.dask``).
"""

from .client import Client
from .enqueue import enqueue_tickets
from .errors import (
    ApiVersionError,
    AuthenticationError,
    CheckpointError,
    ConfigurationError,
    FetchInterrupted,
    FileInUseError,
    IntercomJobsError,
    InvalidJobIdError,
    InvalidResponseError,
    JobError,
    JobNotFoundError,
    MissingTokenError,
    RateLimitError,
    RunAbortedError,
    RunFailedError,
    ServerError,
    TransportError,
    UnreachableError,
)
from .fetch import fetch_job, fetch_jobs
from .frames import export_csv, failures, join_jobs, summarize
from .ids import check_job_id
from .options import REGIONS, ClientOptions, Secret, __version__, get_token
from .parquet import checkpoint_to_parquet, export_parquet
from .plotting import outcome_counts, outcomes, plot_status
from .polling import refresh, wait_for_jobs
from .progress import Snapshot
from .sandbox import Sandbox
from .tickets import fetch_tickets
from .transports import MockTransport, Request, Response, Transport
from .widgets import JobsPanel

__all__ = [
    # the client and its options
    "Client",
    "ClientOptions",
    # fetching
    "fetch_job",
    "fetch_jobs",
    "wait_for_jobs",
    "refresh",
    "enqueue_tickets",
    "fetch_tickets",
    # analysis
    "summarize",
    "failures",
    "join_jobs",
    "export_csv",
    "export_parquet",
    "checkpoint_to_parquet",
    "check_job_id",
    "plot_status",
    "outcomes",
    "outcome_counts",
    # the notebook panel
    "JobsPanel",
    # the local Intercom, and answers from a function
    "Sandbox",
    "MockTransport",
    "Response",
    "Request",
    "Transport",
    # settings and progress
    "REGIONS",
    "Secret",
    "get_token",
    "Snapshot",
    # exceptions
    "IntercomJobsError",
    "ConfigurationError",
    "MissingTokenError",
    "RunAbortedError",
    "AuthenticationError",
    "ApiVersionError",
    "CheckpointError",
    "FileInUseError",
    "UnreachableError",
    "RunFailedError",
    "FetchInterrupted",
    "JobError",
    "InvalidJobIdError",
    "JobNotFoundError",
    "RateLimitError",
    "TransportError",
    "ServerError",
    "InvalidResponseError",
    "__version__",
]
