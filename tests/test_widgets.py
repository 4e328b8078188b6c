"""The JobsPanel, driven from Python the way a notebook user drives it with the mouse.

Every test talks to a real sandbox; the fetch runs in the panel's background thread and
``panel.wait()`` joins it.
"""

from __future__ import annotations

import datetime
import json
import time

import pandas as pd
import pytest

import intercom_jobs_nb as ij
from conftest import PANEL_TOKEN
from intercom_jobs_nb._panel_render import _CELL, TABLE_COLUMNS
from intercom_jobs_nb._widgets import parse_ids
from intercom_jobs_nb.sandbox import Sandbox

WAIT = 20  # seconds; a run against the local sandbox takes well under one


def click_refresh(panel, token=PANEL_TOKEN):
    if token is not None:
        panel.token_input.value = token
    panel.refresh_button.click()
    assert panel.wait(timeout=WAIT), "the refresh did not end"


def all_widgets(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from all_widgets(child)


def widget_state_dump(panel) -> str:
    return json.dumps([w.get_state() for w in all_widgets(panel.widget)], default=repr)


def table_rows(panel) -> int:
    return panel.table_html.value.count("<tr") - 1  # minus the header row


# -- fetching ---------------------------------------------------------------------------------


def test_first_click_fetches_every_job(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    assert panel.df["job_id"].tolist() == panel_sandbox.job_ids
    assert set(panel_sandbox.stats["per_job"].values()) == {1}
    assert len(panel_sandbox.stats["per_job"]) == 40
    pending = int((panel.df["status"] == "pending").sum())
    assert 0 < pending < 40
    assert f"pending {pending}" in panel.status_line.value
    assert "<table" in panel.summary_html.value
    assert table_rows(panel) == 40
    assert bytes(panel.chart.value).startswith(b"\x89PNG")


def test_second_click_asks_again_only_jobs_not_final(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    first = panel.df
    pending = set(first.loc[first["status"] == "pending", "job_id"])
    click_refresh(panel, token=None)
    per_job = panel_sandbox.stats["per_job"]
    assert {j for j, n in per_job.items() if n == 2} == pending
    assert all(per_job[j] == 1 for j in set(panel_sandbox.job_ids) - pending)
    assert panel.df["job_id"].tolist() == first["job_id"].tolist()
    assert "Finished refresh #2" in panel.status_line.value


def test_the_chart_is_drawn_again_only_when_the_counts_change(panel_sandbox, panel_of):
    """Drawing takes a while (it delayed Stop's message): the same outcome, the same picture."""
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    first = panel.chart.value
    click_refresh(panel, token=None)  # the pending jobs are still pending: same counts
    assert panel.chart.value is first
    panel_sandbox.finish_all()
    click_refresh(panel, token=None)
    assert panel.chart.value != first and bytes(panel.chart.value).startswith(b"\x89PNG")


def test_new_ids_in_the_box_are_fetched_and_final_rows_kept(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=panel_sandbox.job_ids[:10])
    click_refresh(panel)
    panel.ids_input.value += "\n" + "\n".join(panel_sandbox.job_ids[10:12] + ["no/such"])
    panel_sandbox.reset_stats()
    click_refresh(panel, token=None)
    asked = set(panel_sandbox.stats["per_job"])
    first_ten_pending = set(panel.df.head(10).query("status == 'pending'")["job_id"])
    assert asked == first_ten_pending | set(panel_sandbox.job_ids[10:12])
    assert panel.df["job_id"].tolist()[-1] == "no/such"
    assert panel.df["error_code"].iloc[-1] == "invalid_job_id"


def test_fetch_runs_in_the_background_with_buttons_disabled(panel_of):
    with Sandbox(jobs=30, seed=0, latency=0.05, token=PANEL_TOKEN) as sb:
        panel = panel_of(sb, max_workers=2)
        panel.token_input.value = PANEL_TOKEN
        panel.refresh_button.click()  # returns at once: the kernel stays free
        assert panel.busy
        assert panel.refresh_button.disabled and panel.export_button.disabled
        assert panel.progress.layout.visibility == "visible"
        assert panel.wait(timeout=WAIT)
        assert not panel.refresh_button.disabled and not panel.export_button.disabled
        assert panel.progress.layout.visibility == "hidden"
        assert panel.progress.value == panel.progress.max == 30


# -- the token --------------------------------------------------------------------------------


def test_typed_token_leaves_the_widgets_on_use(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    assert panel.token_input.value == ""
    assert PANEL_TOKEN not in widget_state_dump(panel)
    assert PANEL_TOKEN not in repr(panel)
    assert PANEL_TOKEN not in json.dumps(panel._repr_mimebundle_())
    click_refresh(panel, token=None)  # kept in memory: the next click needs nothing typed
    assert "Finished refresh #2" in panel.status_line.value


def test_token_from_the_environment_needs_nothing_typed(panel_sandbox, panel_of, monkeypatch):
    monkeypatch.setenv("INTERCOM_TOKEN", PANEL_TOKEN)
    panel = panel_of(panel_sandbox)
    assert "INTERCOM_TOKEN" in panel.token_note.value
    click_refresh(panel, token=None)
    assert len(panel.df) == 40


def test_no_token_is_a_message(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    panel.refresh_button.click()
    assert panel.wait(timeout=WAIT)
    assert "No token: paste one, or set INTERCOM_TOKEN" in panel.status_line.value
    assert "Ready" not in panel.status_line.value
    assert panel.df is None
    assert panel_sandbox.stats["requests"] == 0


def test_wrong_token_is_a_message_and_keeps_the_previous_results(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    before, table = panel.df, panel.table_html.value
    click_refresh(panel, token="not-the-token")
    status = panel.status_line.value
    assert "did not accept the access token" in status
    assert "from the last refresh" in status
    assert "Traceback" not in status and "Fetching" not in status
    assert "not-the-token" not in status
    assert panel.df is before
    assert panel.table_html.value == table
    assert not panel.refresh_button.disabled
    assert panel.token_input.value == ""
    assert panel.token_input.placeholder == "paste an access token"  # the token was dropped


def test_after_a_rejected_token_the_right_one_fetches(panel_sandbox, panel_of):
    """The error on screen must not swallow the next click (it did: Refresh looked at the
    status left by the last run)."""
    panel = panel_of(panel_sandbox)
    click_refresh(panel, token="not-the-token")
    assert panel.controller.state == "error"
    click_refresh(panel)
    assert panel.controller.state == "finished", panel.status_line.value
    assert len(panel.df) == len(panel_sandbox.job_ids)


# -- bad inputs and failures ------------------------------------------------------------------


def test_empty_ids_are_a_message(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=[])
    click_refresh(panel)
    assert "No job ids" in panel.status_line.value
    assert panel.df is None
    assert panel_sandbox.stats["requests"] == 0


def test_unreachable_intercom_is_a_message_and_keeps_the_previous_results(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    click_refresh(panel)
    before = panel.df
    panel_sandbox.stop()
    click_refresh(panel, token=None)
    assert "Could not reach Intercom at http://127.0.0.1:" in panel.status_line.value
    assert "<summary" in panel.status_line.value
    assert "connection_error" in panel.status_line.value  # in the details
    assert panel.df is before


def test_bad_base_url_is_a_message(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, base_url="http://example.com")
    click_refresh(panel)
    assert "plain http" in panel.status_line.value
    assert panel.df is None


# -- results ----------------------------------------------------------------------------------


def test_status_filter_shows_only_the_chosen_status(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=[*panel_sandbox.job_ids, "999999"])
    click_refresh(panel)
    choices = dict((value, label) for label, value in panel.status_filter.options)
    for which in ("pending", "success", "failed"):
        expected = int((panel.df["status"] == which).sum())
        assert choices[which] == f"{which} ({expected})"
        panel.status_filter.value = which
        assert table_rows(panel) == expected
        others = {"pending", "success", "failed"} - {which}
        assert not any(f'<td style="{_CELL}">{o}</td>' in panel.table_html.value for o in others)
    panel.status_filter.value = ""
    panel.code_filter.value = "job_not_found"
    assert table_rows(panel) == 1
    assert "999999" in panel.table_html.value and "job_not_found" in panel.table_html.value


def test_failed_and_unreadable_jobs_come_first_and_marked(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=[*panel_sandbox.job_ids, "999999"])
    click_refresh(panel)
    body = panel.table_html.value.split("<tbody>")[1]
    first_rows = body.split("</tr>")
    assert "⚠</span> 999999</td>" in first_rows[0]
    n_failed = int((panel.df["status"] == "failed").sum())
    assert all("✖</span> " in row for row in first_rows[1 : 1 + n_failed])
    assert "✖" not in first_rows[1 + n_failed]


def test_sort_order_and_pager_widgets_drive_the_table(panel_of):
    with Sandbox(jobs=450, seed=0, pending_share=0.0, token=PANEL_TOKEN) as sb:
        panel = panel_of(sb)
        click_refresh(panel)
    assert table_rows(panel) == 200
    assert panel.page_label.value == "rows 1–200 of 450"
    assert panel.pager["first"].disabled and panel.pager["prev"].disabled
    panel.pager["last"].click()
    assert panel.page_label.value == "rows 401–450 of 450"
    assert table_rows(panel) == 50
    assert panel.pager["next"].disabled and not panel.pager["prev"].disabled
    panel.sort_input.value = "job_id"
    assert panel.page_label.value == "rows 1–200 of 450"  # a new order starts at its top
    ids = sorted(sb.job_ids, key=int)
    assert f'<td class="ij-id" style="{_CELL}">{ids[0]}</td>' in panel.table_html.value
    panel.order_input.value = True
    assert panel.order_input.description == "descending"
    first = panel.table_html.value.split('<tr class="ij-row"')[1]
    assert f">{ids[-1]}</td>" in first


def test_find_shows_the_page_of_the_id_and_highlights_it(panel_of):
    with Sandbox(jobs=450, seed=0, pending_share=0.0, token=PANEL_TOKEN) as sb:
        panel = panel_of(sb)
        click_refresh(panel)
    target = panel.controller.view()["job_id"].iloc[420]
    panel.find_input.value = target
    assert panel.page_label.value == "rows 401–450 of 450"
    assert '<tr class="ij-row ij-found"' in panel.table_html.value
    assert "row 421 of 450" in panel.find_msg.value
    panel.find_input.value = "nope-nope"
    assert "not found" in panel.find_msg.value
    assert "ij-found" not in panel.table_html.value


def test_export_writes_the_jobs_the_table_shows(panel_sandbox, panel_of, tmp_path):
    panel = panel_of(panel_sandbox, export_path=tmp_path / "all.csv")
    click_refresh(panel)
    panel.sort_input.value = "job_id"
    panel.export_button.click()
    written = pd.read_csv(tmp_path / "all.csv", dtype=str)
    assert written["job_id"].tolist() == sorted(panel.df["job_id"].tolist(), key=int)
    assert str(tmp_path / "all.csv") in panel.export_msg.value
    assert str(tmp_path) not in panel.status_line.value  # the message is beside Export
    panel.status_filter.value = "failed"
    panel.export_path.value = str(tmp_path / "failed.csv")
    panel.export_button.click()
    failed = pd.read_csv(tmp_path / "failed.csv", dtype=str)
    assert set(failed["status"]) == {"failed"}
    assert panel.last_export == tmp_path / "failed.csv"


def test_export_before_any_fetch_is_a_message(panel_sandbox, panel_of, tmp_path):
    panel = panel_of(panel_sandbox, export_path=tmp_path / "x.csv")
    panel.export_button.click()
    assert "Nothing to export" in panel.export_msg.value
    assert not (tmp_path / "x.csv").exists()


# -- ids in -----------------------------------------------------------------------------------


def upload(panel, name: str, content: bytes) -> None:
    """What the browser sets when a file is chosen (ipywidgets 8's FileUpload value)."""
    modified = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    panel.upload.value = (
        {
            "name": name,
            "type": "text/plain",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": modified,
        },
    )


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
    assert panel.ids_input.value.split() == ["1001", "1002"]
    assert "Read 2 job ids" in panel.upload_msg.value
    assert ("1 repeated" in panel.upload_msg.value) == name.endswith(".csv")
    # The widget keeps the file's name (its label counts the files), never its bytes.
    assert [f["name"] for f in panel.upload.value] == [name]
    assert all(bytes(f["content"]) == b"" for f in panel.upload.value)
    assert "No token" in panel.status_line.value  # still true: the upload did not change it


def test_uploaded_id_with_a_space_stays_one_job(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=[])
    upload(panel, "ids.csv", f"job_id\n{panel_sandbox.job_ids[0]}\nabc def\n".encode())
    click_refresh(panel)
    assert panel.df["job_id"].tolist() == [panel_sandbox.job_ids[0], "abc def"]
    assert panel.df["error_code"].iloc[1] == "invalid_job_id"


def test_upload_of_another_kind_of_file_is_a_message(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=["1001"])
    upload(panel, "ids.xlsx", b"PK\x03\x04")
    assert ".csv or .txt" in panel.upload_msg.value
    assert panel.ids_input.value == "1001"


def test_pasted_ids_are_split_and_deduplicated():
    assert parse_ids("1001, '1002'\n1003;1001\t[1004]") == ["1001", "1002", "1003", "1004"]


def test_prefilled_from_a_dataframe_of_records(panel_sandbox, panel_of):
    records = pd.DataFrame({"order": ["a", "b"], "job_id": [1001, 1002]})
    panel = panel_of(panel_sandbox, job_ids=records)
    assert parse_ids(panel.ids_input.value) == ["1001", "1002"]


def test_region_shows_the_base_url_that_overrides_it(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    assert panel.region_input.disabled
    assert [label for label, _ in panel.region_input.options] == [panel_sandbox.base_url]
    assert "api.intercom.io" not in repr(panel.region_input.options)


# -- auto-refresh -----------------------------------------------------------------------------


def test_auto_refresh_polls_until_no_job_is_pending(panel_of):
    with Sandbox(
        jobs=20, seed=0, pending_share=0.5, pending_seconds=(0.3, 1.0), token=PANEL_TOKEN
    ) as sb:
        panel = panel_of(sb)
        panel.interval_input.value = 0.5
        panel.auto_refresh.value = True
        click_refresh(panel)
        assert not (panel.df["status"] == "pending").any()
        assert panel.refreshes >= 2
        assert max(sb.stats["per_job"].values()) >= 2
        assert panel.auto_refresh.value is False  # nothing left to poll
        assert "pending 0" in panel.status_line.value


def test_switching_auto_refresh_off_stops_the_polling(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    panel.interval_input.value = 60
    panel.auto_refresh.value = True
    panel.token_input.value = PANEL_TOKEN
    panel.refresh_button.click()
    assert not panel.wait(timeout=1.0)  # pending for good: it would poll forever
    panel.auto_refresh.value = False
    assert panel.wait(timeout=WAIT)


def test_stop_ends_auto_refresh_while_it_waits_for_its_next_poll(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    assert panel.stop_button.disabled  # nothing to stop yet
    panel.interval_input.value = 60
    panel.auto_refresh.value = True
    panel.token_input.value = PANEL_TOKEN
    panel.refresh_button.click()
    deadline = time.monotonic() + WAIT
    while "Next refresh in" not in panel.status_line.value and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "Next refresh in" in panel.status_line.value
    assert not panel.stop_button.disabled, "Stop cannot end auto-refresh while it waits"
    panel.stop_button.click()
    assert panel.wait(timeout=2.0)
    assert panel.controller.state == "stopped" and not panel.auto_refresh.value
    assert panel.stop_button.disabled and not panel.refresh_button.disabled


# -- display ----------------------------------------------------------------------------------


def test_panel_displays_as_a_widget_with_a_short_text_form(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox)
    bundle = panel._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id
    assert bundle["text/plain"].startswith("JobsPanel(40 job ids, http://127.0.0.1:")


def test_panel_is_exported_from_the_package():
    assert "JobsPanel" in ij.__all__ and ij.JobsPanel is not None


# -- ticket state -----------------------------------------------------------------------------


def _header(html_table):
    return html_table.split("<thead>")[1].split("</thead>")[0]


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
    panel.status_filter.value = "success"
    header = _header(panel.table_html.value)
    assert ">ticket_id</th>" in header and ">ticket_state</th>" in header
    assert header.index(">attempts</th>") < header.index(">ticket_id</th>")
    assert table_rows(panel) == len(tickets)
    body = panel.table_html.value.split("<tbody>")[1]
    for resource_id, ticket_id in tickets.items():
        row = next(r for r in body.split("</tr>") if f">{resource_id}</td>" in r)
        assert f'<td style="{_CELL}">{ticket_id}</td>' in row
        assert f'<td style="{_CELL}">submitted</td>' in row
    panel.status_filter.value = "failed"
    assert ">ticket_state</th>" in _header(panel.table_html.value)
    assert "submitted" not in panel.table_html.value  # failed jobs have no ticket


def test_table_has_no_ticket_columns_for_a_frame_of_jobs_alone(panel_sandbox, panel_of):
    panel = panel_of(panel_sandbox, job_ids=panel_sandbox.job_ids[:5])
    click_refresh(panel)
    header = _header(panel.table_html.value)
    assert ">ticket_id</th>" not in header and ">ticket_state</th>" not in header
    assert header.count("<th") == len(TABLE_COLUMNS)


def test_stop_ends_a_slow_fetch_and_keeps_the_rows_so_far():
    with ij.Sandbox(jobs=300, latency=0.05, pending_share=0.0) as sb:
        panel = ij.JobsPanel(sb.job_ids, base_url=sb.base_url, token=sb.token, max_workers=2)
        assert panel.stop_button.disabled  # nothing to stop yet
        panel.refresh_button.click()
        deadline = time.monotonic() + 30
        while panel.progress.value < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not panel.stop_button.disabled
        panel.stop()
        assert panel.wait(timeout=30), "the fetch did not stop"
        asked = sb.stats["requests"]
    assert panel.df is not None and 0 < len(panel.df) < 300
    assert "Stopped" in panel.status_line.value
    assert not panel.busy and not panel.refresh_button.disabled and panel.stop_button.disabled
    assert asked < 300
