"""Parquet export: typed round trips, atomic writes, and checkpoints converted batch by batch."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb._checkpoint import Checkpoint
from intercom_jobs_nb._ledger import Ledger
from intercom_jobs_nb._rows import REQUIRED_COLUMNS


def run_cli(*args: str, token: str) -> subprocess.CompletedProcess:
    """``python -m intercom_jobs_nb ARGS`` to its end (as tests/test_cli.py runs it)."""
    env = {k: v for k, v in os.environ.items() if k != "INTERCOM_TOKEN"}
    env.update(TQDM_DISABLE="1", INTERCOM_TOKEN=token)
    return subprocess.run(
        [sys.executable, "-m", "intercom_jobs_nb", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def frame(final_sandbox, opts):
    """A real result frame: the sandbox's jobs and two bad ids (rows with an error code)."""
    ids = [*final_sandbox.job_ids, "not/valid", "also bad"]
    return ij.fetch_jobs(ids, **opts(final_sandbox))


def test_a_frame_comes_back_equal_with_its_dtypes(frame, tmp_path):
    path = ij.export_parquet(frame, tmp_path / "jobs.parquet")
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame)
    assert back.dtypes.to_dict() == frame.dtypes.to_dict()


def test_a_write_that_fails_leaves_no_file(frame, tmp_path, monkeypatch):
    def broken(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        ij.export_parquet(frame, tmp_path / "jobs.parquet")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_refused(frame, tmp_path):
    with pytest.raises(ij.ConfigurationError, match="no such folder"):
        ij.export_parquet(frame, tmp_path / "nowhere" / "jobs.parquet")


def test_a_checkpoint_converts_in_batches_to_the_frames_parquet(mixed_sandbox, opts, tmp_path):
    checkpoint = tmp_path / "jobs.sqlite"
    df = ij.fetch_jobs(mixed_sandbox.job_ids, checkpoint=checkpoint, **opts(mixed_sandbox))
    expected = ij.export_parquet(
        df.sort_values("job_id", ignore_index=True), tmp_path / "frame.parquet"
    )
    path = ij.checkpoint_to_parquet(checkpoint, tmp_path / "checkpoint.parquet", batch_rows=7)
    assert pq.ParquetFile(path).num_row_groups == -(-len(df) // 7)
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.read_parquet(expected))


@pytest.mark.parametrize("kind", ["ledger", "text"])
def test_a_file_that_is_not_a_checkpoint_is_refused_and_unchanged(kind, tmp_path):
    other = tmp_path / "other.sqlite"
    if kind == "ledger":  # an SQLite file of this toolkit, of another kind
        Ledger(str(other), "http://127.0.0.1:1").close()
    else:
        other.write_text("job_id\n1001\n")
    before = other.read_bytes()
    with pytest.raises(ij.ConfigurationError, match="not a job-status checkpoint"):
        ij.checkpoint_to_parquet(other, tmp_path / "jobs.parquet")
    assert other.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["other.sqlite"]


def test_an_empty_checkpoint_gives_an_empty_file_of_the_columns(tmp_path):
    checkpoint = tmp_path / "jobs.sqlite"
    Checkpoint(checkpoint, "http://127.0.0.1:1").close()
    path = ij.checkpoint_to_parquet(checkpoint, tmp_path / "jobs.parquet")
    back = pd.read_parquet(path)
    assert len(back) == 0
    assert tuple(back.columns) == REQUIRED_COLUMNS


def test_the_cli_writes_parquet_for_a_parquet_out(final_sandbox, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(final_sandbox.job_ids[:5]) + "\n")
    out = tmp_path / "jobs.parquet"
    done = run_cli(
        "fetch", str(ids), "--out", str(out), "--base-url", final_sandbox.base_url,
        token=final_sandbox.token,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    back = pd.read_parquet(out)
    assert back["job_id"].tolist() == final_sandbox.job_ids[:5]
    assert isinstance(back["status"].dtype, pd.CategoricalDtype)


def test_a_category_without_any_value_reads_back_as_a_category(tmp_path, final_sandbox, opts):
    """Every row a success: error_code has no value, and is still a category once read back."""
    df = ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox))
    ok = df[df["status"] == "success"].reset_index(drop=True)
    assert ok["error_code"].isna().all()
    back = pd.read_parquet(ij.export_parquet(ok, tmp_path / "ok.parquet"))
    assert isinstance(back["error_code"].dtype, pd.CategoricalDtype)
    assert str(back["fetched_at"].dtype) == "datetime64[ns, UTC]"
