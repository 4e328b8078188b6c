"""The JobsPanel's HTML: pure functions from data (a page of jobs, a status, a `Snapshot`) to
strings. No widgets here, so every piece is tested as text.

Every value that came from a server (ids, error messages, codes) is escaped: server text is
untrusted. Widgets get none of JupyterLab's output styling, so the HTML carries its own.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pandas as pd

from ._format import duration, number, percent
from ._frames import summarize
from ._plotting import outcomes
from ._progress import SHOW_WAIT, Snapshot

__all__ = [
    "TABLE_COLUMNS",
    "OPTIONAL_TABLE_COLUMNS",
    "STATES",
    "table_columns",
    "table_html",
    "status_html",
    "progress_text",
    "summary_html",
    "counts_text",
    "note_html",
]

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
#: The states of the status area, each with its colour.
STATES = {
    "no_token": "#9c6500",
    "ready": "#444",
    "running": "#1a5fb4",
    "finished": "#26734d",
    "stopped": "#9c6500",
    "error": "#b00020",
}
_ROW_STYLE = {
    "error": "background:#f9e0ef;color:#222;",
    "failed": "background:#fde2d6;color:#222;",
}
_FOUND_STYLE = "background:#fff3a0;color:#222;outline:2px solid #e0b000;"
_MARK = {"error": "⚠", "failed": "✖"}
_MARK_TITLE = {"error": "the status could not be read", "failed": "the job failed"}
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap;"
_HEAD = (
    "position:sticky;top:0;z-index:1;background:var(--jp-layout-color1,#fff);"
    "font-weight:600;box-shadow:inset 0 -1px 0 #bbb;"
)
_TABLE = "border-collapse:separate;border-spacing:0;font-size:12px;line-height:1.5;"


def table_columns(df: pd.DataFrame) -> list[str]:
    """The columns the jobs table shows for ``df`` (its workspace first, in a run of many)."""
    first = ["workspace"] if "workspace" in df.columns else []
    return [*first, *TABLE_COLUMNS, *(c for c in OPTIONAL_TABLE_COLUMNS if c in df.columns)]


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def table_html(page: pd.DataFrame, columns: Sequence[str], *, highlight: str | None = None) -> str:
    """One page of the jobs table: a sticky header, a row per job (``tr.ij-row``), the id in
    ``td.ij-id`` with its ✖/⚠ mark on the same line; the row whose id is ``highlight`` marked
    (``tr.ij-found``). Cells never wrap: the table's box scrolls sideways instead.

    Args:
        page: the rows to draw (already filtered, sorted and cut to a page).
        columns: the columns to draw, ``job_id`` first.
        highlight: a job id to highlight (the one found).
    """
    head = "".join(f'<th style="{_CELL}{_HEAD}">{html.escape(c)}</th>' for c in columns)
    body = []
    if len(page):
        marks = outcomes(page).astype(object).tolist()
        for mark, values in zip(marks, page[list(columns)].itertuples(index=False), strict=True):
            job_id = _text(values[0])
            found = highlight is not None and job_id == highlight
            style = _FOUND_STYLE if found else _ROW_STYLE.get(mark, "")
            sign = _MARK.get(mark)
            badge = (
                f'<span title="{_MARK_TITLE[mark]}" aria-label="{_MARK_TITLE[mark]}">{sign}</span> '
                if sign
                else ""
            )
            cells = [f'<td class="ij-id" style="{_CELL}">{badge}{html.escape(job_id)}</td>']
            cells += [f'<td style="{_CELL}">{html.escape(_text(v))}</td>' for v in values[1:]]
            kind = "ij-row ij-found" if found else "ij-row"
            body.append(f'<tr class="{kind}" style="{style}">{"".join(cells)}</tr>')
    else:
        body.append(
            f'<tr><td colspan="{len(columns)}" style="{_CELL}color:#666">no jobs to show</td></tr>'
        )
    return (
        f'<table class="ij-jobs" style="{_TABLE}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def progress_text(snapshot: Snapshot) -> str:
    """What a run is doing, from a progress `Snapshot`: done of total, the counts, the rate,
    the budget left in Intercom's rate-limit window, how long the gate holds requests back,
    and an ETA.

    Example:
        ``"120/1,000 jobs · success 100 · failed 20 · 35.2 jobs/s · budget 80/100 left in the
        window · waiting 6 s for the rate-limit window · about 25 s left"``
    """
    parts = [f"{number(snapshot.done)}/{number(snapshot.total)} jobs"]
    parts += [f"{kind} {number(n)}" for kind, n in snapshot.counts.items() if n]
    if snapshot.rate is not None and snapshot.rate > 0:
        parts.append(f"{snapshot.rate:.1f} jobs/s")
    if snapshot.remaining is not None:
        of = f"/{number(snapshot.limit)}" if snapshot.limit else ""
        parts.append(f"budget {number(snapshot.remaining)}{of} left in the window")
    if snapshot.waiting >= SHOW_WAIT and not snapshot.finished:
        parts.append(f"waiting {duration(snapshot.waiting)} for the rate-limit window")
    if snapshot.eta is not None and not snapshot.finished and snapshot.done < snapshot.total:
        parts.append(f"about {duration(snapshot.eta)} left")
    return " · ".join(parts)


def _workspaces_html(workspaces: Mapping[str, tuple[int, int]]) -> str:
    cells = "".join(
        f'<span style="white-space:nowrap;margin-right:12px">{html.escape(str(name))}: '
        f"{number(done)}/{number(total)}</span> "
        for name, (done, total) in workspaces.items()
    )
    return f'<div style="font-size:12px">{cells}</div>'


def status_html(
    state: str,
    message: str,
    *,
    detail: str | None = None,
    snapshot: Snapshot | None = None,
) -> str:
    """The status area: one message in the colour of its state, the technical detail behind a
    disclosure, and while running the progress figures (and per-workspace counts).

    Args:
        state: one of `STATES`.
        message: a sentence for a person (plain text: it is escaped).
        detail: the technical detail (an exception's text), shown under "Details".
        snapshot: the latest progress `Snapshot` of a running fetch.
    """
    color = STATES[state]
    body = html.escape(message)
    if state == "running" and snapshot is not None:
        body += " " + html.escape(progress_text(snapshot))
    out = (
        f'<div class="ij-state-{state}" data-state="{state}" '
        f'style="color:{color};line-height:1.5;overflow-wrap:anywhere">{body}'
    )
    if state == "running" and snapshot is not None and snapshot.workspaces:
        out += _workspaces_html(snapshot.workspaces)
    if detail:
        out += (
            '<details style="color:#444;font-size:12px"><summary style="cursor:pointer">'
            "Details</summary>"
            f'<pre style="white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0">'
            f"{html.escape(detail)}</pre></details>"
        )
    return out + "</div>"


def note_html(text: str, kind: str = "info") -> str:
    """A short message beside a control (Export's "saved to …", Upload's count)."""
    if not text:
        return ""
    color = {"info": "#26734d", "warning": "#9c6500", "error": "#b00020"}[kind]
    return (
        f'<span style="color:{color};line-height:1.5;overflow-wrap:anywhere">'
        f"{html.escape(text)}</span>"
    )


def counts_text(df: pd.DataFrame) -> str:
    """``"200 jobs · success 150 · failed 20 · pending 30 · errors 0"``."""
    counts = outcomes(df).value_counts()
    return (
        f"{number(len(df))} jobs · success {number(counts['success'])} · failed "
        f"{number(counts['failed'])} · pending {number(counts['pending'])} · errors "
        f"{number(counts['error'])}"
    )


def summary_html(df: pd.DataFrame) -> str:
    """`summarize` as a compact HTML table, shares as percentages with one decimal."""
    table = summarize(df)
    cell = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap;"
    head = "".join(
        f'<th style="{cell}font-weight:600">{h}</th>' for h in ("by", "value", "count", "share")
    )
    rows = []
    for key, row in table.iterrows():
        by, value = cast("tuple[str, str]", key)
        values = (by, value, number(int(row["count"])), percent(row["share"]))
        cells = "".join(f'<td style="{cell}">{html.escape(str(v))}</td>' for v in values)
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'<table style="border-collapse:collapse;font-size:12px;line-height:1.5">'
        f"<thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
