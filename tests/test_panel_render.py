"""The JobsPanel's HTML, as strings: the status area, the summary; the table's columns."""

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
)
from intercom_jobs_nb._progress import Snapshot


def jobs(**columns) -> pd.DataFrame:
    n = len(columns["job_id"])
    base = {c: [None] * n for c in TABLE_COLUMNS}
    base.update(columns)
    df = pd.DataFrame(base)
    df["status"] = df["status"].astype("category")
    return df


def test_ticket_columns_only_when_the_frame_has_them():
    df = jobs(job_id=["1"], status=["success"])
    assert table_columns(df) == list(TABLE_COLUMNS)
    df["ticket_state"] = ["submitted"]
    assert table_columns(df) == [*TABLE_COLUMNS, "ticket_state"]


def test_the_job_id_comes_first_then_the_workspace():
    df = jobs(job_id=["1"], status=["success"])
    df["workspace"] = ["acme"]
    assert table_columns(df)[:3] == ["job_id", "workspace", "status"]


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


def test_the_summary_is_grouped_by_what_it_counts():
    df = jobs(
        job_id=["1", "2", "3"],
        status=["success", "failed", None],
        error_code=[None, None, "job_not_found"],
    )
    out = summary_html(df)
    groups = [part.split("</th>")[0].split(">")[-1] for part in out.split('class="ij-group"')[1:]]
    assert groups == ["status", "resource type", "error code"]
    status_part = out.split("resource type")[0]
    assert status_part.count(">status<") == 1  # the heading once, not on every line
    assert ">job_not_found<" in out.split("error code")[1]
    assert "<b>" not in summary_html(jobs(job_id=["1"], status=["<b>"]))
