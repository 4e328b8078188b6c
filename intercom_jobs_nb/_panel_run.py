"""The JobsPanel's runs: one fetch (or refresh) in a background thread, Stop, auto-refresh.

`Runner` owns the thread and the events that stop or wake it; what a run reads and writes of
the panel (the ids, the token, the status, the results) goes through its `Host`, the
`PanelController`, whose state is guarded by its lock. `explain` turns what ended a run into a
sentence a support-ops person understands.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from . import _codes as C
from . import _errors as E
from ._engine import from_frame, run
from ._format import number
from ._frames import is_final
from ._options import TOKEN_ENV, Options
from ._panel_render import counts_text
from ._rows import frame_rows, to_frame, unasked_row
from ._schedule import Schedule, ScheduleName, make_schedule

if TYPE_CHECKING:
    from ._ids import JobIds
    from ._options import Secret

__all__ = ["Runner", "Host", "explain", "NO_IDS", "NO_TOKEN", "STOP_JOIN"]

STOP_JOIN = 5.0  # seconds a Refresh waits for a stopped run to finish drawing its rows
NO_TOKEN = f"No token: paste one, or set {TOKEN_ENV}."
NO_IDS = "No job ids: type or paste some, or upload a .csv/.txt file."


class Host(Protocol):
    """What a run needs of the panel (the `PanelController`)."""

    busy: bool
    state: str
    message: str
    refreshes: int
    api_version: str

    @property
    def df(self) -> pd.DataFrame | None: ...
    @property
    def where(self) -> str: ...

    def job_ids(self) -> JobIds: ...
    def has_ids(self) -> bool: ...
    def run_token(self) -> Secret | None: ...
    def run_options(self) -> Options: ...
    def rejected(self, exc: E.AuthenticationError) -> str: ...
    def set_status(self, state: str, message: str, detail: str | None = None) -> None: ...
    def set_busy(self, busy: bool) -> None: ...
    def set_auto_shown(self, on: bool) -> None: ...
    def show(self, df: pd.DataFrame) -> None: ...


class _Unreachable(Exception):
    """Every job asked failed on the network: Intercom is out of reach."""


def explain(exc: BaseException, *, where: str, api_version: str | None = None) -> tuple[str, str]:
    """A sentence for what ended a run, and the technical detail (for "Details")."""
    detail = f"{type(exc).__name__}: {exc}"
    code = getattr(exc, "code", None)
    status = getattr(exc, "http_status", None)
    if code or status:
        detail += f" (code: {code or '-'}, HTTP status: {status or '-'})"
    if isinstance(exc, E.AuthenticationError):
        text = (
            "Intercom did not accept the access token. Paste a valid token into the Token field "
            "and click Refresh."
        )
    elif isinstance(exc, E.ApiVersionError):
        text = (
            f"Intercom did not accept the API version {api_version!r} the panel asked for. "
            "Create the panel with api_version= a version your workspace supports."
        )
    elif isinstance(exc, (E.UnreachableError, _Unreachable)):
        detail = str(exc) if isinstance(exc, _Unreachable) else detail
        text = (
            f"Could not reach Intercom at {where}. Check the network connection (and any VPN or "
            "proxy) and the region, then click Refresh."
        )
    elif isinstance(exc, E.CheckpointError):
        text = (
            "Could not save the results to the checkpoint file: the disk may be full, or the "
            "file read-only or in use."
        )
    elif isinstance(exc, E.FetchInterrupted):
        text = "Stopped."
    elif isinstance(exc, E.ConfigurationError):
        text = f"A setting is not valid: {exc}."
    else:  # RunFailedError and anything else: a bug
        text = (
            "The fetch stopped on an unexpected error. This is a bug in intercom-jobs-nb: "
            "please report it with the details below."
        )
    return text, detail


def _frame_for(job_ids: JobIds, previous: pd.DataFrame) -> pd.DataFrame:
    """A jobs frame over ``job_ids`` that keeps ``previous``'s rows (by workspace and job id);
    new ids get an empty row, which the run asks for."""
    ids, workspaces = job_ids.ids, job_ids.workspaces
    same = previous["job_id"].tolist() == ids and (
        workspaces is None or previous["workspace"].tolist() == workspaces
    )
    if same:
        return previous
    old = {(row.workspace, row.job_id): row for row in frame_rows(previous)}
    lanes: list[str | None] = list(workspaces) if workspaces is not None else [None] * len(ids)
    return to_frame(
        [
            old.get((ws, job_id)) or unasked_row(job_id)._replace(workspace=ws)
            for ws, job_id in zip(lanes, ids, strict=True)
        ]
    )


def _check_network(df: pd.DataFrame, asked: set[str] | None) -> None:
    """Raise `_Unreachable` when every job asked failed on the network: rows saying only that
    would hide the last known statuses."""
    rows = df if asked is None else df.loc[df["job_id"].isin(asked)]
    rows = rows.loc[rows["error_code"].astype(object) != C.INVALID_JOB_ID]
    if not len(rows):
        return
    codes = rows["error_code"].astype(object)
    if codes.isin(C.NO_ANSWER_CODES).all():
        message = rows["error_message"].iloc[0]
        detail = "" if pd.isna(message) else str(message)
        raise _Unreachable(
            f"all {number(len(rows))} requests failed on the network; the first: "
            f"{codes.iloc[0]}: {detail}"
        )


class Runner:
    """The run's thread, Stop and auto-refresh, for one `Host`."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.auto = False
        self.interval = 10.0
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._closed = False
        # Auto-refresh's rounds, one schedule over the runs (a run per round): it learns where
        # the jobs' queue has got and asks the jobs behind it once (``_schedule.py``). Made
        # again when the ids change.
        self._plan: tuple[tuple[object, ...], Schedule] | None = None

    @property
    def running(self) -> bool:
        """Whether a fetch (or the auto-refresh loop) is running."""
        thread = self._thread
        return self.host.busy or (thread is not None and thread.is_alive())

    def start(self, *, block: bool = False) -> bool:
        """Start a run (in a thread, or here with ``block``). Returns whether one started;
        a click while the auto-refresh loop sleeps makes it poll now."""
        with self._start_lock:
            thread = self._thread
            if thread is not None and self._halt.is_set() and not self.host.busy:
                thread.join(timeout=STOP_JOIN)  # a stopped run drawing its last rows
            if self.running:
                self._wake.set()
                return False
            self._wake.clear()
            self._halt = threading.Event()
            self.host.set_busy(True)  # at once, so a second click cannot start a second run
            self.host.set_status("running", "Starting…")
            self._thread = None
            if not block:
                self._thread = threading.Thread(target=self._loop, name="jobs-panel", daemon=True)
                self._thread.start()
        if block:
            self._loop()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run (and auto-refresh polling) ends; False on timeout."""
        thread = self._thread
        if thread is None:
            return not self.host.busy
        thread.join(timeout)
        return not thread.is_alive()

    def stop(self) -> None:
        """Stop the fetch (within about a second) and auto-refresh."""
        self.set_auto(False)
        self._halt.set()
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self.stop()
        self.wait(timeout=5)

    def set_auto(self, on: bool) -> bool:
        """Auto-refresh on or off. Returns whether a run should start now (it was switched
        on with rows that may change and nothing running)."""
        if on == self.auto:
            return False
        self.auto = on
        self.host.set_auto_shown(on)
        if not on:
            self._wake.set()  # a sleeping poll loop ends now, not after its interval
            return False
        return self.may_change() and not self.running

    def may_change(self) -> bool:
        """Whether some row is not final (auto-refresh has something to poll)."""
        df = self.host.df
        return df is not None and not bool(is_final(df).all())

    def _loop(self) -> None:
        host = self.host
        polled = False  # the first run is the click's: every job not final is asked
        try:
            while not self._closed:
                self._wake.clear()
                if not host.busy:
                    host.set_busy(True)
                    host.set_status("running", "Starting…")
                try:
                    carry_on = self._run_once(polled=polled)
                finally:
                    host.set_busy(False)
                polled = True
                if not (carry_on and self.auto and self.may_change()) or not self._sleep():
                    break
            if self.auto and host.df is not None and not self.may_change():
                self.set_auto(False)  # nothing left to poll
        except Exception as exc:  # never let a thread die with a traceback in the log
            host.set_status("error", *explain(exc, where=host.where))
            host.set_busy(False)

    def _sleep(self) -> bool:
        """Wait for the next poll; False when it should not happen."""
        interval = float(self.interval)
        self.host.set_status(
            self.host.state, f"{self.host.message} Next refresh in {interval:g} s."
        )
        self._wake.wait(interval)
        if self._halt.is_set():
            self.host.set_status("stopped", "Auto-refresh stopped.")
            return False
        return self.auto and self.host.has_ids()

    def _run_once(self, *, polled: bool = False) -> bool:
        """One fetch or refresh (``polled``: a round of auto-refresh). Returns whether it
        finished (auto-refresh goes on only then)."""
        host = self.host
        if not host.has_ids():
            host.set_status("error", NO_IDS)
            return False
        previous = host.df
        kept = " The results below are from the last refresh." if previous is not None else ""
        try:
            df = self._fetch(previous, polled=polled)
        except E.FetchInterrupted as exc:
            self._stopped(exc.df)
            return False
        except E.MissingTokenError:
            host.set_status("no_token", NO_TOKEN)
            return False
        except E.AuthenticationError as exc:
            _, detail = explain(exc, where=host.where)
            host.set_status("error", host.rejected(exc) + kept, detail)
            return False
        except (E.IntercomJobsError, _Unreachable) as exc:
            text, detail = explain(exc, where=host.where, api_version=host.api_version)
            host.set_status("error", text + kept, detail)
            return False
        host.refreshes += 1
        host.show(df)
        host.set_status("finished", self._finished_text(df))
        return True

    def _fetch(self, previous: pd.DataFrame | None, *, polled: bool = False) -> pd.DataFrame:
        host = self.host
        host.run_token()  # a missing token is MissingTokenError here, before "Fetching…"
        host.set_status("running", "Fetching…")
        options = host.run_options()
        if previous is None:
            df = run(host.job_ids(), options, stop=self._halt)
            _check_network(df, None)
            return df
        frame = _frame_for(host.job_ids(), previous)
        asked = set(frame.loc[~is_final(frame), "job_id"])
        job_ids, known = from_frame(frame)
        # A click asks every job not final; auto-refresh's rounds, what the schedule says.
        plan: Schedule | ScheduleName = self._schedule(job_ids, options) if polled else "fixed"
        df = run(job_ids, options, known=known, stop=self._halt, schedule=plan)
        _check_network(df, asked)
        return df

    def _schedule(self, job_ids: JobIds, options: Options) -> Schedule:
        """The schedule of auto-refresh's rounds over ``job_ids``: the same while they are."""
        key = (
            tuple(job_ids.ids),
            None if job_ids.workspaces is None else tuple(job_ids.workspaces),
        )
        if self._plan is None or self._plan[0] != key:
            size = len(job_ids.ids)
            plan = make_schedule(
                "adaptive", job_ids.extra, size, job_ids.workspaces, options.max_workers
            )
            self._plan = (key, plan)
        return self._plan[1]

    def _stopped(self, got: pd.DataFrame | None) -> None:
        # Said first, and Refresh enabled again, then the rows drawn (the chart takes a while):
        # a person who clicked Stop sees it at once.
        host = self.host
        rows = 0 if got is None else len(got)
        total = len(host.job_ids().ids)
        host.set_status(
            "stopped",
            f"Stopped: {number(rows)} of {number(total)} jobs are in panel.df; "
            "Refresh asks the rest.",
        )
        host.set_busy(False)
        if got is not None and len(got):
            host.show(got)

    def _finished_text(self, df: pd.DataFrame) -> str:
        stamp = time.strftime("%H:%M:%S")
        text = f"Finished refresh #{self.host.refreshes} at {stamp}: {counts_text(df)}."
        transient = df["error_code"].notna() & ~is_final(df)
        if transient.any():
            text += (
                f" {number(int(transient.sum()))} jobs could not be read for a passing reason "
                "(filter by error code to see them); Refresh asks them again."
            )
        return text
