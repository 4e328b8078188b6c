"""The JobsPanel's HTML: pure functions from data (a page of jobs, a status, a `Snapshot`) to
strings. No widgets here, so every piece is tested as text.

Every value that came from a server (ids, error messages, codes) is escaped: server text is
untrusted. Widgets get none of JupyterLab's output styling, so the HTML carries its own.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import cast

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


def table_columns(df: pd.DataFrame) -> list[str]:
    """The columns the jobs table shows for ``df``: the job id first (the table pins it), then
    its workspace in a run of many."""
    space = ["workspace"] if "workspace" in df.columns else []
    rest = (c for c in OPTIONAL_TABLE_COLUMNS if c in df.columns)
    return [TABLE_COLUMNS[0], *space, *TABLE_COLUMNS[1:], *rest]


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
    """`summarize` as a compact HTML table grouped by what it counts (a heading for status,
    resource type and error code, then each value's count and share as a percentage)."""
    table = summarize(df)
    cell = "padding:1px 8px;text-align:left;white-space:nowrap;"
    rows = []
    for by, part in table.groupby(level="by", sort=False):
        title = html.escape(str(by).replace("_", " "))
        rows.append(f'<tr><th class="ij-group" colspan="3" style="{cell}">{title}</th></tr>')
        for key, row in part.iterrows():
            value = cast("tuple[str, str]", key)[1]
            values = (value, number(int(row["count"])), percent(row["share"]))
            cells = "".join(
                f'<td style="{cell}{"text-align:right;" if k else ""}">{html.escape(str(v))}</td>'
                for k, v in enumerate(values)
            )
            rows.append(f"<tr>{cells}</tr>")
    return (
        f'<table class="ij-summary-table" style="border-collapse:collapse;font-size:12px;'
        f'line-height:1.5"><tbody>{"".join(rows)}</tbody></table>'
    )
