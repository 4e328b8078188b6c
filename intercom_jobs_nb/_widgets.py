"""`JobsPanel`: the notebook front end to the run engine, one anywidget.

The panel is one widget (an `anywidget.AnyWidget`: an ipywidgets widget whose front end is a
plain ES module, ``static/panel.js`` with ``static/panel.css``, no build step), so the same
Python object shows in JupyterLab 4, Notebook 7, VS Code, Colab and marimo
(``mo.ui.anywidget(panel)``). What the panel knows and does lives in
`panel_controller.PanelController` and its parts; this module copies what the page shows into
traits (a model the page draws) and takes what the person does from the page's messages.

The token never enters a trait: the page sends it in the Refresh message, the controller moves
it into a `Secret`, so saving the notebook's widget state never stores it.

The page's handles (CSS classes, for browser tests and user styles): the panel ``ij-panel``; the
status area ``ij-status``; ``ij-token``, ``ij-region``, ``ij-ids``; buttons ``ij-refresh``,
``ij-stop``, ``ij-auto``, ``ij-export``, ``ij-upload`` (its note ``ij-upload-msg``); the jobs
table's scrolling box ``ij-table`` (header cells ``th[data-column]``, rows ``tr.ij-row`` with
``data-row``, id cells ``td.ij-id``, the found row ``tr.ij-found``); filters
``ij-filter-status`` and ``ij-filter-code``; ``ij-find`` (its note ``ij-find-msg``); the row
count ``ij-count``; ``ij-copy-rows`` and ``ij-copy-cell`` (their note ``ij-copy-msg``);
``ij-export-msg``; ``ij-chart`` (an SVG, bars ``.ij-bar``); ``ij-summary``.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import pandas as pd
import traitlets as T

from . import _errors as E
from ._format import number, percent
from ._options import REGIONS, hide_token
from ._panel_controller import PanelController
from ._panel_ids import parse_ids
from ._panel_render import note_html, status_html, summary_html
from ._panel_table import MAX_WINDOW
from ._plotting import OUTCOME_COLORS, outcomes

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import ClientOptions

__all__ = ["JobsPanel", "parse_ids", "MAX_WINDOW"]

_STATIC = Path(__file__).parent / "static"
FIRST_WINDOW = 60  # rows sent with the results, before the page asks for the rows in sight
MAX_UPLOAD = 64 * 1024 * 1024  # bytes of an uploaded file of ids
CUSTOM_REGION = "base_url"  # the Region control's value when base_url overrides the region


def _chart(df: pd.DataFrame) -> dict[str, Any]:
    """The outcomes chart's data, its labels formatted here (one way everywhere)."""
    counts = outcomes(df).value_counts(sort=False)
    total = len(df)
    bars = [
        {
            "outcome": str(name),
            "count": int(n),
            "label": number(int(n)),
            "share": percent(n / total) if total else "",
            "color": OUTCOME_COLORS[str(name)],
        }
        for name, n in counts.items()
    ]
    return {"title": f"Job outcomes ({number(total)} jobs)", "bars": bars}


def _decoded(content: dict[str, Any]) -> bytes:
    """An uploaded file's bytes, sent by the page in base64 (bounded: a file of ids)."""
    text = content.get("content")
    if not isinstance(text, str) or len(text) > MAX_UPLOAD * 4 // 3 + 4:
        raise E.ConfigurationError(
            f"upload a .csv or .txt file of job ids of {MAX_UPLOAD:,} bytes at most"
        )
    return base64.b64decode(text, validate=True)


def _regions(base_url: str | None) -> list[list[str]]:
    if base_url is not None:
        # The region does not apply; the address itself is not shown (it may hold a host name
        # or port of no interest to a reader of the page).
        return [["set by base_url", CUSTOM_REGION]]
    return [[f"{key} ({url.removeprefix('https://')})", key] for key, url in REGIONS.items()]


class JobsPanel(anywidget.AnyWidget):
    """A notebook panel: paste a token and job ids, click Refresh, see what became of the jobs.

    The first Refresh fetches every job; later ones ask again only the jobs that are pending or
    whose fetch failed for a passing reason. With auto-refresh on, the pending ones are polled
    every few seconds until none is left. Stop ends a fetch within about a second and keeps the
    rows so far. ``panel.df`` is the current DataFrame. In marimo: ``mo.ui.anywidget(panel)``.

    Args:
        job_ids: the ids to prefill (anything `fetch_jobs` takes); kept exactly.
        export_path: the initial path of the CSV export.
        **options: the options of `fetch_jobs` but ``progress`` (the panel shows its own).
            ``region`` is the initial choice of the region selector; ``base_url`` sends requests
            elsewhere (e.g. a `Sandbox`'s); ``token`` defaults to the one typed into the panel,
            else ``INTERCOM_TOKEN``; ``tokens`` is many workspaces, as in `fetch_jobs`, with
            ``job_ids`` a DataFrame (or .csv) that has a ``workspace`` column.

    Example:
        >>> panel = ij.JobsPanel(["1001", "1002"])     # doctest: +SKIP
        >>> panel                                      # doctest: +SKIP
        >>> panel.refresh(token="..."); panel.wait(); panel.df   # doctest: +SKIP
    """

    _esm = _STATIC / "panel.js"
    _css = _STATIC / "panel.css"

    status = T.Unicode("").tag(sync=True)  # the status area's HTML
    state = T.Unicode("ready").tag(sync=True)
    busy = T.Bool(False).tag(sync=True)
    progress = T.List([0, 1]).tag(sync=True)  # done, total
    auto = T.Bool(False).tag(sync=True)
    interval = T.Float(10.0).tag(sync=True)
    many = T.Bool(False).tag(sync=True)
    token_note = T.Unicode("").tag(sync=True)
    token_placeholder = T.Unicode("paste an access token").tag(sync=True)
    regions: T.List[Any] = T.List().tag(sync=True)
    region = T.Unicode("").tag(sync=True)
    ids_text = T.Unicode("").tag(sync=True)
    upload_note = T.Unicode("").tag(sync=True)
    export_path = T.Unicode("jobs.csv").tag(sync=True)
    export_note = T.Unicode("").tag(sync=True)
    has_results = T.Bool(False).tag(sync=True)
    summary = T.Unicode("").tag(sync=True)
    chart = T.Dict().tag(sync=True)
    columns: T.List[Any] = T.List().tag(sync=True)
    widths: T.List[Any] = T.List().tag(sync=True)  # characters
    sort_by = T.Unicode("").tag(sync=True)
    ascending = T.Bool(True).tag(sync=True)
    status_choices: T.List[Any] = T.List().tag(sync=True)
    code_choices: T.List[Any] = T.List().tag(sync=True)
    status_filter = T.Unicode("").tag(sync=True)
    code_filter = T.Unicode("").tag(sync=True)
    count = T.Unicode("").tag(sync=True)  # "1,001 rows (filtered from …)"
    total = T.Int(0).tag(sync=True)  # rows in the view
    view_id = T.Int(0).tag(sync=True)  # changes with every change of the view
    window = T.Dict().tag(sync=True)  # {start, rows, outcomes, view}
    found = T.Dict().tag(sync=True)  # {id, row} of the row found
    find_note = T.Unicode("").tag(sync=True)

    def __init__(
        self,
        job_ids: Any = None,
        *,
        export_path: str | os.PathLike[str] = "jobs.csv",
        **options: Unpack[ClientOptions],
    ) -> None:
        hide_token(options)
        c = PanelController(job_ids, export_path=export_path, **options)
        super().__init__(
            many=c.many,
            regions=_regions(c.base_url),
            region=CUSTOM_REGION if c.base_url is not None else c.region,
            ids_text=c.ids_input.text,
            export_path=c.export_path,
        )
        self.controller = c
        self._draw_lock = threading.RLock()  # the run's thread and the page's handlers draw
        self._asked = (0, FIRST_WINDOW)  # the rows the page asked for last: start, count
        self.base_url = c.base_url
        self.observe(self._on_trait, names=["region", "ids_text", "interval", "export_path"])
        self.on_msg(self._on_message)
        c.on_change(self._redraw)
        for what in ("status", "token"):
            self._redraw(what)

    # -- what scripts and tests use -----------------------------------------------------------

    @property
    def df(self) -> pd.DataFrame | None:
        """The jobs DataFrame of the last run (None before the first)."""
        return self.controller.df

    @df.setter
    def df(self, df: pd.DataFrame | None) -> None:
        self.controller.show(df)

    @property
    def refreshes(self) -> int:
        """Completed runs."""
        return self.controller.refreshes

    @property
    def last_export(self) -> Path | None:
        """The path of the last CSV written."""
        return self.controller.last_export

    def refresh(self, token: str | None = None) -> bool:
        """What clicking Refresh does (with ``token`` typed into the Token field first).
        Returns whether a run started."""
        c = self.controller
        if token is not None and not c.use_token(token):
            return False
        return c.refresh()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current refresh (and auto-refresh polling) ends; False on timeout."""
        return self.controller.wait(timeout)

    def stop(self) -> None:
        """Stop the running fetch (within about a second) and auto-refresh; the rows fetched
        so far stay in ``panel.df``."""
        self.controller.stop()

    def set_auto(self, on: bool, interval: float | None = None) -> None:
        """Auto-refresh on (every ``interval`` s) or off."""
        if interval is not None:
            self.interval = interval
        self.controller.set_auto(on)

    def sort(self, column: str, ascending: bool | None = None) -> None:
        """Sort the table (a header click without ``ascending``)."""
        t = self.controller.table
        if ascending is None:
            t.sort(column)
        else:
            t.set_sort(column, ascending)
        self._redraw("table")

    def filter(self, *, status: str | None = None, code: str | None = None) -> None:
        """Filter the table by status and error code (``""``: all; ``"(none)"``: empty)."""
        self.controller.table.set_filters(status=status, code=code)
        self._redraw("table")

    def find(self, text: str) -> bool:
        """Find a job id: the table scrolls to its row; the note beside Find says where."""
        ok = self.controller.table.find(text)
        self._redraw("table")
        return ok

    def export(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Write the rows the table shows to a CSV (the note beside Export says where)."""
        return self.controller.export(path)

    def close(self) -> None:
        """Stop everything and close the widget."""
        controller = getattr(self, "controller", None)  # None: __init__ did not get that far
        if controller is not None:
            controller.close()
        super().close()

    def __repr__(self) -> str:
        c = self.controller
        rows = "no results yet" if c.df is None else f"{number(len(c.df))} rows in .df"
        return (
            f"JobsPanel({number(len(c.ids))} job ids, {c.where}, token={c.token_source()}, {rows})"
        )

    # -- from the page to the controller ------------------------------------------------------

    def _on_trait(self, change: dict[str, Any]) -> None:
        c, new = self.controller, change["new"]
        if change["name"] == "region" and new != CUSTOM_REGION:
            c.region = new
        elif change["name"] == "ids_text" and not c.many:
            c.set_ids_text(new)
        elif change["name"] == "interval":
            c.runner.interval = max(0.5, float(new))
        elif change["name"] == "export_path":
            c.export_path = str(new)

    def _on_message(self, _widget: Any, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        try:
            self._act(str(content.get("type")), content, buffers)
        except Exception as exc:  # a handler's traceback would land in the log, unseen
            self.controller.report(exc)

    def _act(self, kind: str, content: dict[str, Any], buffers: list[Any]) -> None:
        c = self.controller
        if kind == "refresh":
            self.refresh(str(content.get("token") or "") or None)
        elif kind == "stop":
            c.stop()
        elif kind == "auto":
            c.set_auto(bool(content.get("on")))
        elif kind == "typing":
            c.token_typing(bool(content.get("typed")))
        elif kind == "sort":
            self.sort(str(content.get("column", "")))
        elif kind == "filter":
            self.filter(status=content.get("status"), code=content.get("code"))
        elif kind == "find":
            self.find(str(content.get("text", "")))
        elif kind == "window":
            start, count = int(content.get("start", 0)), int(content.get("count", 0))
            self._asked = (start, count or FIRST_WINDOW)
            self._send_window(*self._asked)
        elif kind == "export":
            c.export()
        elif kind == "upload":
            c.upload([{"name": str(content.get("name", "")), "content": _decoded(content)}])

    # -- from the controller to the page ------------------------------------------------------

    def _redraw(self, what: str) -> None:
        with self._draw_lock:
            self._draw(what)

    def _draw(self, what: str) -> None:
        c = self.controller
        if what in ("status", "progress"):
            s = c.status()
            with self.hold_sync():
                self.state = s.state
                self.status = status_html(s.state, s.message, detail=s.detail, snapshot=s.snapshot)
                if s.snapshot is not None:
                    self.progress = [s.snapshot.done, max(1, s.snapshot.total)]
        elif what == "busy":
            self.busy = c.busy
        elif what == "auto":
            self.auto = c.auto
        elif what == "results":
            self._show_results()
        elif what == "table":
            self._show_table()
        elif what == "ids":
            self.ids_text = c.ids_input.text
        elif what == "token":
            typed = c.token_source() == "typed, kept in memory"
            self.token_placeholder = (
                "tokens given in code"
                if c.many
                else "token kept in memory; type to replace"
                if typed
                else "paste an access token"
            )
            self.token_note = c.token_note()
        elif what == "upload":
            self.upload_note = note_html(*c.ids_input.upload_note)
        elif what == "export":
            self.export_note = note_html(*c.export_note)

    def _show_results(self) -> None:
        c, t = self.controller, self.controller.table
        df = c.df
        if df is None:
            return
        with self.hold_sync():
            self.summary = summary_html(df)
            self.chart = _chart(df)
            self.columns = t.columns
            self.widths = t.widths()
            self.status_choices = [list(x) for x in t.filter_choices("status")]
            self.code_choices = [list(x) for x in t.filter_choices("error_code")]
            self.has_results = True

    def _show_table(self) -> None:
        t = self.controller.table
        if t.df is None:
            return
        with self.hold_sync():
            self.sort_by, self.ascending = t.sort_by, t.ascending
            self.status_filter, self.code_filter = t.status_filter, t.code_filter
            self.count = t.label()
            self.total = len(t.view())
            self.find_note = note_html(*t.find_note)
            self.view_id += 1
            row = t.found_row
            self.found = {} if row is None else {"id": t.found, "row": row, "view": self.view_id}
            # The rows the page shows now (it asks again if it scrolled elsewhere meanwhile),
            # or those around the row found.
            start, count = self._asked
            if row is not None:
                start = max(0, row - count // 2)
            self._send_window(start, count)

    def _send_window(self, start: int, count: int) -> None:
        with self._draw_lock:
            self._put_window(start, count)

    def _put_window(self, start: int, count: int) -> None:
        part = self.controller.table.window(start, count)
        self.window = {
            "start": part.start,
            "rows": part.rows,
            "outcomes": part.outcomes,
            "view": self.view_id,
        }
