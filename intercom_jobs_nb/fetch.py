"""Fetching: many job statuses at once, concurrently, paced, with progress, into a DataFrame.

The design: ``max_workers`` threads, each with its own `requests.Session` (one keep-alive
connection), take ids from a shared counter and put finished rows on a queue. The calling thread
only reads that queue: it counts, shows progress, hands rows to the checkpoint, and stays
responsive to Ctrl-C. One `RateGate` paces every worker from Intercom's rate-limit headers.
Rows are tuples kept in a list in input order, so 100,000 jobs cost a few hundred bytes each.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from . import errors as E
from .checkpoint import Checkpoint
from .frames import to_frame
from .ids import JobIds, check_job_id, read_job_ids
from .options import DEFAULT_API_VERSION, Options
from .pacing import RateGate
from .progress import Progress, Snapshot
from .transport import Fatal, Stopped, error_row, fetch_row, new_session

_DONE = object()  # a worker has finished
BATCH_ROWS = 200  # rows handed to the checkpoint at most at once
RowSink = Callable[[list[tuple]], None]


def fetch_rows(ids: Sequence[str], options: Options, *, progress: Progress | None = None,
               sink: RowSink | None = None) -> list[tuple | None]:
    """Fetch checked ids concurrently. Returns one row per id, in the same order.

    On an abort or a Ctrl-C the exception raised carries ``.rows``: what was fetched so far
    (``None`` where nothing was).
    """
    n = len(ids)
    rows: list[tuple | None] = [None] * n
    if not n:
        return rows
    stop = threading.Event()
    gate = RateGate(max_rps=options.max_rps, stop=stop)
    out: queue.SimpleQueue = queue.SimpleQueue()
    next_index = iter(range(n)).__next__
    take = threading.Lock()

    def work() -> None:
        try:
            session = new_session(options)
        except BaseException as exc:  # pragma: no cover - e.g. a broken CA bundle setting
            out.put(("crash", exc))
            out.put(_DONE)
            return
        try:
            while not stop.is_set():
                with take:
                    try:
                        i = next_index()
                    except StopIteration:
                        break
                try:
                    out.put((i, fetch_row(session, options, gate, ids[i])))
                except Stopped:
                    break
                except Fatal as fatal:
                    out.put(("fatal", fatal))
                    stop.set()
                    break
                except BaseException as exc:
                    out.put(("crash", exc))
                    stop.set()
                    break
        finally:
            session.close()
            out.put(_DONE)

    workers = [threading.Thread(target=work, name=f"intercom-jobs-{k}", daemon=True)
               for k in range(min(options.max_workers, n))]
    for thread in workers:
        thread.start()
    running = len(workers)
    problem: tuple[str, BaseException] | None = None
    batch: list[tuple] = []

    def receive(item: Any) -> None:
        nonlocal running, problem
        if item is _DONE:
            running -= 1
        elif isinstance(item[0], str):
            problem = problem or item
        elif rows[item[0]] is None:
            i, row = item
            rows[i] = row
            batch.append(row)
            if progress is not None:
                progress.row(row)

    try:
        while running:
            try:
                item = out.get(timeout=0.25)
            except queue.Empty:
                continue
            # Drain what is ready and hand it on in one batch, but never more than BATCH_ROWS:
            # workers faster than this loop would otherwise keep rows out of the checkpoint.
            while True:
                receive(item)
                if len(batch) >= BATCH_ROWS:
                    break
                try:
                    item = out.get_nowait()
                except queue.Empty:
                    break
            if batch:
                if sink is not None:
                    sink(batch)
                batch = []
    except KeyboardInterrupt:
        stop.set()
        # Rows already answered but not yet read are fetched too: keep them, don't ask again.
        while True:
            try:
                receive(out.get_nowait())
            except queue.Empty:
                break
        if batch and sink is not None:
            sink(batch)
        interrupted = E.FetchInterrupted("interrupted: the rows fetched so far are on .df")
        interrupted.rows = rows  # type: ignore[attr-defined]
        raise interrupted from None
    finally:
        stop.set()
    if problem is not None:
        kind, exc = problem
        if kind == "fatal":
            assert isinstance(exc, Fatal)
            aborted = exc.kind(str(exc), code=exc.code, http_status=exc.http_status)
            aborted.rows = rows  # type: ignore[attr-defined]
            raise aborted
        raise exc
    return rows


def _attach_partial(exc: BaseException, frame_of: Callable[[list[tuple | None]], pd.DataFrame]
                    ) -> None:
    rows = getattr(exc, "rows", None)
    if rows is not None:
        exc.df = frame_of(rows)  # type: ignore[attr-defined]
        del exc.rows  # type: ignore[attr-defined]


def fetch_jobs(
    ids: Any,
    *,
    token: str | None = None,
    region: str = "us",
    base_url: str | None = None,
    api_version: str | None = DEFAULT_API_VERSION,
    timeout: float = 30.0,
    retries: int = 4,
    max_workers: int = 32,
    max_rps: float | None = None,
    progress: bool | Callable[[Snapshot], Any] = True,
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
        ``error_code``, ``error_message``, ``request_id``, ``attempts``, ``fetched_at``.
        A job that could not be read is a row with ``status`` missing and ``error_code`` set.

    Raises:
        MissingTokenError: no token and no ``INTERCOM_TOKEN``.
        ConfigurationError: a bad argument; nothing was sent.
        AuthenticationError: Intercom rejected the token (``.df`` has the rows so far).
        FetchInterrupted: Ctrl-C (``.df`` has the rows so far).

    Example:
        >>> import intercom_jobs_nb as ij
        >>> with ij.Sandbox() as sb:                                  # doctest: +SKIP
        ...     df = ij.fetch_jobs(sb.job_ids, token=sb.token, base_url=sb.base_url)
    """
    options = Options.build(token=token, region=region, base_url=base_url,
                            api_version=api_version, timeout=timeout, retries=retries,
                            max_workers=max_workers, max_rps=max_rps, progress=progress)
    return run_with_checkpoint(read_job_ids(ids), options, checkpoint)


def run_with_checkpoint(job_ids: JobIds, options: Options, path: str | os.PathLike | None, *,
                        known: dict[str, tuple] | None = None) -> pd.DataFrame:
    """`run`, with rows saved as they come and final saved rows not asked for again."""
    if path is None:
        return run(job_ids.ids, job_ids.invalid, options, extra=job_ids.extra, known=known)
    with Checkpoint(path, options.base_url) as checkpoint:
        saved = checkpoint.final_rows()
        saved.update(known or {})
        return run(job_ids.ids, job_ids.invalid, options, extra=job_ids.extra, known=saved,
                   sink=checkpoint.write)


def run(ids: Sequence[str], invalid: dict[str, str], options: Options, *,
        extra: pd.DataFrame | None = None, known: dict[str, tuple] | None = None,
        sink: RowSink | None = None) -> pd.DataFrame:
    """Rows for ``ids``: invalid ones made here, ``known`` ones kept, the rest fetched."""
    known = known or {}
    rows: list[tuple | None] = [None] * len(ids)
    todo: list[int] = []
    for i, job_id in enumerate(ids):
        if job_id in invalid:
            rows[i] = error_row(job_id, None, E.INVALID_JOB_ID, invalid[job_id])
        elif job_id in known:
            rows[i] = known[job_id]
        else:
            todo.append(i)
    progress = Progress(options.progress, len(ids)) if options.progress else None
    if progress is not None:
        for row in rows:
            if row is not None:
                progress.count(row)
        progress.advance(len(ids) - len(todo))

    def frame_of(fetched: list[tuple | None]) -> pd.DataFrame:
        merged = list(rows)
        for k, i in enumerate(todo):
            merged[i] = fetched[k]
        keep = [i for i, row in enumerate(merged) if row is not None]
        sub_extra = extra.iloc[keep].reset_index(drop=True) if extra is not None else None
        return to_frame([merged[i] for i in keep], sub_extra)

    try:
        fetched = fetch_rows([ids[i] for i in todo], options, progress=progress, sink=sink)
    except (E.RunAbortedError, E.FetchInterrupted) as exc:
        _attach_partial(exc, frame_of)
        raise
    finally:
        if progress is not None:
            progress.close()
    for k, i in enumerate(todo):
        rows[i] = fetched[k]
    del fetched
    return to_frame(rows, extra, consume=True)


def fetch_job(
    job_id: str | int,
    *,
    token: str | None = None,
    region: str = "us",
    base_url: str | None = None,
    api_version: str | None = DEFAULT_API_VERSION,
    timeout: float = 30.0,
    retries: int = 4,
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
    options = Options.build(token=token, region=region, base_url=base_url,
                            api_version=api_version, timeout=timeout, retries=retries,
                            max_workers=1, progress=False)
    checked, problem = check_job_id(job_id)
    if problem:
        raise E.InvalidJobIdError(f"job id {checked!r} {problem}; it was not sent",
                                  job_id=checked, code=E.INVALID_JOB_ID)
    df = run([checked], {}, options)
    record = df.iloc[0].to_dict()
    record = {k: (None if v is pd.NA or (not isinstance(v, str) and pd.isna(v)) else v)
              for k, v in record.items()}
    if record["error_code"] is not None:
        raise E.job_error_for(record)
    return record

