"""summarize, failures, join_jobs and export_csv on real results."""

from __future__ import annotations

import pandas as pd
import pytest

import intercom_jobs_nb as ij


@pytest.fixture
def results(mixed_sandbox, opts):
    """A jobs DataFrame with pending, success, failed, not-found and invalid rows."""
    return ij.fetch_jobs([*mixed_sandbox.job_ids, "404404", "bad/id"], **opts(mixed_sandbox))


def test_summarize_counts_and_shares_by_status_type_and_error(results):
    summary = ij.summarize(results)
    status = summary.loc["status"]
    assert status["count"].sum() == len(results)
    assert status.loc["(none)", "count"] == 2
    for by in ("status", "resource_type", "error_code"):
        assert summary.loc[by, "share"].sum() == pytest.approx(1.0, abs=1e-3)
    errors = summary.loc["error_code"]
    assert errors.loc["job_not_found", "count"] == 1 and errors.loc["invalid_job_id", "count"] == 1
    expected = results["status"].value_counts()
    for status_name in ("pending", "success", "failed"):
        assert status.loc[status_name, "count"] == expected[status_name]


def test_summarize_lists_every_status_even_when_absent(final_sandbox, opts):
    df = ij.fetch_jobs(final_sandbox.job_ids[:3], **opts(final_sandbox))
    assert "pending" in ij.summarize(df).loc["status"].index


def test_summarize_shows_shares_as_percentages_but_keeps_fractions_for_code(results):
    summary = ij.summarize(results)
    share = summary.loc[("status", "success"), "share"]
    assert 0 < share < 1  # a fraction, to compute with
    shown = f"{share:.1%}"
    assert shown in repr(summary) and shown in summary._repr_html_()
    assert str(share) not in repr(summary)  # never the raw fraction on screen
    count = int(summary.loc[("status", "success"), "count"])
    big = ij.summarize(pd.concat([results] * 10, ignore_index=True))  # counts past 1,000
    assert f"{count * 10:,}" in repr(big)
    # What is derived from it is a plain DataFrame, with plain numbers.
    assert type(summary.loc["status"]) is pd.DataFrame
    assert type(summary.reset_index()) is pd.DataFrame


def test_the_cli_prints_the_summary_a_notebook_shows(results, capsys):
    from intercom_jobs_nb._cli import _print_summary

    _print_summary(results)
    printed = capsys.readouterr().err
    summary = ij.summarize(results)
    assert printed.strip() == repr(summary).strip()


def test_failures_are_failed_jobs_and_unreadable_ones(results):
    bad = ij.failures(results)
    assert set(bad["job_id"]) >= {"404404", "bad/id"}
    assert ((bad["status"] == "failed") | bad["error_code"].notna()).all()
    assert len(bad) == (results["status"] == "failed").sum() + 2


def test_each_failure_has_a_reason_a_person_can_act_on(results):
    bad = ij.failures(results).set_index("job_id")
    assert bad["reason"].notna().all() and (bad["reason"].str.len() > 0).all()
    # Intercom's own message where there is one.
    assert bad.loc["404404", "reason"] == bad.loc["404404", "error_message"]
    assert "bad/id" in bad.loc["bad/id", "reason"]
    # A failed job Intercom gave no reason for says so, and where to look.
    silent = bad[(bad["status"] == "failed") & bad["error_message"].isna()]
    assert len(silent)
    assert (
        silent["reason"].str.startswith("Intercom marked the job failed and gave no reason").all()
    )
    assert silent["reason"].str.contains("ticket type").all()


def test_a_failure_that_may_pass_says_refresh_asks_again():
    frame = pd.DataFrame(
        {
            "job_id": ["1", "2"],
            "status": pd.array([None, "failed"], dtype="string"),
            "error_code": ["timeout", None],
            "error_message": ["no answer within 10 s", None],
            "final": [False, True],
            "ticket_type_id": ["88", "88"],
        }
    )
    bad = ij.failures(frame).set_index("job_id")
    assert (
        bad.loc["1", "reason"] == "no answer within 10 s; this may pass: ij.refresh(df) asks again"
    )
    assert bad.loc["2", "reason"].endswith("(ticket type 88)")


def test_failures_of_an_enqueue_frame_include_the_rows_intercom_refused():
    frame = pd.DataFrame(
        {
            "key": ["a", "b"],
            "job_id": [None, "7"],
            "status": pd.array([None, "success"], dtype="string"),
            "error_code": [None, None],
            "error_message": [None, None],
            "final": [True, True],
            "enqueue_error_code": ["parameter_invalid", None],
            "enqueue_error_message": ["Ticket type not found", None],
        }
    )
    bad = ij.failures(frame)
    assert bad["key"].tolist() == ["a"]
    assert bad["reason"].tolist() == ["Intercom refused to enqueue the row: Ticket type not found"]


def test_join_jobs_matches_int_ids_to_string_ids(results, mixed_sandbox):
    orders = pd.DataFrame(
        {
            "order": ["A", "B"],
            "job_id": [int(mixed_sandbox.job_ids[0]), int(mixed_sandbox.job_ids[1])],
        }
    )
    joined = ij.join_jobs(orders, results)
    assert joined["order"].tolist() == ["A", "B"]
    assert joined["status"].notna().all() and len(joined) == 2
    assert joined["job_id"].tolist() == orders["job_id"].tolist()


def test_export_csv_writes_every_row_and_returns_the_path(results, tmp_path):
    path = ij.export_csv(results, tmp_path / "jobs.csv")
    assert path == (tmp_path / "jobs.csv").resolve()
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["job_id"].tolist() == results["job_id"].tolist()
    assert list(back.columns) == list(results.columns)


def test_export_csv_into_a_missing_folder_is_a_clear_error(results, tmp_path):
    with pytest.raises(ij.ConfigurationError, match="no such folder"):
        ij.export_csv(results, tmp_path / "nope" / "jobs.csv")


def test_a_failed_export_leaves_the_previous_file_intact(results, tmp_path, monkeypatch):
    path = tmp_path / "jobs.csv"
    path.write_text("precious\n")

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", explode)
    with pytest.raises(OSError, match="disk full"):
        ij.export_csv(results, path)
    assert path.read_text() == "precious\n"
    assert [p.name for p in tmp_path.iterdir()] == ["jobs.csv"]


def test_export_csv_gives_the_file_the_usual_permissions(results, tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    os.umask(mask)
    path = ij.export_csv(results, tmp_path / "jobs.csv")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


# -- export_csv: spreadsheet formulas in Intercom's text are written inert ----------------------

FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r"]
INTERCOM_TEXT = [
    "error_message",
    "resource_url",
    "url",
    "request_id",
    "resource_id",
    "resource_type",
]


def jobs_frame(text: str) -> pd.DataFrame:
    """A jobs-like frame: every Intercom text column (string and category dtypes) holds
    ``text``, as do ``job_id`` and the user's own columns."""
    frame = pd.DataFrame({"job_id": pd.array([text, "1002"], dtype="string")})
    for name in INTERCOM_TEXT[:-1]:
        frame[name] = pd.array([text, None], dtype="string")
    frame["resource_type"] = pd.Categorical([text, "ticket"])
    frame["customer"] = [text, text]
    frame["url_input"] = pd.array([text, text], dtype="string")
    return frame


def written_rows(path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("start", FORMULA_STARTS, ids=repr)
def test_export_csv_escapes_intercom_text_starting_with(start, tmp_path):
    text = f'{start}HYPERLINK("http://evil")'
    row = written_rows(ij.export_csv(jobs_frame(text), tmp_path / "jobs.csv"))[0]
    for name in INTERCOM_TEXT:
        assert row[name] == "'" + text, name


def test_export_csv_leaves_other_intercom_text_as_is(tmp_path):
    rows = written_rows(ij.export_csv(jobs_frame("a=1+2"), tmp_path / "jobs.csv"))
    assert rows[0]["error_message"] == "a=1+2" and rows[0]["resource_type"] == "a=1+2"
    assert rows[1]["url"] == "" and rows[1]["resource_type"] == "ticket"


def test_export_csv_never_escapes_job_id_or_the_users_columns(tmp_path):
    row = written_rows(ij.export_csv(jobs_frame("=1+2"), tmp_path / "jobs.csv"))[0]
    assert row["job_id"] == row["customer"] == row["url_input"] == "=1+2"


def test_export_csv_escapes_a_category_holding_both_the_text_and_its_escape(tmp_path):
    frame = jobs_frame("x")
    frame["resource_type"] = pd.Categorical(["=x", "'=x"])
    rows = written_rows(ij.export_csv(frame, tmp_path / "jobs.csv"))
    assert [r["resource_type"] for r in rows] == ["'=x", "'=x"]


def test_export_csv_escapes_text_in_an_object_column(tmp_path):
    frame = jobs_frame("x")
    frame["error_message"] = pd.Series(["@SUM(A1)", None], dtype=object)
    rows = written_rows(ij.export_csv(frame, tmp_path / "jobs.csv"))
    assert [r["error_message"] for r in rows] == ["'@SUM(A1)", ""]


def test_export_csv_with_escape_formulas_off_writes_the_text_as_is(tmp_path):
    frame = jobs_frame("=1+2")
    row = written_rows(ij.export_csv(frame, tmp_path / "jobs.csv", escape_formulas=False))[0]
    assert all(row[name] == "=1+2" for name in INTERCOM_TEXT)


def test_export_csv_does_not_change_the_callers_frame(tmp_path):
    frame = jobs_frame("=1+2")
    before = frame.copy(deep=True)
    ij.export_csv(frame, tmp_path / "jobs.csv")
    pd.testing.assert_frame_equal(frame, before)
    categories = frame["resource_type"].cat.categories
    assert categories.tolist() == before["resource_type"].cat.categories.tolist()
