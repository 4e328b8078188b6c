"""Checkpoints: rows saved as they arrive, resumed runs ask only for what is not final."""

from __future__ import annotations

import sqlite3
import time

import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb import engine
from intercom_jobs_nb.checkpoint import Checkpoint
from intercom_jobs_nb.rows import Row


def test_a_resumed_run_asks_for_no_final_job(mixed_sandbox, opts, tmp_path):
    path = tmp_path / "jobs.sqlite"
    first = ij.fetch_jobs(mixed_sandbox.job_ids, checkpoint=path, **opts(mixed_sandbox))
    mixed_sandbox.reset_stats()
    second = ij.fetch_jobs(mixed_sandbox.job_ids, checkpoint=path, **opts(mixed_sandbox))
    pending = set(first.loc[first["status"] == "pending", "job_id"])
    assert set(mixed_sandbox.stats["per_job"]) == pending
    assert second["job_id"].tolist() == first["job_id"].tolist()
    assert second["status"].tolist() == first["status"].tolist()


def test_a_resumed_run_returns_the_full_table_with_saved_rows_unchanged(
    final_sandbox, opts, tmp_path
):
    path = tmp_path / "jobs.sqlite"
    first = ij.fetch_jobs(final_sandbox.job_ids, checkpoint=path, **opts(final_sandbox))
    second = ij.fetch_jobs(final_sandbox.job_ids, checkpoint=path, **opts(final_sandbox))
    assert sum(final_sandbox.stats["per_job"].values()) == len(final_sandbox.job_ids)
    assert second[["job_id", "status", "resource_id", "request_id"]].equals(
        first[["job_id", "status", "resource_id", "request_id"]]
    )
    assert (second["fetched_at"] == first["fetched_at"]).all()


def test_rows_are_saved_as_they_arrive_not_at_the_end(opts, tmp_path):
    path = tmp_path / "jobs.sqlite"
    counts: list[int] = []

    def peek(snapshot):
        with sqlite3.connect(path) as db:
            counts.append(db.execute("SELECT count(*) FROM jobs").fetchone()[0])

    with ij.Sandbox(jobs=40, latency=0.03) as sb:
        ij.fetch_jobs(sb.job_ids, checkpoint=path, **opts(sb, progress=peek, max_workers=2))
    assert any(0 < c < 40 for c in counts)
    assert Checkpoint(path, sb.base_url).frame()["job_id"].tolist() == sb.job_ids


def test_the_checkpoint_never_holds_the_token(final_sandbox, opts, tmp_path):
    path = tmp_path / "jobs.sqlite"
    ij.fetch_jobs(final_sandbox.job_ids, checkpoint=path, **opts(final_sandbox))
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert final_sandbox.token.encode() not in blob
    assert b"Bearer" not in blob


def test_a_checkpoint_from_another_host_is_refused(final_sandbox, opts, tmp_path):
    path = tmp_path / "jobs.sqlite"
    Checkpoint(path, "https://api.eu.intercom.io").close()
    with pytest.raises(ij.ConfigurationError, match="api.eu.intercom.io"):
        ij.fetch_jobs(final_sandbox.job_ids, checkpoint=path, **opts(final_sandbox))


def test_a_file_that_is_not_a_checkpoint_is_refused(final_sandbox, opts, tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("hello, not a database" * 100)
    with pytest.raises(ij.ConfigurationError, match="not a checkpoint"):
        ij.fetch_jobs(final_sandbox.job_ids, checkpoint=path, **opts(final_sandbox))
    assert path.read_text().startswith("hello")


def test_wait_with_checkpoint_resumes_without_asking_final_jobs(mixed_sandbox, opts, tmp_path):
    path = tmp_path / "jobs.sqlite"
    ij.wait_for_jobs(
        mixed_sandbox.job_ids,
        poll_interval=0.1,
        timeout=0.2,
        checkpoint=path,
        **opts(mixed_sandbox),
    )
    mixed_sandbox.finish_all()
    mixed_sandbox.reset_stats()
    df = ij.wait_for_jobs(
        mixed_sandbox.job_ids, poll_interval=0.1, checkpoint=path, **opts(mixed_sandbox)
    )
    assert df["status"].isin(["success", "failed"]).all()
    with Checkpoint(path, mixed_sandbox.base_url) as checkpoint:
        assert len([r for r in checkpoint.rows().values() if r.final]) == len(mixed_sandbox.job_ids)
    assert len(mixed_sandbox.stats["per_job"]) < len(mixed_sandbox.job_ids)


def test_an_aborted_run_keeps_what_it_saved(final_sandbox, opts, tmp_path):
    path = tmp_path / "jobs.sqlite"
    ij.fetch_jobs(final_sandbox.job_ids[:10], checkpoint=path, **opts(final_sandbox))
    with pytest.raises(ij.AuthenticationError):
        ij.fetch_jobs(
            final_sandbox.job_ids, checkpoint=path, **opts(final_sandbox, token="revoked")
        )
    with Checkpoint(path, final_sandbox.base_url) as checkpoint:
        assert len(checkpoint.frame()) == 10


def test_rows_reach_the_checkpoint_in_small_batches_even_when_workers_outpace_it(
    opts, tmp_path, monkeypatch
):

    sizes: list[int] = []
    real_write = Checkpoint.write

    def slow_write(self, rows):
        rows = list(rows)
        sizes.append(len(rows))
        time.sleep(0.05)  # a slow disk: the queue fills while this runs
        real_write(self, rows)

    monkeypatch.setattr(Checkpoint, "write", slow_write)
    with ij.Sandbox(jobs=1500, pending_share=0.0) as sb:
        ij.fetch_jobs(sb.job_ids, checkpoint=tmp_path / "jobs.sqlite", **opts(sb))
    assert sum(sizes) == 1500
    assert max(sizes) <= engine.BATCH_ROWS


def test_refresh_with_checkpoint_saves_what_it_asked_again(mixed_sandbox, opts, tmp_path):
    path = tmp_path / "jobs.sqlite"
    first = ij.fetch_jobs(mixed_sandbox.job_ids, **opts(mixed_sandbox))
    mixed_sandbox.finish_all()
    again = ij.refresh(first, checkpoint=path, **opts(mixed_sandbox))
    with Checkpoint(path, mixed_sandbox.base_url) as checkpoint:
        saved = checkpoint.frame()
    was_pending = set(first.loc[first["status"] == "pending", "job_id"])
    assert set(saved["job_id"]) == was_pending
    assert saved["status"].isin(["success", "failed"]).all()
    assert again["status"].isin(["success", "failed"]).all()


def test_a_write_cut_short_by_ctrl_c_can_be_written_again(final_sandbox, tmp_path):
    rows = [
        Row(job_id, "success", "ticket", "1", None, None, 200, None, None, None, 1, 0.0, True)
        for job_id in final_sandbox.job_ids[:3]
    ]

    def interrupted():
        yield rows[0]
        raise KeyboardInterrupt

    with Checkpoint(tmp_path / "jobs.sqlite", final_sandbox.base_url) as checkpoint:
        with pytest.raises(KeyboardInterrupt):
            checkpoint.write(interrupted())
        assert len(checkpoint.frame()) == 0  # nothing half-written
        checkpoint.write(rows)
        assert len(checkpoint.frame()) == 3
