"""The JobsPanel's HTML, as strings: the jobs table, the status area, the summary."""

from __future__ import annotations

import pandas as pd
import pytest

from intercom_jobs_nb._panel_render import (
    STATES,
    TABLE_COLUMNS,
    progress_text,
    status_html,
    summary_html,
    table_columns,
    table_html,
)
from intercom_jobs_nb._progress import Snapshot


def jobs(**columns) -> pd.DataFrame:
    n = len(columns["job_id"])
    base = {c: [None] * n for c in TABLE_COLUMNS}
    base.update(columns)
    df = pd.DataFrame(base)
    df["status"] = df["status"].astype("category")
    return df


def test_every_value_is_escaped():
    df = jobs(
        job_id=["<img src=x onerror=alert(1)>"],
        status=[None],
        error_code=["invalid_job_id"],
        error_message=["<script>alert('x')</script> & more"],
    )
    out = table_html(df, table_columns(df))
    assert "<script>" not in out and "<img" not in out
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out


def test_rows_are_text_rows_with_the_mark_on_the_ids_line():
    df = jobs(
        job_id=["1", "2", "3"],
        status=["failed", None, "success"],
        error_code=[None, "job_not_found", None],
    )
    out = table_html(df, table_columns(df))
    rows = out.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == 3 and all(r.startswith('<tr class="ij-row"') for r in rows)
    ids = [r.split('<td class="ij-id"')[1].split("</td>")[0] for r in rows]
    assert all("white-space:nowrap" in cell for cell in ids)
    assert ">✖</span> 1" in ids[0] and ">⚠</span> 2" in ids[1] and ids[2].endswith(">3")


def test_the_header_sticks_and_cells_do_not_wrap():
    df = jobs(job_id=["1"], status=["success"])
    out = table_html(df, table_columns(df))
    head = out.split("<thead>")[1].split("</thead>")[0]
    assert head.count("position:sticky;top:0") == len(TABLE_COLUMNS)
    assert out.count("white-space:nowrap") == 2 * len(TABLE_COLUMNS)


def test_the_found_row_is_highlighted():
    df = jobs(job_id=["1", "2"], status=["success", "success"])
    out = table_html(df, table_columns(df), highlight="2")
    assert out.count("ij-found") == 1
    assert '<tr class="ij-row ij-found"' in out.split("</tr>")[2]


def test_an_empty_page_says_so():
    df = jobs(job_id=["1"], status=["success"]).iloc[:0]
    assert "no jobs to show" in table_html(df, table_columns(df))


def test_ticket_columns_only_when_the_frame_has_them():
    df = jobs(job_id=["1"], status=["success"])
    assert table_columns(df) == list(TABLE_COLUMNS)
    df["ticket_state"] = ["submitted"]
    assert table_columns(df) == [*TABLE_COLUMNS, "ticket_state"]


# -- the status area --------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(STATES))
def test_each_state_has_its_colour_and_escapes_the_message(state):
    out = status_html(state, "a <b>message</b>")
    assert f'data-state="{state}"' in out and STATES[state] in out
    assert "a &lt;b&gt;message&lt;/b&gt;" in out
    assert "<details" not in out


def test_the_detail_is_behind_a_disclosure():
    out = status_html("error", "Could not reach Intercom.", detail="ConnectionError: <refused>")
    assert "<details" in out and "<summary" in out and ">Details</summary>" in out
    assert out.index("Could not reach") < out.index("<details")
    assert "ConnectionError: &lt;refused&gt;" in out


def snap(**kwargs) -> Snapshot:
    base = dict(done=120, total=1000, counts={"success": 100, "failed": 20, "pending": 0})
    base.update(kwargs)
    return Snapshot(**base)


def test_progress_says_rate_budget_waiting_and_eta():
    text = progress_text(snap(rate=35.2, eta=25.0, limit=100, remaining=80, waiting=6.0))
    assert text == (
        "120/1,000 jobs · success 100 · failed 20 · 35.2 jobs/s · budget 80/100 left in the "
        "window · waiting 6 s for the rate-limit window · about 25 s left"
    )


def test_progress_leaves_out_what_is_not_known():
    assert progress_text(snap()) == "120/1,000 jobs · success 100 · failed 20"
    assert "waiting" not in progress_text(snap(waiting=0.1))  # a slot, not worth saying
    assert "left" not in progress_text(snap(eta=3.0, finished=True))


def test_running_status_shows_the_progress_and_the_workspaces():
    out = status_html(
        "running", "Fetching…", snapshot=snap(workspaces={"acme": (80, 600), "<b>": (40, 400)})
    )
    assert "Fetching… 120/1,000 jobs" in out
    assert "acme: 80/600" in out and "&lt;b&gt;: 40/400" in out
    assert "120/1,000" not in status_html("error", "Stopped on an error.", snapshot=snap())


def test_summary_shares_are_percentages_with_one_decimal():
    df = jobs(job_id=["1", "2", "3"], status=["success", "success", "failed"])
    out = summary_html(df)
    assert "<td" in out and "66.7%" in out and "33.3%" in out
