"""Dask: many workspaces over several processes or machines, one task and one gate each.

`fetch_jobs` and `wait_for_jobs` take a Dask DataFrame (or a pandas one, split for you) with a
``job_id`` and a ``workspace`` column, and return a lazy Dask DataFrame of result rows: the
columns of `intercom_jobs_nb.fetch_jobs`, the input's other columns, and ``workspace`` (a
categorical of the workspaces of ``tokens``). It is computed on whatever ``dask.distributed``
client is active (or Dask's local scheduler). `to_parquet` writes it as a Parquet dataset, one
folder per workspace. Only this module imports Dask (the optional extra ``dask``).

One partition per workspace, rather than a ``distributed.Semaphore`` per workspace
-------------------------------------------------------------------------------------

A workspace's budget (Intercom's limit is per app per workspace) is only used well by one pacing
gate: the gate that reads the ``X-RateLimit-*`` headers and spreads the requests over each window
(``_pacing.py``) lives in one process, one per (token, host). Two tasks of one workspace at once,
in two processes, would be two gates racing for one budget: 429s, or each held to a guessed share.

- A ``Semaphore(1)`` per workspace keeps them apart, but a task of workspace A waiting for the
  semaphore holds a worker thread doing nothing, and the workspace's budget is cut in as many
  small runs as partitions, each paying the gate's start (one partial window each).
- One partition per workspace (what this module does: a pandas frame is split on the client; a
  Dask frame is shuffled by workspace with ``set_index`` on the workspace's number, with known
  divisions, so nothing is computed to build the graph) gives each workspace exactly one task:
  one in-process run (`intercom_jobs_nb._fetch.fetch_jobs`, 32 threads, one gate) holds its whole
  budget from start to end, and a workspace's 429s or slow answers never hold another back,
  since each has its own task. Workspaces are the unit of parallelism; a workspace never needs
  more than one process (one process makes about 1,000 requests a second, six times one app's
  limit).

A task mostly waits on the network, so a worker should have about as many threads as the
workspaces it runs at once (``LocalCluster(n_workers=2, threads_per_worker=4)`` runs 8 at once).

A worker's task profiler is stopped on Python 3.11 and earlier
--------------------------------------------------------------

A task starts and ends up to ``max_workers`` threads. On Python before 3.12 that can deadlock a
whole worker process (seen here 4 times in 134 runs of four workspaces on two cores, and once in
CI): the worker's profiler calls ``sys._current_frames()`` every 10 ms, which holds the
interpreter's list of threads locked while it allocates; an allocation can start a garbage
collection that lets go of the GIL (distributed's own GC callback does); a thread starting or
ending then takes the GIL and waits for that lock, while the profiler waits for the GIL (CPython
gh-106883, distributed #8616). distributed already turns off its event-loop profiler on 3.11
for this reason, not the one that samples tasks. So on those Pythons a task of this module
stops its worker's task profiler before it starts a thread (logged once per worker; the
dashboard's profile of that worker stays empty from then on). Python 3.12 and later are not
affected and keep it.

Tokens never enter the graph
----------------------------

``tokens`` maps each workspace to ``"env:NAME"``: the graph, its task keys, logs and the
dashboard carry only the variable's name, read on the worker (``os.environ[NAME]``) when the task
runs. A token in clear or an `ij.Secret` (which refuses to be pickled) is refused with a
`ConfigurationError` saying so. Set the variables in every worker's environment (a
``LocalCluster`` inherits the environment of the process that starts it).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.dataframe.io.parquet.arrow import ArrowDatasetEngine
from dask.dataframe.utils import make_meta

from . import _polling as polling
from ._errors import ConfigurationError
from ._fetch import fetch_jobs as _fetch_jobs
from ._options import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_TIMEOUT,
    ENV_NAME,
    ENV_PREFIX,
    ConnectionOptions,
    Options,
    RequestOptions,
    Secret,
    check_option_names,
)
from ._parquet import ARROW_TYPES, with_string_storage
from ._rows import DTYPES, OPEN_CATEGORIES, REQUIRED_COLUMNS, to_frame, user_columns
from ._schedule import ScheduleName, check_schedule

if TYPE_CHECKING:
    from typing_extensions import Unpack


class DaskOptions(ConnectionOptions, RequestOptions, total=False):
    """The options of `fetch_jobs` here: `ClientOptions` but the token's (``tokens`` is its own
    argument, ``"env:NAME"`` only) and ``progress`` (a worker shows none)."""


__all__ = ["fetch_jobs", "wait_for_jobs", "to_parquet", "WORKSPACE", "DaskOptions"]

log = logging.getLogger(__name__)

#: The column naming each row's workspace.
WORKSPACE = "workspace"

_PART = "__ij_part__"  # the workspace's number: its partition
_ORDER = "__ij_order__"  # the row's place in the input, to keep its order in the partition
# The columns of a one-workspace result (``workspace`` is ours to add).
_RESULT_COLUMNS = REQUIRED_COLUMNS
# The result columns' categoricals whose categories depend on the rows (not ``workspace``,
# whose categories are the workspaces of ``tokens``).
_OPEN_CATEGORIES = [name for name in OPEN_CATEGORIES if name != WORKSPACE]


# -- checks, on the client: nothing is sent, nothing computed ------------------------------------


def _token_names(tokens: Any) -> dict[str, str]:
    """``tokens`` as workspace -> environment variable name, or a ConfigurationError."""
    if not isinstance(tokens, Mapping) or not tokens:
        raise ConfigurationError(
            'tokens must be a non-empty dict {workspace: "env:NAME"}, e.g. '
            '{"acme": "env:INTERCOM_TOKEN_ACME"}'
        )
    names: dict[str, str] = {}
    for workspace, ref in tokens.items():
        if not isinstance(workspace, str) or not workspace:
            raise ConfigurationError(
                f"workspace names must be non-empty strings, not {workspace!r}"
            )
        if isinstance(ref, Secret) or not (isinstance(ref, str) and ref.startswith(ENV_PREFIX)):
            kind = "an ij.Secret" if isinstance(ref, Secret) else f"a {type(ref).__name__}"
            raise ConfigurationError(
                f"the token of workspace {workspace!r} is {kind}, not a reference: a token must "
                f"not travel in the task graph; set it in the workers' environment and pass "
                f'"env:NAME" (e.g. tokens={{{workspace!r}: "env:INTERCOM_TOKEN_'
                f'{re.sub(r"[^A-Za-z0-9]", "_", workspace).upper()}"}})'
            )
        name = ref[len(ENV_PREFIX) :]
        if not ENV_NAME.fullmatch(name):
            raise ConfigurationError(
                f"the token reference of workspace {workspace!r} must be env:NAME with NAME an "
                "environment variable name (letters, digits and _, not starting with a digit); "
                "it is not shown, in case it holds a token"
            )
        names[workspace] = name
    return names


def _check_options(allowed: Any, **options: Any) -> None:
    """Check the run's options as `Options.build` does, with a placeholder token.

    Raises:
        TypeError: a keyword that is not one of ``allowed`` (a TypedDict of options).
        ConfigurationError: a value that is not valid.
    """
    check_option_names(options, allowed)
    Options.build(token=Secret("placeholder"), progress=False, **options)


def _check_columns(meta: pd.DataFrame) -> None:
    missing = [c for c in ("job_id", WORKSPACE) if c not in meta.columns]
    if missing:
        raise ConfigurationError(
            f"the frame needs a job_id and a workspace column; it lacks {missing}"
        )
    clash = [c for c in (_PART, _ORDER) if c in meta.columns]
    if clash:
        raise ConfigurationError(f"the columns {clash} are reserved; rename them")


def _unknown_workspaces(values: pd.Series, names: Mapping[str, Any]) -> None:
    if values.isna().any():
        raise ConfigurationError(f"{int(values.isna().sum())} rows have no workspace")
    unknown = sorted(set(values.astype(str)) - set(names))
    if unknown:
        raise ConfigurationError(
            f"workspace(s) {unknown[:10]} have no token in tokens= (it names {sorted(names)})"
        )


def _result_meta(meta: pd.DataFrame, workspaces: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The empty, typed frame a partition returns (result columns, the user's, workspace), and
    the same as Dask's meta (the categories that depend on the rows marked unknown)."""
    inner = meta.drop(columns=[WORKSPACE])
    if set(_RESULT_COLUMNS) <= set(inner.columns):  # a result frame, to wait on
        extra = user_columns(inner)
    else:
        extra = inner.drop(columns=["job_id"])
    frame = to_frame([], extra.iloc[:0] if extra is not None else None)
    for name in _RESULT_COLUMNS:  # as a partition has them (an empty frame may differ: us)
        if not isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(DTYPES[name])
    frame[WORKSPACE] = pd.Categorical([], categories=workspaces)
    # The open categoricals' categories depend on each partition's rows: unknown to Dask.
    unknown = dd.utils.clear_known_categories(
        frame, cols=[c for c in _OPEN_CATEGORIES if c in frame.columns], index=False
    )
    unknown[WORKSPACE] = frame[WORKSPACE]
    return frame, unknown


# -- one partition per workspace -----------------------------------------------------------------


def _number(
    pdf: pd.DataFrame, numbers: dict[str, int], partition_info: dict | None = None
) -> pd.DataFrame:
    """Add each row's workspace number (its partition) and its place in the input."""
    _unknown_workspaces(pdf[WORKSPACE], numbers)
    part = 0 if partition_info is None else int(partition_info["number"])
    return pdf.assign(
        **{
            _PART: pdf[WORKSPACE].astype(str).map(numbers).astype("int64").to_numpy(),
            _ORDER: (np.int64(part) << 32) + np.arange(len(pdf), dtype="int64"),
        }
    )


def _part(pdf: pd.DataFrame) -> pd.DataFrame:
    """A workspace's rows, split on the client (``from_map``'s reader)."""
    return pdf


def _by_workspace(data: Any, names: dict[str, str]) -> dd.DataFrame:
    """The rows as a Dask DataFrame with exactly one partition per workspace of ``names`` (in
    its order; empty for a workspace without rows), indexed by the workspace's number."""
    numbers = {workspace: i for i, workspace in enumerate(names)}
    if isinstance(data, pd.DataFrame):  # split here: no shuffle to wait for
        _check_columns(data)
        _unknown_workspaces(data[WORKSPACE], names)
        numbered = _number(data.reset_index(drop=True), numbers)
        parts = [
            numbered[numbered[_PART] == i]
            .drop(columns=[_PART])
            .set_index(pd.Index(np.full(int((numbered[_PART] == i).sum()), i), name=_PART))
            for i in range(len(names))
        ]
        return dd.from_map(
            _part, parts, meta=parts[0].iloc[:0], divisions=list(range(len(names) + 1))
        )
    if not isinstance(data, dd.DataFrame):
        raise ConfigurationError(
            f"expected a Dask or pandas DataFrame with job_id and workspace columns, "
            f"got {type(data).__name__}"
        )
    empty = make_meta(data)  # the frame's empty pandas frame (dask's own, not a copy)
    _check_columns(empty)
    meta = empty.assign(
        **{_PART: pd.Series([], dtype="int64"), _ORDER: pd.Series([], dtype="int64")}
    )
    numbered = data.map_partitions(_number, numbers, meta=meta)
    # Known divisions [0, 1), [1, 2), ..., [n-1, n]: partition i holds workspace i exactly.
    return numbered.set_index(_PART, divisions=list(range(len(names) + 1)), sorted=False)


# Pythons whose sys._current_frames() can deadlock against a thread starting (module docstring).
_PROFILER_DEADLOCKS = sys.version_info < (3, 12)
_PROFILER_STOP_WAIT = 10.0  # seconds for the worker's event loop to run the stop


def _stop_task_profiler() -> None:
    """On a Python where it can deadlock the worker, stop the task profiler of the Dask worker
    running this task, and return once it can no longer run (see the module docstring)."""
    if not _PROFILER_DEADLOCKS:
        return
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not on a distributed worker: no profiler
        return
    profiler = worker.periodic_callbacks.get("profile")
    if profiler is None or not profiler.is_running():
        return
    stopped = threading.Event()

    def stop() -> None:  # on the worker's event loop, where the profiler runs: not mid-sample
        if profiler.is_running():
            profiler.stop()
            log.warning(
                "intercom_jobs_nb stopped the task profiler of Dask worker %s: on Python "
                "%d.%d it can deadlock a worker whose tasks start threads (CPython gh-106883); "
                "Python 3.12 and later keep it",
                worker.address,
                *sys.version_info[:2],
            )
        stopped.set()

    worker.loop.add_callback(stop)
    stopped.wait(_PROFILER_STOP_WAIT)


def _run_partition(
    pdf: pd.DataFrame,
    empty: pd.DataFrame,
    names: dict[str, str],
    wait: bool,
    options: dict[str, Any],
) -> pd.DataFrame:
    """One workspace's rows: one in-process run with its token, read here from the environment."""
    if pdf.empty:  # a workspace of tokens without rows
        return empty.copy()
    _stop_task_profiler()
    pdf = pdf.sort_values(_ORDER, kind="stable").reset_index(drop=True)
    (workspace,) = pdf[WORKSPACE].astype(str).unique()  # one workspace by construction
    # The engine reads "env:NAME" here, on the worker (`options.Secret.wrap`), and keeps each
    # row's workspace.
    tokens = {workspace: f"{ENV_PREFIX}{names[workspace]}"}
    rows = pdf.drop(columns=[_ORDER])
    if wait:
        out = polling.wait_for_jobs(rows, tokens=tokens, progress=False, **options)
    else:
        out = _fetch_jobs(rows, tokens=tokens, progress=False, **options)
    dtype = pd.CategoricalDtype(empty[WORKSPACE].cat.categories)
    out[WORKSPACE] = pd.Categorical([workspace] * len(out), dtype=dtype)
    out.attrs = {}
    return out[list(empty.columns)]


def _results(data: Any, tokens: Any, wait: bool, options: dict[str, Any]) -> dd.DataFrame:
    names = _token_names(tokens)
    by_workspace = _by_workspace(data, names)
    empty, meta = _result_meta(make_meta(by_workspace).drop(columns=[_ORDER]), list(names))
    return by_workspace.map_partitions(
        _run_partition,
        empty,
        names,
        wait,
        options,
        meta=meta,
        enforce_metadata=False,
        align_dataframes=False,
    )


# -- the public calls ----------------------------------------------------------------------------


def fetch_jobs(
    ddf: dd.DataFrame | pd.DataFrame,
    *,
    tokens: Mapping[str, str],
    **options: Unpack[DaskOptions],
) -> dd.DataFrame:
    """The status of many jobs of many workspaces, as a lazy Dask DataFrame (one partition per
    workspace: one task, one in-process `intercom_jobs_nb._fetch.fetch_jobs`, one pacing gate).

    Args:
        ddf: a Dask or pandas DataFrame with ``job_id`` and ``workspace`` columns; its other
            columns come back alongside the results.
        tokens: workspace -> ``"env:NAME"``: the token is read from the environment variable
            NAME on the worker that runs the workspace's task (never sent in the graph).
        **options: `DaskOptions`, as in `intercom_jobs_nb.fetch_jobs`, for each workspace
            (``max_rps`` caps each one).

    Returns:
        A Dask DataFrame: the columns of `intercom_jobs_nb.fetch_jobs`, the input's own,
        and ``workspace`` (categorical). Partition i is the workspace i of ``tokens``, its rows
        in input order, one per distinct job id. Nothing runs until it is computed.

    Raises:
        ConfigurationError: at once, for a bad argument, a token that is not ``"env:NAME"``,
            a missing column or (for a pandas frame) a workspace without a token; when
            computed, for a workspace without a token (Dask frames) or a variable not set on
            the worker (`MissingTokenError`, naming the variable).

    Example:
        >>> import intercom_jobs_nb.dask as ijd                       # doctest: +SKIP
        >>> out = ijd.fetch_jobs(df, tokens={"acme": "env:INTERCOM_TOKEN_ACME"})
        >>> out.compute()                                             # doctest: +SKIP
    """
    _check_options(DaskOptions, **options)
    return _results(ddf, tokens, False, dict(options))


def wait_for_jobs(
    ddf: dd.DataFrame | pd.DataFrame,
    *,
    tokens: Mapping[str, str],
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float | None = None,
    request_timeout: float = DEFAULT_TIMEOUT,
    schedule: ScheduleName = "adaptive",
    **options: Unpack[ConnectionOptions],
) -> dd.DataFrame:
    """`fetch_jobs`, then poll each workspace's jobs still pending until all are final or
    ``timeout`` passes (each workspace's own task: `intercom_jobs_nb.wait_for_jobs`).

    ``ddf`` may also be a result of `fetch_jobs` (its final rows are kept). Jobs still pending at
    the timeout keep ``status == "pending"`` (a Dask frame has no ``attrs["timed_out"]``).
    Arguments as in `intercom_jobs_nb.wait_for_jobs` and `fetch_jobs` here.
    """
    if isinstance(poll_interval, bool) or not (
        isinstance(poll_interval, (int, float)) and 0 <= poll_interval < 1e6
    ):
        raise ConfigurationError(f"poll_interval must be >= 0 seconds, got {poll_interval!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not (isinstance(timeout, (int, float)) and timeout >= 0)
    ):
        raise ConfigurationError(f"timeout must be >= 0 seconds or None, got {timeout!r}")
    try:
        check_schedule(schedule)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    _check_options(ConnectionOptions, **options)
    _check_options(RequestOptions, timeout=request_timeout)
    run: dict[str, Any] = dict(options)
    run.update(
        poll_interval=poll_interval,
        timeout=timeout,
        request_timeout=request_timeout,
        schedule=schedule,
    )
    return _results(ddf, tokens, True, run)


class _ParquetEngine(ArrowDatasetEngine):
    """Dask's pyarrow engine, its files' pandas metadata naming each ``string[pyarrow]``
    column's storage, as `intercom_jobs_nb.export_parquet` does (else pandas 2 reads those
    columns back as ``string[python]``).

    A private name of dask's, on purpose: ``dask.dataframe.to_parquet`` has no public way to
    change the pandas metadata it writes (``custom_metadata`` refuses the ``pandas`` key), and
    ``_pandas_to_arrow_table`` is where each partition becomes an Arrow table (the same from
    dask 2024.8 to 2026.8). ``tests/test_dask.py`` fails if the name goes away."""

    @classmethod
    def _pandas_to_arrow_table(
        cls, df: pd.DataFrame, preserve_index: bool = False, schema: Any = None
    ) -> Any:
        table = super()._pandas_to_arrow_table(df, preserve_index=preserve_index, schema=schema)
        return with_string_storage(table, df)


def to_parquet(ddf: dd.DataFrame, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Compute ``ddf`` (from `fetch_jobs` or `wait_for_jobs`) into a Parquet dataset, one folder
    per workspace (``workspace=acme/part.0.parquet``...), with the column types and values of
    `intercom_jobs_nb.export_parquet`. ``pd.read_parquet(path)`` reads it back whole, the
    workspace a categorical. Extra keyword arguments go to ``dask.dataframe.to_parquet``.

    Returns:
        The dataset's folder, absolute.

    Raises:
        ConfigurationError: ``ddf`` has no workspace column, or the parent folder is missing.
    """
    if not isinstance(ddf, dd.DataFrame) or WORKSPACE not in ddf.columns:
        raise ConfigurationError("to_parquet needs a Dask DataFrame with a workspace column")
    target = Path(path).expanduser().resolve()
    if not target.parent.is_dir():
        raise ConfigurationError(f"cannot write {str(target)!r}: no such folder")
    kwargs.setdefault("write_index", False)
    kwargs.setdefault("engine", _ParquetEngine)
    # Every file the same types, whatever its rows: a categorical all missing in one partition
    # would be a dictionary of nulls there, and Parquet wants one schema for the dataset.
    schema = {name: kind for name, kind in ARROW_TYPES.items() if name in ddf.columns}
    schema.pop(WORKSPACE, None)  # the folders' names, not a column of the files
    kwargs.setdefault("schema", schema)
    # Partitioned on plain strings: on a categorical, every task would write a file (empty)
    # into the folder of every workspace. Read back, the folder names are a categorical again.
    ddf = ddf.astype({WORKSPACE: "string"})
    ddf.to_parquet(str(target), partition_on=[WORKSPACE], **kwargs)
    return target
