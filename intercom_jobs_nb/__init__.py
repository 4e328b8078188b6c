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

The modules behind it are private (``_name``: import from the package, not from them), a concern
each: ``_rows`` (the result row and its one ``final`` rule), ``_codes`` (every error code),
``_options`` (every option, its default and check, and the token), ``_ids`` (input), ``_client``
(`Client`: the options once, a method per call), ``_transports`` (the `Transport` interface,
`HTTPTransport` and `MockTransport`), ``_transport`` (the network: one request, bounded, with
retries), ``_pacing`` (the rate-limit gate), ``_clock`` (the time the gate and the engine wait
through; a fake one for tests), ``_engine`` (the one run loop), ``_checkpoint``, ``_fetch`` and
``_polling`` (the public calls), ``_frames`` (analysis and CSV), ``_parquet``, ``_progress``,
``_plotting``, ``_panel_render``, ``_panel_controller`` and ``_widgets`` (the JobsPanel),
``sandbox`` (a local Intercom), ``_cli``, and ``dask`` (many workspaces on a cluster; the ``dask``
extra, imported only as ``intercom_jobs_nb.dask``).
"""

from ._client import Client
from ._enqueue import enqueue_tickets
from ._errors import (
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
from ._fetch import fetch_job, fetch_jobs
from ._frames import Summary, export_csv, failures, join_jobs, summarize
from ._ids import check_job_id
from ._options import REGIONS, ClientOptions, Secret, __version__, get_token
from ._parquet import checkpoint_to_parquet, export_parquet
from ._plotting import outcome_counts, outcomes, plot_status
from ._polling import refresh, wait_for_jobs
from ._progress import Snapshot
from ._tickets import fetch_tickets
from ._transports import HTTPTransport, MockTransport, Request, Response, Transport
from ._widgets import JobsPanel
from .sandbox import Sandbox

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
    "Summary",
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
    "HTTPTransport",
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

# Public names say they are the package's (``intercom_jobs_nb.Client``, not
# ``intercom_jobs_nb._client.Client``) in reprs, tracebacks and the docs, as httpx does.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) or callable(_value):  # not the values (REGIONS, __version__)
        _value.__module__ = "intercom_jobs_nb"
del _name, _value
