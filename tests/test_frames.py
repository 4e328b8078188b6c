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


def test_failures_are_failed_jobs_and_unreadable_ones(results):
    bad = ij.failures(results)
    assert set(bad["job_id"]) >= {"404404", "bad/id"}
    assert ((bad["status"] == "failed") | bad["error_code"].notna()).all()
    assert len(bad) == (results["status"] == "failed").sum() + 2


def test_join_jobs_matches_int_ids_to_string_ids(results, mixed_sandbox):
    orders = pd.DataFrame({"order": ["A", "B"], "job_id": [int(mixed_sandbox.job_ids[0]),
                                                           int(mixed_sandbox.job_ids[1])]})
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
