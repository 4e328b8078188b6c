"""The JobsPanel's controller, without widgets: runs in the calling thread (``block=True``)
and what it says at each step. Runs whose network is the point (a rejected token, an
unreachable host, Stop cutting requests, the rate limit) go to a real sandbox; the table's view
(paging, sorting, filters, find, export) to a `MockIntercom`, with no socket."""

from __future__ import annotations

import socket
import time

import pytest
from mock_intercom import MockIntercom, made_jobs

import intercom_jobs_nb as ij
from intercom_jobs_nb import _errors as E
from intercom_jobs_nb._panel_controller import ALL, NO_VALUE, PanelController, explain
from intercom_jobs_nb._panel_render import status_html
from intercom_jobs_nb._panel_table import MAX_WINDOW
from intercom_jobs_nb._progress import SHOW_WAIT
from intercom_jobs_nb.sandbox import Sandbox

TOKEN = "ctl-s3cret-Tok3n-0123456789"


def controller(sb, job_ids=None, **kwargs):
    kwargs.setdefault("base_url", sb.base_url)
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("timeout", 5.0)
    return PanelController(sb.job_ids if job_ids is None else job_ids, **kwargs)


class Recorder:
    """Every status the controller showed, rendered as the view would."""

    def __init__(self, c: PanelController) -> None:
        self.c = c
        self.states: list[str] = []
        self.shown: list[str] = []
        self.snapshots: list = []
        c.on_change(self)

    def __call__(self, what: str) -> None:
        c = self.c
        if what == "status":
            self.states.append(c.state)
            self.shown.append(status_html(c.state, c.message, detail=c.detail, snapshot=c.snapshot))
        elif what == "progress":
            self.snapshots.append(c.snapshot)


@pytest.fixture
def fetched():
    """A controller that fetched 1,000 jobs (a tenth failed, a fifth pending) and 999999, which
    is not found, from a `MockIntercom`."""
    jobs = made_jobs(1000)
    transport = ij.MockTransport(MockIntercom(jobs))
    c = PanelController([*jobs, "999999"], token=TOKEN, retries=0, transport=transport)
    assert c.refresh(block=True)
    assert c.state == "finished", c.message
    return c


# -- the status -------------------------------------------------------------------------------


def test_without_a_token_the_status_says_so_and_nothing_else():
    with Sandbox(jobs=5, token=TOKEN) as sb:
        c = controller(sb)
        assert (c.state, c.message) == ("no_token", "No token: paste one, or set INTERCOM_TOKEN.")
        assert not c.refresh(block=True)
        assert c.state == "no_token" and "Ready" not in c.message
        assert sb.stats["requests"] == 0
        c.token_typing(True)  # something typed into the Token field
        assert c.state == "ready" and c.message == "Ready: 5 job ids; click Refresh."


def test_a_rejected_token_is_a_sentence_with_details_and_no_stale_progress():
    with Sandbox(jobs=200, seed=1, token=TOKEN) as sb:
        c = controller(sb, token="wrong-token-0123456789")
        seen = Recorder(c)
        assert c.refresh(block=True)
    assert c.state == "error"
    assert c.message.startswith("Intercom did not accept the access token.")
    assert "last refresh" not in c.message and "kept" not in c.message  # there were none
    assert "401" in c.detail and "Traceback" not in c.detail
    final = seen.shown[-1]
    assert "<details" in final and "<summary" in final
    assert "Fetching" not in final and "0/200" not in final
    assert "wrong-token-0123456789" not in "".join(seen.shown)
    assert c.df is None


def test_an_error_is_cleared_when_the_next_refresh_starts():
    with Sandbox(jobs=30, seed=1, token=TOKEN) as sb:
        c = controller(sb, token="wrong-token-0123456789")
        c.refresh(block=True)
        assert c.state == "error"
        c.use_token(TOKEN)
        seen = Recorder(c)
        c.refresh(block=True)
    assert seen.states[0] == "running"  # the first thing the next refresh shows
    assert seen.states[-1] == "finished" and c.detail is None
    assert "did not accept" not in seen.shown[-1]


def test_an_unreachable_host_is_a_sentence_not_an_exception():
    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    c = PanelController(["1001", "1002", "1003"], base_url=base_url, token=TOKEN, retries=0)
    seen = Recorder(c)
    c.refresh(block=True)
    assert c.state == "error"
    assert c.message.startswith(f"Could not reach Intercom at {base_url}.")
    assert "connection" in c.detail.lower()
    assert "requests." not in c.message and "Errno" not in c.message  # the raw text: details
    assert "last refresh" not in c.message
    assert "Fetching" not in seen.shown[-1]


def test_unreachable_on_a_later_refresh_keeps_the_results_and_says_so():
    with Sandbox(jobs=20, seed=0, pending_share=0.5, pending_seconds=(1e9, 1e9)) as sb:
        c = controller(sb, token=sb.token)
        c.refresh(block=True)
        before = c.df
        sb.stop()
        c.refresh(block=True)
    assert c.state == "error" and c.df is before
    assert c.message.endswith("The results below are from the last refresh.")


@pytest.mark.parametrize(
    ("exc", "start"),
    [
        (E.AuthenticationError("401"), "Intercom did not accept the access token."),
        (E.ApiVersionError("bad version"), "Intercom did not accept the API version '9.9'"),
        (E.UnreachableError("no answer"), "Could not reach Intercom at https://x.test."),
        (E.CheckpointError("disk full"), "Could not save the results to the checkpoint file"),
        (E.RunFailedError("boom"), "The fetch stopped on an unexpected error."),
        (E.FetchInterrupted(), "Stopped."),
        (E.ConfigurationError("timeout must be positive"), "A setting is not valid: timeout"),
        (RuntimeError("boom"), "The fetch stopped on an unexpected error."),
    ],
)
def test_every_run_ending_error_has_a_plain_sentence(exc, start):
    text, detail = explain(exc, where="https://x.test", api_version="9.9")
    assert text.startswith(start)
    assert detail.startswith(type(exc).__name__)


def test_status_while_running_shows_the_progress():
    with Sandbox(jobs=60, seed=0, latency=0.01, token=TOKEN) as sb:
        c = controller(sb, token=TOKEN, max_workers=2)
        seen = Recorder(c)
        c.refresh(block=True)
    shown = zip(seen.states, seen.shown, strict=True)
    running = [html for state, html in shown if state == "running"]
    assert any("/60 jobs" in html for html in running)
    assert c.snapshot is None  # once finished, no figures of a run that ended


# -- stop -------------------------------------------------------------------------------------


def test_stop_ends_the_run_within_about_a_second_and_keeps_the_rows():
    with Sandbox(jobs=300, latency=0.05, pending_share=0.0, token=TOKEN) as sb:
        c = controller(sb, token=TOKEN, max_workers=2)
        asked_at: list[float] = []

        def stop_after_some(what):
            if what == "progress" and c.snapshot.done >= 10 and not asked_at:
                asked_at.append(time.monotonic())
                c.stop()

        c.on_change(stop_after_some)
        c.refresh(block=True)
        ended = time.monotonic()
        asked = sb.stats["requests"]
    assert asked_at, "no progress arrived"
    assert ended - asked_at[0] < 3  # "within a second", generously
    assert c.state == "stopped" and c.message.startswith("Stopped: ")
    assert "Refresh asks the rest" in c.message
    assert 0 < len(c.df) < 300 and asked < 300
    assert not c.running and not c.busy


def test_stop_says_stopped_and_frees_refresh_before_drawing_the_rows():
    """Seen from a page, drawing the rows (the chart) takes a while: the status and the
    Refresh button come first, and a click on Refresh at once is not lost."""
    with Sandbox(jobs=40, pending_share=0.5, token=TOKEN) as sb:
        c = controller(sb, token=TOKEN, max_workers=4, timeout=60.0)
        assert c.refresh(block=True) and c.state == "finished"
        sb.latency = 30.0  # a fetch that would take minutes
        events: list[tuple[str, str, bool]] = []
        c.on_change(lambda what: events.append((what, c.state, c.busy)))
        asked = sb.stats["requests"]
        assert c.refresh()
        deadline = time.monotonic() + 10
        while sb.stats["requests"] < asked + 4 and time.monotonic() < deadline:
            time.sleep(0.02)  # until the four workers wait for their answers
        clicked = time.monotonic()
        c.stop()
        while c.state != "stopped" and time.monotonic() < clicked + 10:
            time.sleep(0.005)
        said = time.monotonic() - clicked
        assert c.wait(timeout=10)
        sb.latency = 0.0
        assert c.refresh(), "a Refresh right after Stop was lost"
        assert c.wait(timeout=30)
    assert said < 1.0, f"stopped said after {said:.2f} s"
    after = events[[e[1] for e in events].index("stopped") :]
    names = [what for what, _, _ in after]
    assert names[:2] == ["status", "busy"] and after[1][2] is False, after
    assert names.index("results") > names.index("busy")
    assert c.state == "finished" and c.refreshes == 2


# -- the table's view -------------------------------------------------------------------------


def test_windows_reach_every_row_and_never_send_more_than_the_bound(fetched):
    c = fetched
    assert c.table.label() == "1,001 rows"
    seen = {}
    for start in range(0, 1001, 150):  # the last window is moved back to end with the view
        part = c.table.window(start, 150)
        assert len(part.rows) == 150 and part.start == min(start, 1001 - 150)
        seen.update({part.start + k: row[0] for k, row in enumerate(part.rows)})
    assert [seen[k] for k in range(1001)] == c.table.view()["job_id"].tolist()
    assert len(c.table.window(0, 10**6).rows) == MAX_WINDOW  # the bound, whatever is asked
    last = c.table.window(5000, 10)  # past the end: the last rows
    assert last.start == 991 and last.rows[-1][0] == c.table.view()["job_id"].iloc[-1]
    assert len(last.outcomes) == 10 and set(last.outcomes) <= {
        "success",
        "failed",
        "pending",
        "error",
    }


def test_a_header_click_sorts_and_a_second_reverses(fetched):
    t = fetched.table
    t.sort("job_id")
    ids = [int(i) for i in t.view()["job_id"]]
    assert (t.sort_by, t.ascending) == ("job_id", True) and ids == sorted(ids)
    t.sort("job_id")
    assert not t.ascending and [int(i) for i in t.view()["job_id"]] == sorted(ids, reverse=True)
    t.sort("status")  # another column: ascending again
    assert (t.sort_by, t.ascending) == ("status", True)


def test_default_order_is_failed_and_unreadable_first(fetched):
    outcome = fetched.table.view()["status"].astype(object).fillna("error").tolist()
    assert outcome[0] == "error"  # 999999 is not found
    assert outcome[1 : 1 + outcome.count("failed")] == ["failed"] * outcome.count("failed")


@pytest.mark.parametrize("column", ["job_id", "status", "resource_id", "attempts", "error_code"])
def test_sort_by_any_column_both_ways(fetched, column):
    c = fetched
    c.table.set_sort(column, ascending=True)
    values = c.table.view()[column]
    present = values.dropna().astype(object).tolist()
    key = (lambda v: int(v)) if column in ("job_id", "resource_id", "attempts") else str
    assert [key(v) for v in present] == sorted(key(v) for v in present)
    assert values.isna().sum() == 0 or values.iloc[-1:].isna().all()  # empty ones last
    c.table.set_sort(column, ascending=False)
    present = c.table.view()[column].dropna().astype(object).tolist()
    assert [key(v) for v in present] == sorted((key(v) for v in present), reverse=True)


def test_sort_by_an_unknown_column_is_refused(fetched):
    with pytest.raises(E.ConfigurationError):
        fetched.table.set_sort("nope")


def test_filter_choices_come_from_the_data_with_counts(fetched):
    c = fetched
    status = dict((v, label) for label, v in c.table.filter_choices("status"))
    n_failed = int((c.df["status"] == "failed").sum())
    assert status[ALL] == "all (1,001)"
    assert status["failed"] == f"failed ({n_failed})"
    assert status[NO_VALUE] == "unreadable (1)"
    codes = dict((v, label) for label, v in c.table.filter_choices("error_code"))
    assert codes["job_not_found"] == "job_not_found (1)"
    assert codes[NO_VALUE] == "no error (1,000)"


def test_filters_by_status_and_by_error_code(fetched):
    c = fetched
    c.table.set_filters(status="failed")
    assert set(c.table.view()["status"].astype(object)) == {"failed"}
    assert c.table.label().endswith("rows (filtered from 1,001)")
    c.table.set_filters(status=ALL, code="job_not_found")
    assert c.table.view()["job_id"].tolist() == ["999999"]
    assert c.table.label() == "1 row (filtered from 1,001)"
    c.table.set_filters(status=NO_VALUE, code=ALL)
    assert c.table.view()["job_id"].tolist() == ["999999"]
    c.table.set_filters(status="success", code="job_not_found")
    assert len(c.table.view()) == 0 and c.table.label().startswith("no rows")


def test_find_gives_the_row_of_the_id_and_its_note_goes_when_the_view_hides_it(fetched):
    c = fetched
    c.table.set_sort("job_id", ascending=True)
    target = c.table.view()["job_id"].iloc[650]
    assert c.table.find(target)
    assert c.table.found == target and c.table.found_row == 650
    assert c.table.window(c.table.found_row, 1).rows[0][0] == target
    assert c.table.find_note.text == f"{target}: row 651 of 1,001."
    c.table.set_sort("job_id", ascending=False)  # still shown: the note follows its row
    assert c.table.found_row == 350 and c.table.find_note.text == f"{target}: row 351 of 1,001."
    status = c.df.loc[c.df["job_id"] == target, "status"].iloc[0]
    other = "failed" if status != "failed" else "success"
    c.table.set_filters(status=other)  # hidden now: no found row, no note
    assert c.table.found is None and c.table.found_row is None and c.table.find_note.text == ""
    c.table.set_filters(status=ALL)
    assert not c.table.find("no-such-job")
    assert c.table.find_note == ("no-such-job: not found.", "error") and c.table.found is None
    c.table.set_filters(status="success")
    failed = c.df.loc[c.df["status"] == "failed", "job_id"].iloc[0]
    assert not c.table.find(failed)
    assert "hidden by the filters" in c.table.find_note.text


def test_the_widths_fit_the_longest_text_within_bounds(fetched):
    t = fetched.table
    widths = dict(zip(t.columns, t.widths(), strict=True))
    assert widths["job_id"] == max(len("job_id"), 6) + 2
    assert min(widths.values()) >= 4 and max(widths.values()) <= 48


def test_export_writes_every_page_of_the_view(fetched, tmp_path):
    c = fetched
    c.table.set_filters(status="pending")
    path = c.export(tmp_path / "pending.csv")
    assert path == tmp_path / "pending.csv"
    assert c.export_note.text == f"Saved {len(c.table.view()):,} rows (filtered) to {path}"
    import pandas as pd

    written = pd.read_csv(path, dtype=str)
    assert written["job_id"].tolist() == c.table.view()["job_id"].tolist()


# -- ids --------------------------------------------------------------------------------------


def test_uploaded_ids_are_kept_exactly_an_id_with_a_space_is_one_job():
    with Sandbox(jobs=3, seed=0, pending_share=0.0, token=TOKEN) as sb:
        c = controller(sb, [], token=TOKEN)
        content = f"job_id\n{sb.job_ids[0]}\nabc def\n{sb.job_ids[1]}\n".encode()
        c.upload([{"name": "ids.csv", "content": memoryview(content)}])
        assert c.ids == [sb.job_ids[0], "abc def", sb.job_ids[1]]
        assert c.ids_input.upload_note.text == "Read 3 job ids from ids.csv."
        assert c.ids_input.upload_count == 3
        c.set_ids_text(c.ids_input.text)  # the view echoing the text box back changes nothing
        assert c.ids == [sb.job_ids[0], "abc def", sb.job_ids[1]]
        c.refresh(block=True)
        assert c.df["job_id"].tolist() == [sb.job_ids[0], "abc def", sb.job_ids[1]]
        assert c.df["error_code"].iloc[1] == "invalid_job_id"
        assert sb.stats["requests"] == 2  # the invalid id is never sent
        c.set_ids_text("1001 1002")  # typed by the user: the text box's ids from now on
        assert c.ids == ["1001", "1002"]


def test_an_upload_that_is_not_ids_is_a_note_beside_upload():
    c = PanelController(["1001"], base_url="http://127.0.0.1:9", token=TOKEN)
    c.upload([{"name": "ids.xlsx", "content": b"PK"}])
    assert (
        c.ids_input.upload_note.kind == "error" and ".csv or .txt" in c.ids_input.upload_note.text
    )
    assert c.ids == ["1001"] and c.state == "ready"


def test_base_url_is_where_requests_go():
    c = PanelController(["1001"], region="eu", base_url="http://127.0.0.1:9", token=TOKEN)
    assert c.where == "http://127.0.0.1:9"
    assert PanelController(["1001"], region="eu", token=TOKEN).where == "https://api.eu.intercom.io"


# -- what it is waiting for -------------------------------------------------------------------


def test_the_status_says_when_the_rate_limit_holds_requests_back():
    with Sandbox(jobs=100, seed=0, rate_limit=20, window=2, pending_share=0.0, token=TOKEN) as sb:
        c = controller(sb, token=TOKEN, max_workers=4)
        seen = Recorder(c)

        def stop_once_waiting(what):
            if what == "status" and c.snapshot is not None and c.snapshot.waiting >= SHOW_WAIT:
                c.stop()

        c.on_change(stop_once_waiting)
        c.refresh(block=True)
    waiting = [s for s in seen.snapshots if s.waiting > 0]
    assert waiting, "no progress snapshot said the rate limit was holding requests back"
    assert any("for the rate-limit window" in html for html in seen.shown)
    assert any("left in the window" in html for html in seen.shown)


# -- budget_share: the panel spends what it is given of each rate-limit window ------------------


def test_the_panel_keeps_to_its_budget_share_of_each_window():
    with Sandbox(jobs=60, pending_share=0.0, rate_limit=20, window=1) as sb:
        c = controller(sb, token=sb.token, budget_share=0.5)
        assert c.refresh(block=True) and c.state == "finished", c.message
        served = [w["served"] for w in sb.stats["windows"]][1:-1]  # the full windows
    assert len(c.df) == 60 and c.df["status"].notna().all()
    assert served and max(served) <= 10  # half of 20 a window


def test_auto_refresh_asks_fewer_than_every_pending_job_each_round():
    """Auto-refresh's rounds follow the adaptive schedule (the waits' one): jobs finishing as
    a queue are asked about once each, not every round as the fixed schedule would."""
    from intercom_jobs_nb.sandbox import Queue

    with Sandbox(jobs=1000, pending_share=0.0, completion=Queue(rate=200, jitter=0.05)) as sb:
        c = controller(sb, token=sb.token)
        assert c.refresh(block=True) and c.state == "finished", c.message
        # What the fixed schedule would ask: every job pending when a round starts.
        pending_at_start: list[int] = [int((c.df["status"] == "pending").sum())]
        c.on_change(
            lambda what: (
                what == "results"
                and pending_at_start.append(int((c.df["status"] == "pending").sum()))
            )
        )
        asked_first = sum(sb.stats["per_job"].values())
        c.runner.interval = 0.5
        c.set_auto(True)
        assert c.wait(timeout=60) and not c.auto
        asked = sum(sb.stats["per_job"].values()) - asked_first
    assert (c.df["status"] != "pending").all()  # every job seen final
    fixed = sum(pending_at_start[:-1])  # each round's pending jobs (the last round has none)
    assert len(pending_at_start) >= 4, pending_at_start  # rounds enough to compare
    assert asked <= 0.75 * fixed, (asked, fixed, pending_at_start)


def test_a_click_on_refresh_asks_every_job_not_final():
    from intercom_jobs_nb.sandbox import Queue

    with Sandbox(jobs=200, pending_share=0.0, completion=Queue(rate=5, jitter=0.0)) as sb:
        c = controller(sb, token=sb.token)
        assert c.refresh(block=True)
        pending = int((c.df["status"] == "pending").sum())
        before = sum(sb.stats["per_job"].values())
        assert c.refresh(block=True)
        assert sum(sb.stats["per_job"].values()) - before == pending
