"""wait_for_jobs and refresh: only what may change is asked again."""

from __future__ import annotations

import pandas as pd
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb.sandbox import Sandbox


@pytest.fixture
def settling_sandbox():
    """30 jobs; half pending for 0.3-1.0 s after start, then final."""
    with Sandbox(jobs=30, seed=3, pending_share=0.5, pending_seconds=(0.3, 1.0)) as sb:
        yield sb


def test_wait_polls_until_every_job_is_final(settling_sandbox, opts):
    df = ij.wait_for_jobs(settling_sandbox.job_ids, poll_interval=0.2, **opts(settling_sandbox))
    assert df["status"].isin(["success", "failed"]).all()
    assert df.attrs["timed_out"] is False
    assert df["job_id"].tolist() == settling_sandbox.job_ids


def test_wait_never_asks_again_for_a_final_job(settling_sandbox, opts):
    first = ij.fetch_jobs(settling_sandbox.job_ids, **opts(settling_sandbox))
    final_at_start = set(first.loc[first["status"] != "pending", "job_id"])
    settling_sandbox.reset_stats()
    ij.wait_for_jobs(settling_sandbox.job_ids, poll_interval=0.2, **opts(settling_sandbox))
    per_job = settling_sandbox.stats["per_job"]
    assert all(per_job[job_id] == 1 for job_id in final_at_start)
    assert max(per_job.values()) >= 2  # the pending ones were polled


def test_wait_times_out_with_pending_jobs_marked(mixed_sandbox, opts):
    df = ij.wait_for_jobs(
        mixed_sandbox.job_ids, poll_interval=0.1, timeout=0.5, **opts(mixed_sandbox)
    )
    assert df.attrs["timed_out"] is True
    assert (df["status"] == "pending").sum() > 0
    assert len(df) == len(mixed_sandbox.job_ids)


def test_wait_accepts_an_earlier_result_and_keeps_its_final_rows(settling_sandbox, opts):
    first = ij.fetch_jobs(settling_sandbox.job_ids, **opts(settling_sandbox))
    settling_sandbox.reset_stats()
    done = ij.wait_for_jobs(first, poll_interval=0.2, **opts(settling_sandbox))
    asked = set(settling_sandbox.stats["per_job"])
    assert asked == set(first.loc[first["status"] == "pending", "job_id"])
    assert done["status"].isin(["success", "failed"]).all()


def test_refresh_asks_again_only_pending_and_passing_failures(mixed_sandbox, opts):
    ids = mixed_sandbox.job_ids
    mixed_sandbox.inject(ids[0], "drop", "drop")
    first = ij.fetch_jobs([*ids, "404404", "bad id"], **opts(mixed_sandbox, retries=1))
    assert first.iloc[0]["error_code"] == "connection_error"
    mixed_sandbox.reset_stats()
    again = ij.refresh(first, **opts(mixed_sandbox))
    expected = set(first.loc[first["status"] == "pending", "job_id"]) | {ids[0]}
    assert set(mixed_sandbox.stats["per_job"]) == expected
    assert pd.isna(again.iloc[0]["error_code"])  # the passing failure is mended
    final = first["status"].isin(["success", "failed"]) | first["job_id"].isin(["404404", "bad id"])
    pd.testing.assert_frame_equal(
        again[final.to_numpy()].reset_index(drop=True),
        first[final].reset_index(drop=True),
        check_categorical=False,
    )


def test_refresh_keeps_your_own_columns(mixed_sandbox, opts):
    mine = pd.DataFrame({"job_id": mixed_sandbox.job_ids[:5], "order": list("abcde")})
    again = ij.refresh(ij.fetch_jobs(mine, **opts(mixed_sandbox)), **opts(mixed_sandbox))
    assert again["order"].tolist() == list("abcde")


def test_refresh_refuses_something_without_job_ids(opts, mixed_sandbox):
    for thing in (pd.DataFrame({"id": ["1"]}), ["1", "2"]):
        with pytest.raises(ij.ConfigurationError, match="job_id column"):
            ij.refresh(thing, **opts(mixed_sandbox))
    assert mixed_sandbox.stats["requests"] == 0


def test_wait_progress_counts_final_jobs(settling_sandbox, opts):
    seen: list[ij.Snapshot] = []
    ij.wait_for_jobs(
        settling_sandbox.job_ids, poll_interval=0.2, **opts(settling_sandbox, progress=seen.append)
    )
    assert seen[-1].done == seen[-1].total == 30 and seen[-1].pending == 0
    assert any(s.done < 30 and s.pending > 0 for s in seen)


def test_refresh_never_sends_an_id_edited_into_something_unsafe(mixed_sandbox, opts):
    df = ij.fetch_jobs(mixed_sandbox.job_ids[:3], **opts(mixed_sandbox))
    df["job_id"] = df["job_id"].astype(object)
    df.loc[0, "job_id"] = "../admins"
    df.loc[0, "status"] = "pending"
    df.loc[0, "final"] = False
    mixed_sandbox.reset_stats()
    again = ij.refresh(df, **opts(mixed_sandbox))
    assert again.iloc[0]["error_code"] == "invalid_job_id"
    assert "../admins" not in "".join(mixed_sandbox.stats["per_job"])
