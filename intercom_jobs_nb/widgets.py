"""Widgets: `JobsPanel`, the notebook front end to `fetch_jobs` and `refresh`.

Everything the panel does is a library call (the engine's run behind `fetch_jobs` on the first
Refresh and `refresh` on the later ones, given a stop event for the Stop button; `summarize`,
`plot_status`, `export_csv`); the panel only gathers the inputs and shows the results. Fetches
run in a background thread so the kernel stays free for other cells; ipykernel sends widget
updates from any thread, and the progress callback already arrives only a few times a second, so
no extra throttling is needed.

A token typed into the panel is moved into a `Secret` (whose repr hides it) the moment it is
used, and the Password field is emptied: widget state saved with the notebook never holds it.
"""

from __future__ import annotations

import html
import os
import re
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd

from . import codes as C
from . import errors as E
from .engine import from_frame, run
from .frames import export_csv, is_final, summarize
from .ids import ID_FILE_SUFFIXES, read_job_ids
from .options import (
    DEFAULT_API_VERSION,
    DEFAULT_MAX_RPS,
    DEFAULT_MAX_WORKERS,
    DEFAULT_REGION,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    REGIONS,
    TOKEN_ENV,
    Options,
    Secret,
    get_token,
)
from .plotting import _figure_png, outcomes
from .progress import Snapshot
from .rows import frame_rows, to_frame, unasked_row

__all__ = ["JobsPanel", "FILTERS"]

#: The choices of the jobs table's filter. ``errors``: rows whose status could not be read.
FILTERS = ("all", "pending", "success", "failed", "errors")
#: Rows drawn in the jobs table; the DataFrame (``panel.df``) and the CSV export have them all.
TABLE_ROWS = 100
TABLE_COLUMNS = (
    "job_id",
    "status",
    "resource_type",
    "resource_id",
    "error_code",
    "error_message",
    "http_status",
    "attempts",
)
#: Columns the jobs table adds after `TABLE_COLUMNS` when the frame has them (the ticket of each
#: job, once `fetch_tickets` or ``wait_for_jobs(tickets=True)`` has read it).
OPTIONAL_TABLE_COLUMNS = ("ticket_id", "ticket_state")
_ID_SEPARATORS = re.compile(r"[\s,;]+")
# Failed jobs and unreadable ones first: they are what the user has to act on.
_RANK = {"error": 0, "failed": 1, "pending": 2, "success": 3}
_ROW_STYLE = {
    "error": "background:#f9e0ef;color:#222;",
    "failed": "background:#fde2d6;color:#222;",
}
_MARK = {"error": "⚠ ", "failed": "✖ "}
_MESSAGE_COLORS = {"info": "#1a5fb4", "warning": "#9c6500", "error": "#b00020"}
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;"


def parse_ids(text: str) -> list[str]:
    """Job ids from pasted text: separated by spaces, commas, semicolons or lines; distinct.

    Quotes around ids are dropped (ids pasted from a Python list or a CSV row work).

    Example:
        >>> parse_ids('1001, "1002"\\n1001 1003')
        ['1001', '1002', '1003']
    """
    seen: dict[str, None] = {}
    for part in _ID_SEPARATORS.split(text or ""):
        token = part.strip().strip("\"'[]()")
        if token:
            seen.setdefault(token, None)
    return list(seen)


def _html_table(
    header: list[str], rows: list[list[Any]], styles: list[str] | None = None, caption: str = ""
) -> str:
    """A small self-styled HTML table (widgets get none of JupyterLab's output styling)."""
    head = "".join(f'<th style="{_CELL}font-weight:600">{html.escape(h)}</th>' for h in header)
    body = []
    for k, row in enumerate(rows):
        style = styles[k] if styles else ""
        cells = "".join(f'<td style="{_CELL}">{html.escape(_text(v))}</td>' for v in row)
        body.append(f'<tr style="{style}">{cells}</tr>')
    cap = f'<caption style="text-align:left;padding:2px 0">{caption}</caption>' if caption else ""
    return (
        f'<table style="border-collapse:collapse;font-size:12px">{cap}<thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def summary_html(df: pd.DataFrame) -> str:
    """`summarize` as a compact HTML table."""
    table = summarize(df)
    rows = [
        [*key, int(row["count"]), f"{row['share']:.1%}"]  # type: ignore[misc]
        for key, row in table.iterrows()
    ]
    return _html_table(["by", "value", "count", "share"], rows)


def jobs_html(df: pd.DataFrame, which: str = "all", *, limit: int = TABLE_ROWS) -> str:
    """The jobs table for one filter: failed and unreadable jobs first, marked, at most ``limit``.

    Args:
        df: a jobs DataFrame.
        which: one of `FILTERS`.
        limit: rows drawn at most (the caption says how many there are).
    """
    columns = [*TABLE_COLUMNS, *(c for c in OPTIONAL_TABLE_COLUMNS if c in df.columns)]
    view = filter_jobs(df, which)
    outcome = outcomes(view)
    order = outcome.map(_RANK).astype("int64").sort_values(kind="stable").index
    view = view.loc[order]
    shown = view.head(limit)
    marks = outcomes(shown).astype(object).tolist()
    rows = []
    for mark, values in zip(marks, shown[columns].itertuples(index=False), strict=True):
        values = list(values)
        values[0] = _MARK.get(mark, "") + str(values[0])
        rows.append(values)
    styles = [_ROW_STYLE.get(mark, "") for mark in marks]
    kind = "" if which == "all" else f"{html.escape(which)} "
    if not len(view):
        caption = f"no {kind}jobs"
    elif len(view) > limit:
        caption = (
            f"showing {limit} of {len(view)} {kind}jobs, failed and unreadable first; "
            "all are in <code>panel.df</code> and in the CSV export"
        )
    else:
        caption = f"{len(view)} {kind}jobs" + (", failed and unreadable first" if not kind else "")
    return _html_table(columns, rows, styles, caption)


def filter_jobs(df: pd.DataFrame, which: str) -> pd.DataFrame:
    """The rows one of `FILTERS` keeps (``errors``: the fetch failed, ``error_code`` is set)."""
    if which == "all":
        return df
    if which == "errors":
        return df.loc[df["error_code"].notna()]
    if which in ("pending", "success", "failed"):
        return df.loc[(df["status"] == which).fillna(False)]
    raise E.ConfigurationError(f"filter must be one of {', '.join(FILTERS)}, got {which!r}")


def counts_text(df: pd.DataFrame) -> str:
    """``"200 jobs · success 150 · failed 20 · pending 30 · errors 0"``."""
    counts = outcomes(df).value_counts()
    return (
        f"{len(df)} jobs · success {counts['success']} · failed {counts['failed']} · "
        f"pending {counts['pending']} · errors {counts['error']}"
    )


def _frame_for(ids: list[str], previous: pd.DataFrame) -> pd.DataFrame:
    """A jobs frame over ``ids`` that keeps ``previous``'s rows: new ids get an empty row,
    which `refresh` asks for (an invalid one becomes an ``invalid_job_id`` row there, where
    every id is checked before a URL is made, and is never sent)."""
    if previous["job_id"].tolist() == ids:
        return previous
    old = {row.job_id: row for row in frame_rows(previous)}
    return to_frame([old.get(job_id) or unasked_row(job_id) for job_id in ids])


class _Stop(Exception):
    """A run ended with a message for the user; the previous results stay."""


class JobsPanel:
    """A notebook panel: paste a token and job ids, click Refresh, see what became of the jobs.

    The first Refresh fetches every job; later ones ask again only the jobs that are pending or
    whose fetch failed for a passing reason (`refresh`). With auto-refresh on, the pending ones
    are polled every few seconds until none is left. ``panel.df`` is the current DataFrame.

    Args:
        job_ids: the ids to prefill (anything `fetch_jobs` takes: a list, Series, DataFrame with
            ``job_id``, or a .txt/.csv path).
        region: ``"us"``, ``"eu"`` or ``"au"`` (the initial choice of the region selector).
        base_url: send requests here instead of a region (e.g. a `Sandbox`'s ``base_url``).
        token: an access token; default: the one typed into the panel, else ``INTERCOM_TOKEN``.
        export_path: the initial path of the CSV export.
        api_version, timeout, retries, max_workers, max_rps: as in `fetch_jobs`.

    Example:
        >>> panel = ij.JobsPanel(["1001", "1002"])     # doctest: +SKIP
        >>> panel                                      # doctest: +SKIP
        >>> panel.wait(); panel.df                     # doctest: +SKIP
    """

    def __init__(
        self,
        job_ids: Any = None,
        *,
        region: str = DEFAULT_REGION,
        base_url: str | None = None,
        token: str | Secret | None = None,
        export_path: str | os.PathLike = "jobs.csv",
        api_version: str | None = DEFAULT_API_VERSION,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_workers: int = DEFAULT_MAX_WORKERS,
        max_rps: float | None = DEFAULT_MAX_RPS,
    ) -> None:
        token = Secret.wrap(token)
        self.df: pd.DataFrame | None = None
        self.base_url = base_url
        self._options: dict[str, Any] = {
            "api_version": api_version,
            "timeout": timeout,
            "retries": retries,
            "max_workers": max_workers,
            "max_rps": max_rps,
        }
        self._token: Secret | None = token
        self._token_given = token is not None
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()  # set by stop(): ends the running fetch
        self._closed = False
        self._busy = False
        self.refreshes = 0  # completed runs, shown in the status line
        self.last_export: Path | None = None

        prefill, problem = "", ""
        if job_ids is not None:
            try:
                prefill = "\n".join(read_job_ids(job_ids).ids)
            except E.ConfigurationError as exc:
                problem = str(exc)

        # -- inputs ------------------------------------------------------------------------
        self.token_input = W.Password(
            description="Token", placeholder="paste an access token", layout=W.Layout(width="340px")
        )
        self.token_input.add_class("ij-token")
        self.token_note = W.HTML(self._token_note())
        self.region_input = W.Dropdown(
            options=[
                (f"{key} ({urlhost})", key)
                for key, urlhost in ((k, v.removeprefix("https://")) for k, v in REGIONS.items())
            ],
            value=region if region in REGIONS else "us",
            description="Region",
            disabled=base_url is not None,
            layout=W.Layout(width="300px"),
        )
        self.ids_input = W.Textarea(
            value=prefill,
            description="Job ids",
            placeholder="one id a line (or separated by commas/spaces)",
            rows=4,
            layout=W.Layout(width="460px"),
        )
        self.ids_input.add_class("ij-ids")
        self.upload = W.FileUpload(
            accept=",".join(ID_FILE_SUFFIXES),
            multiple=False,
            description="Upload ids",
            tooltip="a .csv or .txt of job ids",
            layout=W.Layout(width="140px"),
        )
        self.upload.observe(self._on_upload, names="value")

        # -- actions -----------------------------------------------------------------------
        self.refresh_button = W.Button(
            description="Refresh",
            button_style="primary",
            icon="refresh",
            tooltip="fetch the jobs' status",
        )
        self.refresh_button.add_class("ij-refresh")
        self.refresh_button.on_click(self._on_refresh)
        self.stop_button = W.Button(
            description="Stop",
            icon="stop",
            tooltip="stop the fetch: the rows so far are kept",
            disabled=True,
        )
        self.stop_button.add_class("ij-stop")
        self.stop_button.on_click(lambda _button: self.stop())
        self.auto_refresh = W.ToggleButton(
            value=False,
            description="Auto-refresh",
            icon="clock-o",
            tooltip="poll the pending jobs until none is left",
        )
        self.auto_refresh.observe(self._on_auto, names="value")
        self.interval_input = W.BoundedFloatText(
            value=10.0,
            min=0.5,
            max=3600.0,
            step=1.0,
            description="every (s)",
            layout=W.Layout(width="160px"),
        )
        self.progress = W.IntProgress(
            value=0,
            min=0,
            max=1,
            layout=W.Layout(width="220px", margin="6px 0 0 12px", visibility="hidden"),
        )
        self.status_line = W.HTML("Ready: click Refresh.")
        self.status_line.add_class("ij-status")
        self.message = W.HTML("")
        self.message.add_class("ij-message")
        if problem:
            self._say(problem, "error")

        # -- results -----------------------------------------------------------------------
        self.summary_html = W.HTML("")
        self.summary_html.add_class("ij-summary")
        self.chart = W.Image(format="png", layout=W.Layout(max_width="480px", margin="0 0 0 16px"))
        self.chart.add_class("ij-chart")
        self.filter_input = W.Dropdown(
            options=list(FILTERS), value="all", description="Show", layout=W.Layout(width="200px")
        )
        self.filter_input.add_class("ij-filter")
        self.filter_input.observe(lambda _: self._show_table(), names="value")
        self.table_html = W.HTML("")
        self.table_html.add_class("ij-table")
        self.export_path = W.Text(
            value=str(export_path), description="CSV path", layout=W.Layout(width="340px")
        )
        self.export_button = W.Button(
            description="Export CSV",
            icon="download",
            tooltip="write the jobs the table shows to the CSV path",
        )
        self.export_button.add_class("ij-export")
        self.export_button.on_click(self._on_export)

        self.results = W.VBox(
            [
                W.HBox([self.summary_html, self.chart]),
                self.filter_input,
                self.table_html,
                W.HBox([self.export_path, self.export_button]),
            ],
            layout=W.Layout(display="none"),
        )
        self.widget = W.VBox(
            [
                W.HTML("<b>Intercom jobs</b>"),
                W.HBox([self.token_input, self.region_input]),
                self.token_note,
                W.HBox([self.ids_input, self.upload]),
                W.HBox(
                    [
                        self.refresh_button,
                        self.stop_button,
                        self.auto_refresh,
                        self.interval_input,
                        self.progress,
                    ]
                ),
                self.status_line,
                self.message,
                self.results,
            ]
        )
        self.widget.add_class("ij-panel")

    # -- display ---------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        where = self.base_url or REGIONS.get(self.region_input.value, "")
        rows = "no results yet" if self.df is None else f"{len(self.df)} rows in .df"
        return (
            f"JobsPanel({len(parse_ids(self.ids_input.value))} job ids, {where}, "
            f"token={self._token_source()}, {rows})"
        )

    # -- the public controls for scripts and tests -----------------------------------------

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current refresh (and auto-refresh polling) ends.

        Returns:
            True if nothing runs any more, False if ``timeout`` seconds passed first.
        """
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def busy(self) -> bool:
        """Whether a fetch is running now."""
        return self._busy

    def stop(self) -> None:
        """Stop the running fetch (within about a second) and auto-refresh; the rows fetched
        so far stay in ``panel.df``."""
        self.auto_refresh.value = False
        self._halt.set()
        self._wake.set()

    def close(self) -> None:
        """Stop auto-refresh and close the widgets."""
        self._closed = True
        self.auto_refresh.value = False
        self._wake.set()
        self.wait(timeout=5)
        self._close_widgets(self.widget)

    # -- token ------------------------------------------------------------------------------

    def _token_source(self) -> str:
        if self._token is not None:
            return "given" if self._token_given else "typed, kept in memory"
        return f"from {TOKEN_ENV}" if os.environ.get(TOKEN_ENV) else "none yet"

    def _token_note(self) -> str:
        if self._token is not None:
            text = (
                "Using the token given to JobsPanel."
                if self._token_given
                else "A token is kept in memory (not in the notebook); type another to replace it."
            )
        elif os.environ.get(TOKEN_ENV):
            text = (
                f"Using the token in the {TOKEN_ENV} environment variable: nothing to type "
                "(type one to use another)."
            )
        else:
            text = (
                f"Paste an Intercom access token (or set {TOKEN_ENV}). It is kept in memory "
                "only and the field is emptied, so it is never saved with the notebook."
            )
        if self.base_url is not None:
            text += f" Requests go to <code>{html.escape(self.base_url)}</code>."
        return f'<span style="font-size:12px;color:#666">{text}</span>'

    def _take_token(self) -> None:
        """Move a typed token out of the widget (whose state may be saved) into a Secret."""
        typed = self.token_input.value
        if typed:
            self.token_input.value = ""
            if typed.strip():
                self._token = Secret.wrap(typed, source="the typed token")
                self._token_given = False
                self.token_input.placeholder = "token kept in memory; type to replace"
            self.token_note.value = self._token_note()

    def _forget_token(self) -> None:
        self._token = None
        self._token_given = False
        self.token_input.placeholder = "paste an access token"
        self.token_note.value = self._token_note()

    # -- handlers ---------------------------------------------------------------------------

    def _on_refresh(self, _button: Any = None) -> None:
        try:
            self._take_token()
            self._start()
        except Exception as exc:  # a handler's traceback would land in the log, unseen
            self._say(f"Could not start: {type(exc).__name__}: {exc}", "error")

    def _on_auto(self, change: dict[str, Any]) -> None:
        if change["new"]:
            if self.df is not None and self._may_change() and not self._running():
                self._start()
        else:
            self._wake.set()  # a sleeping poll loop ends now, not after its interval

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        try:
            self.ids_input.value = "\n".join(self._read_upload(files))
        except Exception as exc:
            self._say(str(exc), "error")
        finally:
            # The file's bytes would otherwise be kept (and saved) in the widget's state.
            self.upload.value = ()

    def _read_upload(self, files: Any) -> list[str]:
        ids: list[str] = []
        names = []
        repeated = 0
        for item in files:
            name = str(item["name"])
            suffix = Path(name).suffix.lower()
            if suffix not in ID_FILE_SUFFIXES:
                raise E.ConfigurationError(f"{name}: upload a .csv or .txt file of job ids")
            with tempfile.TemporaryDirectory(prefix="ij-upload-") as folder:
                path = Path(folder) / f"ids{suffix}"
                path.write_bytes(bytes(item["content"]))
                with warnings.catch_warnings():  # said in the panel's message instead
                    warnings.simplefilter("ignore")
                    job_ids = read_job_ids(path)
            ids.extend(job_ids.ids)
            repeated += job_ids.duplicates
            names.append(name)
        ids = list(dict.fromkeys(ids))
        if not ids:
            raise E.ConfigurationError(f"{', '.join(names)} holds no job ids")
        skipped = f" ({repeated} repeated rows skipped)" if repeated else ""
        self._say(
            f"Read {len(ids)} job ids from {', '.join(names)}{skipped}; click Refresh.", "info"
        )
        return ids

    def _on_export(self, _button: Any = None) -> None:
        if self.df is None:
            self._say("Nothing to export yet: click Refresh first.", "warning")
            return
        which = self.filter_input.value
        try:
            path = export_csv(filter_jobs(self.df, which), self.export_path.value.strip())
        except (E.IntercomJobsError, OSError) as exc:
            self._say(f"Could not write the CSV: {exc}", "error")
            return
        rows = len(filter_jobs(self.df, which))
        shown = "" if which == "all" else f" (filter: {which})"
        self._say(
            f"Wrote {rows} rows{shown} to <code>{html.escape(str(path))}</code>",
            "info",
            escape=False,
        )
        self.last_export = path

    # -- the run ----------------------------------------------------------------------------

    def _running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _start(self) -> None:
        with self._start_lock:
            if self._running():
                self._wake.set()  # the poll loop is sleeping: poll now
                return
            if not parse_ids(self.ids_input.value):
                self._say("No job ids: type or paste some, or upload a .csv/.txt file.", "error")
                return
            if self._token is None:
                try:  # INTERCOM_TOKEN, a .env file, Colab's secrets; never a prompt from here
                    get_token(prompt=False)
                except E.MissingTokenError:
                    self._say(
                        f"No token: paste an Intercom access token into the Token field (or "
                        f"set {TOKEN_ENV}, or put it in a .env file).",
                        "error",
                    )
                    return
            self._wake.clear()
            self._set_busy(True)  # at once, so a second click cannot start a second run
            self._thread = threading.Thread(target=self._loop, name="jobs-panel", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._closed:
                self._wake.clear()
                self._set_busy(True)
                try:
                    carry_on = self._run_once()
                finally:
                    self._set_busy(False)
                if not (carry_on and self.auto_refresh.value and self._may_change()):
                    break
                interval = float(self.interval_input.value)
                self.status_line.value += f" · next refresh in {interval:g} s"
                self._wake.wait(interval)
                if not self.auto_refresh.value or not parse_ids(self.ids_input.value):
                    break
            if self.auto_refresh.value and self.df is not None and not self._may_change():
                self.auto_refresh.value = False  # nothing left to poll
        except Exception as exc:  # never let a thread die with a traceback in the log
            self._say(f"Unexpected {type(exc).__name__}: {exc}", "error")
            self._set_busy(False)

    def _may_change(self) -> bool:
        return self.df is not None and not bool(is_final(self.df).all())

    def _fetch_options(self) -> dict[str, Any]:
        return {
            # Resolved here, without a prompt: a prompt from the fetch thread would hang.
            "token": self._token or get_token(prompt=False),
            "region": self.region_input.value,
            "base_url": self.base_url,
            "progress": self._on_progress,
            **self._options,
        }

    def _run_once(self) -> bool:
        """One fetch or refresh. Returns whether it worked (auto-refresh goes on only then)."""
        ids = parse_ids(self.ids_input.value)
        if not ids:
            self._say("No job ids: type or paste some, or upload a .csv/.txt file.", "error")
            return False
        previous = self.df
        self._halt = halt = threading.Event()
        try:
            # The engine's own run (what fetch_jobs and refresh call), with a stop event for
            # the Stop button: the kernel's interrupt does not reach this thread.
            options = Options.build(**self._fetch_options())
            if previous is None:
                asked = None
                df = run(read_job_ids(ids), options, stop=halt)
            else:
                frame = _frame_for(ids, previous)
                asked = set(frame.loc[~is_final(frame), "job_id"])
                job_ids, known = from_frame(frame)
                df = run(job_ids, options, known=known, stop=halt)
            self._check_network(df, asked)
        except E.FetchInterrupted as exc:
            if exc.df is not None and len(exc.df):
                self.df = exc.df
                self._show_results(exc.df)
            self._say(
                f"Stopped: {0 if exc.df is None else len(exc.df)} rows kept in panel.df; "
                "Refresh asks the rest.",
                "warning",
            )
            return False
        except _Stop as stop:
            self._say(f"{stop} The previous results are kept.", "error")
            return False
        except E.AuthenticationError as exc:
            whose = "the token" if self._token is not None else f"the token in {TOKEN_ENV}"
            self._forget_token()
            self._say(
                f"Intercom rejected {whose} ({exc.code or exc}): paste a valid token and "
                "click Refresh. The previous results are kept.",
                "error",
            )
            return False
        except E.IntercomJobsError as exc:
            self._say(f"{exc} The previous results are kept.", "error")
            return False
        self.df = df
        self.refreshes += 1
        self._show_results(df)
        return True

    def _check_network(self, df: pd.DataFrame, asked: set[str] | None) -> None:
        """Raise `_Stop` when every job asked for failed on the network: Intercom is out of
        reach, and rows saying only that would hide the last known statuses."""
        rows = df if asked is None else df.loc[df["job_id"].isin(asked)]
        rows = rows.loc[rows["error_code"].astype(object) != C.INVALID_JOB_ID]
        if not len(rows):
            return
        codes = rows["error_code"].astype(object)
        if codes.isin(C.NO_ANSWER_CODES).all():
            detail = _text(rows["error_message"].iloc[0])
            where = self.base_url or REGIONS.get(self.region_input.value, "")
            raise _Stop(f"Could not reach {where} ({codes.iloc[0]}: {detail[:200]}).")

    # -- showing ----------------------------------------------------------------------------

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        for button in (self.refresh_button, self.export_button):
            button.disabled = busy
        self.stop_button.disabled = not busy
        self.upload.disabled = busy
        self.progress.layout.visibility = "visible" if busy else "hidden"
        if busy:
            self.progress.value = 0
            self.status_line.value = "Fetching…"

    def _on_progress(self, snap: Snapshot) -> None:
        self.progress.max = max(1, snap.total)
        self.progress.value = min(snap.done, snap.total)
        self.status_line.value = html.escape(f"Fetching… {snap.describe()}")

    def _show_results(self, df: pd.DataFrame) -> None:
        self.summary_html.value = summary_html(df)
        try:
            self.chart.value = _figure_png(df)
            self.chart.layout.display = None
        except ImportError:  # matplotlib is an extra: the panel works without the chart
            self.chart.layout.display = "none"
        self._show_table()
        self.results.layout.display = None
        stamp = time.strftime("%H:%M:%S")
        self.status_line.value = html.escape(
            f"{counts_text(df)} · refresh #{self.refreshes} at {stamp}"
        )
        transient = df["error_code"].notna() & ~is_final(df)
        if transient.any():
            self._say(
                f"{int(transient.sum())} jobs could not be read for a passing reason "
                "(see the errors filter); Refresh asks them again.",
                "warning",
            )
        else:
            self._say("", "info")

    def _show_table(self) -> None:
        if self.df is not None:
            self.table_html.value = jobs_html(self.df, self.filter_input.value)

    def _say(self, text: str, kind: str = "info", *, escape: bool = True) -> None:
        if not text:
            self.message.value = ""
            return
        body = html.escape(text) if escape else text
        self.message.value = f'<span style="color:{_MESSAGE_COLORS[kind]}">{body}</span>'

    @staticmethod
    def _close_widgets(widget: W.Widget) -> None:
        for child in getattr(widget, "children", ()):
            JobsPanel._close_widgets(child)
        widget.close()
