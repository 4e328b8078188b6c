"""The JobsPanel, driven from Python the way its page drives it: the messages the page sends
(``{"type": "refresh", "token": ...}``, ``{"type": "sort", "column": ...}``, ...) and the traits
it sets, and what the panel's model then holds for the page to draw.

Every test talks to a real sandbox; the fetch runs in the panel's background thread and
``panel.wait()`` joins it. The page itself (the ES module) is tested in a browser:
tests/test_notebooks_browser.py.
"""

from __future__ import annotations

import base64
import json
import time

import pandas as pd
import pytest

import intercom_jobs_nb as ij
from conftest import PANEL_TOKEN
from intercom_jobs_nb._panel_render import TABLE_COLUMNS
from intercom_jobs_nb._panel_table import MAX_WINDOW
from intercom_jobs_nb._widgets import parse_ids
from intercom_jobs_nb.sandbox import Sandbox

WAIT = 20  # seconds; a run against the local sandbox takes well under one


def page_sends(panel, **message) -> None:
    """What the page's ES module sends when the person acts."""
    panel._on_message(panel, message, [])


def click_refresh(panel, token=PANEL_TOKEN):
    page_sends(panel, type="refresh", token=token or "")
    assert panel.wait(timeout=WAIT), "the refresh did not end"


def rows_sent(panel) -> list[list[str]]:
    return panel.window["rows"]


def state_dump(panel) -> str:
    return json.dumps(panel.get_state(), default=repr)


# -- fetching ---------------------------------------------------------------------------------


def test_first_click_fetches_every_job(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    assert panel.df["job_id"].tolist() == panel_sandbox.job_ids
    assert set(panel_sandbox.stats["per_job"].values()) == {1}
    pending = int((panel.df["status"] == "pending").sum())
    assert 0 < pending < 40
    assert f"pending {pending}" in panel.status and panel.state == "finished"
    assert "<table" in panel.summary and panel.has_results
    assert panel.total == 40 and len(rows_sent(panel)) == 40 and panel.count == "40 rows"
    bars = {b["outcome"]: b for b in panel.chart["bars"]}
    assert bars["pending"]["count"] == pending and bars["pending"]["label"] == str(pending)
    assert bars["pending"]["share"] == f"{pending / 40:.1%}"
    assert panel.chart["title"] == "Job outcomes (40 jobs)"


def test_the_chart_labels_numbers_one_way(panel_of):
    with Sandbox(jobs=1502, seed=0, pending_share=0.0, token=PANEL_TOKEN) as sb:
        panel = panel_of(sb)
        click_refresh(panel)
    assert panel.chart["title"] == "Job outcomes (1,502 jobs)"
    success = next(b for b in panel.chart["bars"] if b["outcome"] == "success")
    assert "," in success["label"] and success["share"].endswith("%")


def test_second_click_asks_again_only_jobs_not_final(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    first = panel.df
    pending = set(first.loc[first["status"] == "pending", "job_id"])
    click_refresh(panel, token=None)
    per_job = panel_sandbox.stats["per_job"]
    assert {j for j, n in per_job.items() if n == 2} == pending
    assert panel.df["job_id"].tolist() == first["job_id"].tolist()
    assert "Finished refresh #2" in panel.status


def test_new_ids_in_the_box_are_fetched_and_final_rows_kept(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=panel_sandbox.job_ids[:10])
    click_refresh(panel)
    panel.ids_text += "\n" + "\n".join(panel_sandbox.job_ids[10:12] + ["no/such"])  # the page
    panel_sandbox.reset_stats()
    click_refresh(panel, token=None)
    asked = set(panel_sandbox.stats["per_job"])
    first_ten_pending = set(panel.df.head(10).query("status == 'pending'")["job_id"])
    assert asked == first_ten_pending | set(panel_sandbox.job_ids[10:12])
    assert panel.df["job_id"].tolist()[-1] == "no/such"
    assert panel.df["error_code"].iloc[-1] == "invalid_job_id"


def test_fetch_runs_in_the_background_and_the_model_says_busy(panel_of):
    with Sandbox(jobs=30, seed=0, latency=0.05, token=PANEL_TOKEN) as sb:
        panel = panel_of(sb, max_workers=2)
        page_sends(panel, type="refresh", token=PANEL_TOKEN)  # returns at once
        assert panel.busy
        assert panel.wait(timeout=WAIT)
        assert not panel.busy
        assert panel.progress == [30, 30]


# -- the token --------------------------------------------------------------------------------


def test_a_typed_token_is_never_in_the_widget_state(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    assert PANEL_TOKEN not in state_dump(panel)
    assert PANEL_TOKEN not in repr(panel)
    assert PANEL_TOKEN not in json.dumps(panel._repr_mimebundle_(), default=repr)
    assert panel.token_placeholder == "token kept in memory; type to replace"
    click_refresh(panel, token=None)  # kept in memory: the next click needs nothing typed
    assert "Finished refresh #2" in panel.status


def test_token_from_the_environment_needs_nothing_typed(panel_sandbox, panel_of, monkeypatch):
    monkeypatch.setenv("INTERCOM_TOKEN", PANEL_TOKEN)
    panel = panel_of(panel_sandbox)
    assert "INTERCOM_TOKEN" in panel.token_note
    click_refresh(panel, token=None)
    assert len(panel.df) == 40


def test_no_token_is_a_message(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    page_sends(panel, type="refresh", token="")
    assert panel.wait(timeout=WAIT)
    assert "No token: paste one, or set INTERCOM_TOKEN" in panel.status
    assert panel.state == "no_token" and panel.df is None
    assert panel_sandbox.stats["requests"] == 0
    page_sends(panel, type="typing", typed=True)
    assert panel.state == "ready"


def test_wrong_token_is_a_message_and_keeps_the_previous_results(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    before, rows = panel.df, rows_sent(panel)
    click_refresh(panel, token="not-the-token")
    assert "did not accept the access token" in panel.status
    assert "from the last refresh" in panel.status
    assert "Traceback" not in panel.status and "not-the-token" not in state_dump(panel)
    assert panel.df is before and rows_sent(panel) == rows
    assert not panel.busy
    assert panel.token_placeholder == "paste an access token"  # the token was dropped


def test_after_a_rejected_token_the_right_one_fetches(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel, token="not-the-token")
    assert panel.state == "error"
    click_refresh(panel)
    assert panel.state == "finished", panel.status
    assert len(panel.df) == len(panel_sandbox.job_ids)


# -- bad inputs and failures ------------------------------------------------------------------


def test_empty_ids_are_a_message(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=[])
    click_refresh(panel)
    assert "No job ids" in panel.status and panel.df is None
    assert panel_sandbox.stats["requests"] == 0


def test_unreachable_intercom_is_a_message_and_keeps_the_previous_results(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    before = panel.df
    panel_sandbox.stop()
    click_refresh(panel, token=None)
    assert "Could not reach Intercom at http://127.0.0.1:" in panel.status
    assert "<summary" in panel.status and "connection_error" in panel.status
    assert panel.df is before


def test_a_message_the_page_should_not_send_is_a_status_not_a_traceback(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    page_sends(panel, type="window", start="nope", count=3)
    assert panel.state == "error" and "bug" in panel.status
    panel._on_message(panel, ["not", "a", "dict"], [])  # ignored


# -- the table --------------------------------------------------------------------------------


def test_filters_have_counts_and_keep_only_the_chosen_rows(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=[*panel_sandbox.job_ids, "999999"])
    click_refresh(panel)
    choices = {value: label for label, value in panel.status_choices}
    status = TABLE_COLUMNS.index("status")
    for which in ("pending", "success", "failed"):
        expected = int((panel.df["status"] == which).sum())
        assert choices[which] == f"{which} ({expected})"
        page_sends(panel, type="filter", status=which)
        assert panel.status_filter == which and panel.total == expected
        assert {row[status] for row in rows_sent(panel)} == {which}
        assert panel.count == f"{expected} rows (filtered from 41)"
    page_sends(panel, type="filter", status="")
    assert "job_not_found (1)" in [label for label, _ in panel.code_choices]
    page_sends(panel, type="filter", code="job_not_found")
    assert [row[0] for row in rows_sent(panel)] == ["999999"]


def test_failed_and_unreadable_jobs_come_first(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=[*panel_sandbox.job_ids, "999999"])
    click_refresh(panel)
    kinds = panel.window["outcomes"]
    n_failed = int((panel.df["status"] == "failed").sum())
    assert kinds[0] == "error" and rows_sent(panel)[0][0] == "999999"
    assert kinds[1 : 1 + n_failed] == ["failed"] * n_failed and kinds[1 + n_failed] != "failed"


def test_a_header_click_sorts_and_a_second_click_reverses(panel_of):
    with Sandbox(jobs=450, seed=0, pending_share=0.0, token=PANEL_TOKEN) as sb:
        panel = panel_of(sb)
        click_refresh(panel)
    ids = sorted(sb.job_ids, key=int)
    page_sends(panel, type="sort", column="job_id")
    assert (panel.sort_by, panel.ascending) == ("job_id", True)
    assert rows_sent(panel)[0][0] == ids[0]
    page_sends(panel, type="sort", column="job_id")
    assert not panel.ascending and rows_sent(panel)[0][0] == ids[-1]


def test_the_page_gets_the_rows_it_asks_for_and_never_more_than_the_bound(panel_of):
    with Sandbox(jobs=450, seed=0, pending_share=0.0, token=PANEL_TOKEN) as sb:
        panel = panel_of(sb)
        click_refresh(panel)
    view = panel.controller.table.view()["job_id"].tolist()
    page_sends(panel, type="window", start=400, count=30)
    assert panel.window["start"] == 400
    assert [r[0] for r in rows_sent(panel)] == view[400:430]
    page_sends(panel, type="sort", column="job_id")  # the view changes: the same rows in sight
    assert panel.window["start"] == 400 and len(rows_sent(panel)) == 30
    assert rows_sent(panel)[0][0] == sorted(view, key=int)[400]
    page_sends(panel, type="window", start=0, count=10_000)
    assert len(rows_sent(panel)) == MAX_WINDOW


def test_find_scrolls_to_the_row_and_its_note_goes_when_it_no_longer_applies(panel_of):
    with Sandbox(jobs=450, seed=0, pending_share=0.0, token=PANEL_TOKEN) as sb:
        panel = panel_of(sb)
        click_refresh(panel)
    target = panel.controller.table.view()["job_id"].iloc[420]
    page_sends(panel, type="find", text=target)
    assert panel.found["id"] == target and panel.found["row"] == 420
    window = panel.window  # sent with it: the rows around the found one
    assert window["start"] <= 420 < window["start"] + len(window["rows"])
    assert "row 421 of 450" in panel.find_note
    status = panel.df.loc[panel.df["job_id"] == target, "status"].iloc[0]
    page_sends(panel, type="filter", status="failed" if status != "failed" else "success")
    assert panel.found == {} and panel.find_note == ""
    page_sends(panel, type="filter", status="")
    page_sends(panel, type="find", text="nope-nope")
    assert "not found" in panel.find_note and panel.found == {}


def test_export_writes_the_jobs_the_table_shows(panel_sandbox, panel_of, tmp_path):
    panel = panel_of(panel_sandbox, export_path=tmp_path / "all.csv")
    click_refresh(panel)
    page_sends(panel, type="sort", column="job_id")
    page_sends(panel, type="export")
    written = pd.read_csv(tmp_path / "all.csv", dtype=str)
    assert written["job_id"].tolist() == sorted(panel.df["job_id"].tolist(), key=int)
    assert str(tmp_path / "all.csv") in panel.export_note
    assert str(tmp_path) not in panel.status  # the message is beside Export
    page_sends(panel, type="filter", status="failed")
    panel.export_path = str(tmp_path / "failed.csv")  # the page sets the path
    page_sends(panel, type="export")
    assert set(pd.read_csv(tmp_path / "failed.csv", dtype=str)["status"]) == {"failed"}
    assert panel.last_export == tmp_path / "failed.csv"


def test_export_before_any_fetch_is_a_message(panel_sandbox, panel_of, tmp_path):
    panel = panel_of(panel_sandbox, export_path=tmp_path / "x.csv")
    page_sends(panel, type="export")
    assert "Nothing to export" in panel.export_note
    assert not (tmp_path / "x.csv").exists()


# -- ids in -----------------------------------------------------------------------------------


def upload(panel, name: str, content: bytes) -> None:
    """What the page sends when a file is chosen."""
    page_sends(panel, type="upload", name=name, content=base64.b64encode(content).decode())


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("orders.csv", b"order,job_id\nA-1,1001\nA-2,1002\nA-3,1001\n"),
        ("ids.txt", b"# my jobs\n1001\n\n1002\n"),
    ],
)
def test_upload_of_ids_fills_the_box(panel_sandbox, panel_of, name, content):
    panel = panel_of(panel_sandbox, job_ids=[])
    upload(panel, name, content)
    assert panel.ids_text.split() == ["1001", "1002"]
    assert "Read 2 job ids" in panel.upload_note
    assert ("1 repeated" in panel.upload_note) == name.endswith(".csv")
    assert "No token" in panel.status  # still true: the upload did not change it


def test_uploaded_id_with_a_space_stays_one_job(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=[])
    upload(panel, "ids.csv", f"job_id\n{panel_sandbox.job_ids[0]}\nabc def\n".encode())
    click_refresh(panel)
    assert panel.df["job_id"].tolist() == [panel_sandbox.job_ids[0], "abc def"]
    assert panel.df["error_code"].iloc[1] == "invalid_job_id"


def test_upload_of_another_kind_of_file_is_a_message(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=["1001"])
    upload(panel, "ids.xlsx", b"PK\x03\x04")
    assert ".csv or .txt" in panel.upload_note
    assert panel.ids_text == "1001"


def test_pasted_ids_are_split_and_deduplicated():
    assert parse_ids("1001, '1002'\n1003;1001\t[1004]") == ["1001", "1002", "1003", "1004"]


def test_prefilled_from_a_dataframe_of_records(panel_sandbox, panel_of):
    records = pd.DataFrame({"order": ["a", "b"], "job_id": [1001, 1002]})
    panel = panel_of(panel_sandbox, job_ids=records)
    assert parse_ids(panel.ids_text) == ["1001", "1002"]


def test_region_says_base_url_overrides_it_without_showing_the_address(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    assert panel.regions == [["set by base_url", "base_url"]]
    assert "127.0.0.1" not in json.dumps(panel.regions)
    plain = ij.JobsPanel(["1001"], region="eu")
    assert [v for _, v in plain.regions] == ["us", "eu", "au"] and plain.region == "eu"
    plain.region = "au"  # the page's choice
    assert plain.controller.where == "https://api.au.intercom.io"
    plain.close()


# -- auto-refresh -----------------------------------------------------------------------------


def test_auto_refresh_polls_until_no_job_is_pending(panel_of):
    with Sandbox(
        jobs=20, seed=0, pending_share=0.5, pending_seconds=(0.3, 1.0), token=PANEL_TOKEN
    ) as sb:
        panel = panel_of(sb)
        panel.interval = 0.5
        page_sends(panel, type="auto", on=True)
        click_refresh(panel)
        assert not (panel.df["status"] == "pending").any()
        assert panel.refreshes >= 2 and max(sb.stats["per_job"].values()) >= 2
        assert panel.auto is False  # nothing left to poll
        assert "pending 0" in panel.status


def test_stop_ends_auto_refresh_while_it_waits_for_its_next_poll(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    panel.interval = 60
    page_sends(panel, type="auto", on=True)
    page_sends(panel, type="refresh", token=PANEL_TOKEN)
    deadline = time.monotonic() + WAIT
    while "Next refresh in" not in panel.status and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "Next refresh in" in panel.status and panel.auto
    page_sends(panel, type="stop")
    assert panel.wait(timeout=2.0)
    assert panel.state == "stopped" and not panel.auto and not panel.busy


def test_stop_ends_a_slow_fetch_and_keeps_the_rows_so_far():
    with ij.Sandbox(jobs=300, latency=0.05, pending_share=0.0) as sb:
        panel = ij.JobsPanel(sb.job_ids, base_url=sb.base_url, token=sb.token, max_workers=2)
        page_sends(panel, type="refresh", token="")
        deadline = time.monotonic() + 30
        while panel.progress[0] < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        page_sends(panel, type="stop")
        assert panel.wait(timeout=30), "the fetch did not stop"
        asked = sb.stats["requests"]
    assert panel.df is not None and 0 < len(panel.df) < 300
    assert "Stopped" in panel.status and not panel.busy
    assert asked < 300


# -- display ----------------------------------------------------------------------------------


def test_panel_is_one_anywidget_with_a_short_text_form(panel_sandbox, panel_of):
    import anywidget

    panel = panel_of(panel_sandbox)
    assert isinstance(panel, anywidget.AnyWidget)
    bundle = panel._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle  # (data, metadata) or data
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    assert data["text/plain"] == repr(panel)
    assert repr(panel).startswith("JobsPanel(40 job ids, http://127.0.0.1:")
    assert "export default" in panel._esm and ".ij-table" in panel._css  # files of the package


def test_panel_is_exported_from_the_package():
    assert "JobsPanel" in ij.__all__ and ij.JobsPanel is not None


def test_table_shows_ticket_id_and_state_when_the_frame_has_them(panel_of, tmp_path):
    with Sandbox(jobs=0, seed=3, enqueue_pending_seconds=(0, 0), enqueue_failed_share=0.5) as sb:
        options = dict(token=sb.token, base_url=sb.base_url, progress=False)
        rows = [{"key": f"k{i}", "contact_id": f"c{i}", "title": f"T{i}"} for i in range(6)]
        enqueued = ij.enqueue_tickets(
            rows, ledger=tmp_path / "ledger.sqlite", ticket_type_id="88", **options
        )
        df = ij.wait_for_jobs(enqueued, poll_interval=0.05, tickets=True, **options)
        panel = panel_of(sb, job_ids=df["job_id"].tolist())
        tickets = {t["id"]: t["ticket_id"] for t in sb.tickets}
    assert 0 < len(tickets) < len(df)  # some jobs failed: their rows have no ticket
    panel.df = df
    assert panel.columns[-2:] == ["ticket_id", "ticket_state"]
    page_sends(panel, type="filter", status="success")
    resource = panel.columns.index("resource_id")
    shown = {row[resource]: row[-2:] for row in rows_sent(panel)}
    assert shown == {r: [t, "submitted"] for r, t in tickets.items()}


def test_table_has_no_ticket_columns_for_a_frame_of_jobs_alone(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=panel_sandbox.job_ids[:5])
    click_refresh(panel)
    assert panel.columns == list(TABLE_COLUMNS)
    assert len(panel.widths) == len(TABLE_COLUMNS)
