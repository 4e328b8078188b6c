"""Widgets: `JobsPanel`, the notebook front end to the run engine: the view only.

What the panel knows and does (the ids, the token, the runs, Stop, the status, the jobs table's
sort, filters, page and find) lives in `panel_controller.PanelController`; its HTML comes from
`panel_render`. This module makes the widgets, sends what the user does to the controller, and
redraws the part the controller says changed. The controller may call back from its run thread;
ipykernel sends widget updates from any thread, and progress arrives only a few times a second.

Layout: the panel fits outputs from 500 px up. Rows of controls wrap, buttons size to their
labels, the chart scales to the width, and the jobs table scrolls (both ways) inside a box of
fixed height with a sticky header. Messages about an action appear beside its control.

The page's handles (CSS classes, for browser tests and user styles): the panel ``ij-panel``; the
status area ``ij-status``; buttons "Refresh" ``ij-refresh``, "Stop" ``ij-stop``, "Export CSV"
``ij-export``, the "Upload ids" file button ``ij-upload`` (its note ``ij-upload-msg``); the jobs
table's scrolling box ``ij-table`` (rows ``tr.ij-row``, id cells ``td.ij-id``, the found row
``tr.ij-found``); ``ij-sort`` and ``ij-order``; filters ``ij-filter-status`` and
``ij-filter-code``; ``ij-find`` (its note ``ij-find-msg``); the pager ``ij-first``, ``ij-prev``,
``ij-next``, ``ij-last`` and ``ij-page``; ``ij-export-msg``; ``ij-chart``; ``ij-summary``.

A token typed into the panel is moved into a `Secret` (whose repr hides it) the moment it is
used, and the Password field is emptied: widget state saved with the notebook never holds it.
"""

from __future__ import annotations

import datetime
import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ipywidgets as W
import pandas as pd

from ._ids import ID_FILE_SUFFIXES
from ._options import REGIONS, hide_token
from ._panel_controller import ALL, PAGE_SIZE, RANK_SORT, PanelController, parse_ids
from ._panel_render import note_html, status_html, summary_html, table_html
from ._plotting import _figure_key, _figure_png

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import ClientOptions

__all__ = ["JobsPanel", "parse_ids", "TABLE_ROWS"]

#: Rows of the jobs table on one page; every row is reachable with the pager.
TABLE_ROWS = PAGE_SIZE
TABLE_HEIGHT = "400px"
CUSTOM_REGION = "base_url"  # the Region control's value when base_url overrides the region


def _fit() -> W.Layout:
    """A button's layout: as wide as its label, never shrunk (so the label is never cut)."""
    return W.Layout(width="auto", flex="0 0 auto")


def _row(*children: W.Widget, css: str = "") -> W.HBox:
    """A row of controls that wraps onto more lines in a narrow output."""
    box = W.HBox(
        list(children),
        layout=W.Layout(flex_flow="row wrap", align_items="center"),
    )
    if css:
        box.add_class(css)
    return box


class JobsPanel:
    """A notebook panel: paste a token and job ids, click Refresh, see what became of the jobs.

    The first Refresh fetches every job; later ones ask again only the jobs that are pending or
    whose fetch failed for a passing reason. With auto-refresh on, the pending ones are polled
    every few seconds until none is left. Stop ends a fetch within about a second and keeps the
    rows so far. ``panel.df`` is the current DataFrame.

    Args:
        job_ids: the ids to prefill (anything `fetch_jobs` takes: a list, Series, DataFrame with
            ``job_id``, or a .txt/.csv path); kept exactly.
        export_path: the initial path of the CSV export.
        **options: the options of `fetch_jobs` but ``progress`` (the panel shows its own).
            ``region`` is the initial choice of the region selector; ``base_url`` sends requests
            elsewhere (e.g. a `Sandbox`'s); ``token`` defaults to the one typed into the panel,
            else ``INTERCOM_TOKEN``; ``tokens`` is many workspaces, as in `fetch_jobs`:
            ``{workspace: token}`` (each a token, an `ij.Secret` or ``"env:NAME"``), with
            ``job_ids`` a DataFrame (or .csv) that has a ``workspace`` column. Each workspace has
            its own rate-limit gate; the status shows each one's progress, the table its
            workspace. The Token field and the ids box are then read-only: ids change by
            uploading a .csv with both columns.

    Example:
        >>> panel = ij.JobsPanel(["1001", "1002"])     # doctest: +SKIP
        >>> panel                                      # doctest: +SKIP
        >>> panel.wait(); panel.df                     # doctest: +SKIP
        >>> ij.JobsPanel(frame, tokens={"acme": "env:ACME_TOKEN", "globex": "env:GLOBEX_TOKEN"})
        ... # doctest: +SKIP
    """

    def __init__(
        self,
        job_ids: Any = None,
        *,
        export_path: str | os.PathLike[str] = "jobs.csv",
        **options: Unpack[ClientOptions],
    ) -> None:
        hide_token(options)
        self.controller = c = PanelController(job_ids, export_path=export_path, **options)
        self.base_url = base_url = c.base_url
        self._syncing = False  # set while the view writes widget values itself
        wide = {"description_width": "initial"}

        # -- inputs ------------------------------------------------------------------------
        self.token_input = W.Password(
            description="Token",
            placeholder="tokens given in code" if c.many else "paste an access token",
            disabled=c.many,
            layout=W.Layout(width="100%", max_width="420px"),
        )
        self.token_input.add_class("ij-token")
        self.token_input.observe(self._on_token_typing, names="value")
        self.token_note = W.HTML(self._token_note())
        if base_url is not None:
            # The region does not apply: show where requests go instead.
            region_options = [(base_url, CUSTOM_REGION)]
            region_value = CUSTOM_REGION
        else:
            region_options = [
                (f"{key} ({url.removeprefix('https://')})", key) for key, url in REGIONS.items()
            ]
            region_value = c.region
        self.region_input = W.Dropdown(
            options=region_options,
            value=region_value,
            description="Region",
            disabled=base_url is not None,
            tooltip=base_url or "",
            layout=W.Layout(width="auto", max_width="100%"),
        )
        self.region_input.add_class("ij-region")
        self.region_input.observe(self._on_region, names="value")
        self.ids_input = W.Textarea(
            value=c.ids_text,
            description="Job ids",
            placeholder="one id a line (or separated by commas/spaces)",
            disabled=c.many,  # ids come with their workspaces: from code or an uploaded .csv
            rows=4,
            layout=W.Layout(width="auto", max_width="600px"),
        )
        self.ids_input.add_class("ij-ids")
        self.ids_input.observe(self._on_ids_typed, names="value")
        self.upload = W.FileUpload(
            accept=",".join(ID_FILE_SUFFIXES),
            multiple=False,
            description="Upload ids",
            tooltip="a .csv with job_id and workspace columns"
            if c.many
            else "a .csv or .txt of job ids",
            layout=_fit(),
        )
        self.upload.add_class("ij-upload")
        self.upload.observe(self._on_upload, names="value")
        self.upload_msg = W.HTML("")
        self.upload_msg.add_class("ij-upload-msg")

        # -- actions -----------------------------------------------------------------------
        self.refresh_button = W.Button(
            description="Refresh",
            button_style="primary",
            icon="refresh",
            tooltip="fetch the jobs' status",
            layout=_fit(),
        )
        self.refresh_button.add_class("ij-refresh")
        self.refresh_button.on_click(self._on_refresh)
        self.stop_button = W.Button(
            description="Stop",
            icon="stop",
            tooltip="stop the fetch: the rows so far are kept",
            disabled=True,
            layout=_fit(),
        )
        self.stop_button.add_class("ij-stop")
        self.stop_button.on_click(lambda _button: self.stop())
        self.auto_refresh = W.ToggleButton(
            value=False,
            description="Auto-refresh",
            icon="clock-o",
            tooltip="poll the pending jobs until none is left",
            layout=_fit(),
        )
        self.auto_refresh.add_class("ij-auto")
        self.auto_refresh.observe(self._on_auto, names="value")
        self.interval_input = W.BoundedFloatText(
            value=c.interval,
            min=0.5,
            max=3600.0,
            step=1.0,
            description="every (s)",
            style=wide,
            layout=W.Layout(width="140px", flex="0 0 auto"),
        )
        self.interval_input.observe(self._on_interval, names="value")
        self.progress = W.IntProgress(
            value=0,
            min=0,
            max=1,
            layout=W.Layout(
                width="220px", flex="0 1 220px", min_width="100px", visibility="hidden"
            ),
        )
        self.status_line = W.HTML("")
        self.status_line.add_class("ij-status")

        # -- results -----------------------------------------------------------------------
        self.summary_html = W.HTML("", layout=W.Layout(flex="0 0 auto", margin="0 16px 0 0"))
        self.summary_html.add_class("ij-summary")
        self.chart = W.Image(
            format="png",
            layout=W.Layout(
                width="100%", max_width="480px", height="auto", flex="1 1 300px", min_width="0"
            ),
        )
        self.chart.add_class("ij-chart")
        self._chart_key: tuple[Any, ...] | None = None  # what the chart shows now
        self.sort_input = W.Dropdown(
            options=[("failed first", RANK_SORT)],
            value=RANK_SORT,
            description="Sort by",
            style=wide,
            layout=W.Layout(width="auto", flex="0 0 auto"),
        )
        self.sort_input.add_class("ij-sort")
        self.sort_input.observe(self._on_sort, names="value")
        self.order_input = W.ToggleButton(
            value=False,
            description="ascending",
            icon="sort-amount-asc",
            tooltip="click for the other order",
            layout=_fit(),
        )
        self.order_input.add_class("ij-order")
        self.order_input.observe(self._on_sort, names="value")
        self.status_filter = W.Dropdown(
            options=[("all", ALL)],
            value=ALL,
            description="Status",
            style=wide,
            layout=W.Layout(width="auto", flex="0 0 auto"),
        )
        self.status_filter.add_class("ij-filter-status")
        self.status_filter.observe(self._on_filter, names="value")
        self.code_filter = W.Dropdown(
            options=[("all", ALL)],
            value=ALL,
            description="Error code",
            style=wide,
            layout=W.Layout(width="auto", flex="0 0 auto"),
        )
        self.code_filter.add_class("ij-filter-code")
        self.code_filter.observe(self._on_filter, names="value")
        self.find_input = W.Text(
            description="Find id",
            placeholder="a job id",
            continuous_update=False,
            style=wide,
            layout=W.Layout(width="220px", flex="0 1 220px", min_width="140px"),
        )
        self.find_input.add_class("ij-find")
        self.find_input.observe(lambda change: c.find(change["new"]), names="value")
        self.find_msg = W.HTML("")
        self.find_msg.add_class("ij-find-msg")
        # The jobs table: this element is the scrolling box (both ways) of fixed height.
        self.table_html = W.HTML("", layout=W.Layout(height=TABLE_HEIGHT, overflow="auto"))
        self.table_html.add_class("ij-table")
        self.pager = {}
        for name, label, tip in (
            ("first", "First", "the first page"),
            ("prev", "Prev", "the page before"),
            ("next", "Next", "the page after"),
            ("last", "Last", "the last page"),
        ):
            button = W.Button(description=label, tooltip=tip, layout=_fit())
            button.add_class(f"ij-{name}")
            button.on_click(lambda _b, where=name: c.go(where))
            self.pager[name] = button
        self.page_label = W.HTML("", layout=W.Layout(margin="0 8px"))
        self.page_label.add_class("ij-page")
        self.export_path = W.Text(
            value=c.export_path,
            description="CSV file",
            style=wide,
            layout=W.Layout(width="280px", flex="0 1 280px", min_width="160px"),
        )
        self.export_path.observe(self._on_export_path, names="value")
        self.export_button = W.Button(
            description="Export CSV",
            icon="download",
            tooltip="write the rows the table shows (every page) to the CSV file",
            layout=_fit(),
        )
        self.export_button.add_class("ij-export")
        self.export_button.on_click(lambda _button: c.export())
        self.export_msg = W.HTML("")
        self.export_msg.add_class("ij-export-msg")

        self.results = W.VBox(
            [
                _row(self.summary_html, self.chart, css="ij-overview"),
                _row(
                    self.sort_input,
                    self.order_input,
                    self.status_filter,
                    self.code_filter,
                    self.find_input,
                    self.find_msg,
                ),
                self.table_html,
                _row(
                    self.pager["first"],
                    self.pager["prev"],
                    self.page_label,
                    self.pager["next"],
                    self.pager["last"],
                    css="ij-pager",
                ),
                _row(self.export_path, self.export_button, self.export_msg),
            ],
            layout=W.Layout(display="none"),
        )
        self.widget = W.VBox(
            [
                _row(self.token_input, self.region_input),
                self.token_note,
                self.ids_input,
                _row(self.upload, self.upload_msg),
                _row(
                    self.refresh_button,
                    self.stop_button,
                    self.auto_refresh,
                    self.interval_input,
                    self.progress,
                ),
                self.status_line,
                self.results,
            ],
            layout=W.Layout(width="100%", max_width="1200px", min_width="0"),
        )
        self.widget.add_class("ij-panel")
        c.on_change(self._redraw)
        self._redraw("status")

    # -- what scripts and tests use ---------------------------------------------------------

    @property
    def df(self) -> pd.DataFrame | None:
        """The jobs DataFrame of the last run (None before the first)."""
        return self.controller.df

    @df.setter
    def df(self, df: pd.DataFrame | None) -> None:
        c = self.controller
        if df is None:
            c.df = None
            return
        c.show(df)

    @property
    def message(self) -> W.HTML:
        """The status area (the one place messages about runs appear); the same as
        ``status_line``."""
        return self.status_line

    @property
    def refreshes(self) -> int:
        """Completed runs."""
        return self.controller.refreshes

    @property
    def last_export(self) -> Path | None:
        """The path of the last CSV written."""
        return self.controller.last_export

    @property
    def busy(self) -> bool:
        """Whether a fetch is running now."""
        return self.controller.busy

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current refresh (and auto-refresh polling) ends.

        Returns:
            True if nothing runs any more, False if ``timeout`` seconds passed first.
        """
        return self.controller.wait(timeout)

    def stop(self) -> None:
        """Stop the running fetch (within about a second) and auto-refresh; the rows fetched
        so far stay in ``panel.df``."""
        self.controller.stop()

    def close(self) -> None:
        """Stop everything and close the widgets."""
        self.controller.close()
        self._close_widgets(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        c = self.controller
        rows = "no results yet" if c.df is None else f"{len(c.df)} rows in .df"
        return f"JobsPanel({len(c.ids)} job ids, {c.where}, token={c.token_source()}, {rows})"

    # -- from the widgets to the controller ------------------------------------------------

    def _on_refresh(self, _button: Any = None) -> None:
        c = self.controller
        try:
            typed = self.token_input.value
            if typed:
                self._syncing = True
                try:
                    self.token_input.value = ""  # out of the widget state at once
                finally:
                    self._syncing = False
                if not c.use_token(typed):
                    return
            c.refresh()
        except Exception as exc:  # a handler's traceback would land in the log, unseen
            c.report(exc)

    def _on_token_typing(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.controller.token_typing(bool(change["new"]))

    def _on_region(self, change: dict[str, Any]) -> None:
        if change["new"] != CUSTOM_REGION:
            self.controller.region = change["new"]

    def _on_ids_typed(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.controller.set_ids_text(change["new"])

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if self._syncing or not files:
            return
        self.controller.upload(files)
        # Keep only the names in the widget (its label counts them): the bytes would be saved
        # with the notebook.
        stamp = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
        self._syncing = True
        try:
            self.upload.value = tuple(
                {
                    "name": str(item["name"]),
                    "type": str(item.get("type", "")),
                    "size": 0,
                    "content": memoryview(b""),
                    "last_modified": stamp,
                }
                for item in files
            )
        finally:
            self._syncing = False

    def _on_auto(self, change: dict[str, Any]) -> None:
        if not self._syncing:
            self.controller.set_auto(bool(change["new"]))

    def _on_interval(self, change: dict[str, Any]) -> None:
        self.controller.interval = float(change["new"])

    def _on_sort(self, _change: Any = None) -> None:
        if self._syncing:
            return
        self.controller.set_sort(self.sort_input.value, ascending=not self.order_input.value)

    def _on_filter(self, _change: Any = None) -> None:
        if not self._syncing:
            self.controller.set_filters(
                status=self.status_filter.value, code=self.code_filter.value
            )

    def _on_export_path(self, change: dict[str, Any]) -> None:
        self.controller.export_path = str(change["new"])

    # -- from the controller to the widgets -------------------------------------------------

    def _redraw(self, what: str) -> None:
        c = self.controller
        self._syncing = True
        try:
            if what == "status":
                self.status_line.value = status_html(
                    c.state, c.message, detail=c.detail, snapshot=c.snapshot
                )
            elif what == "progress":
                snap = c.snapshot
                if snap is not None:
                    self.progress.max = max(1, snap.total)
                    self.progress.value = min(snap.done, snap.total)
            elif what == "busy":
                self._show_busy(c.busy)
            elif what == "results":
                self._show_results()
            elif what == "table":
                self._show_table()
            elif what == "ids":
                self.ids_input.value = c.ids_text
            elif what == "token":
                self.token_input.placeholder = (
                    "token kept in memory; type to replace"
                    if c.token_source() == "typed, kept in memory"
                    else "paste an access token"
                )
                self.token_note.value = self._token_note()
            elif what == "upload":
                self.upload_msg.value = note_html(*c.upload_note)
            elif what == "export":
                self.export_msg.value = note_html(*c.export_note)
            elif what == "find":
                self.find_msg.value = note_html(*c.find_note)
            elif what == "auto":
                self.auto_refresh.value = c.auto
                self._show_stop()
        finally:
            self._syncing = False

    def _token_note(self) -> str:
        return (
            f'<span style="font-size:12px;line-height:1.5;color:#666">'
            f"{html.escape(self.controller.token_note())}</span>"
        )

    def _show_busy(self, busy: bool) -> None:
        for button in (self.refresh_button, self.export_button):
            button.disabled = busy
        self._show_stop()
        self.upload.disabled = busy
        self.progress.layout.visibility = "visible" if busy else "hidden"
        if busy:
            self.progress.value = 0

    def _show_stop(self) -> None:
        """Stop ends a fetch, and auto-refresh while it waits for its next poll."""
        c = self.controller
        self.stop_button.disabled = not (c.busy or c.auto)

    def _show_results(self) -> None:
        c = self.controller
        df = c.df
        if df is None:
            return
        self.summary_html.value = summary_html(df)
        try:
            key = _figure_key(df)
            if key != self._chart_key:  # drawing takes a while: only when the counts change
                self.chart.value = _figure_png(df)
                self._chart_key = key
            self.chart.layout.display = None
        except ImportError:  # matplotlib is an extra: the panel works without the chart
            self.chart.layout.display = "none"
        self.sort_input.options = [("failed first", RANK_SORT), *((n, n) for n in c.columns)]
        self.sort_input.value = c.sort_by
        self.status_filter.options = c.filter_choices("status")
        self.status_filter.value = c.status_filter
        self.code_filter.options = c.filter_choices("error_code")
        self.code_filter.value = c.code_filter
        self.results.layout.display = None

    def _show_table(self) -> None:
        c = self.controller
        if c.df is None:
            return
        self.table_html.value = table_html(c.page_frame(), c.columns, highlight=c.found)
        self.page_label.value = html.escape(c.page_label())
        last = c.page_count - 1
        self.pager["first"].disabled = self.pager["prev"].disabled = c.page <= 0
        self.pager["next"].disabled = self.pager["last"].disabled = c.page >= last
        self.order_input.description = "ascending" if c.ascending else "descending"
        self.order_input.icon = "sort-amount-asc" if c.ascending else "sort-amount-desc"

    @staticmethod
    def _close_widgets(widget: W.Widget) -> None:
        for child in getattr(widget, "children", ()):
            JobsPanel._close_widgets(child)
        widget.close()
