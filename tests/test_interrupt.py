"""Ctrl-C: a real SIGINT stops a run within about a second and loses nothing fetched."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb._checkpoint import Checkpoint
from intercom_jobs_nb.sandbox import Sandbox


@pytest.fixture
def slow_sandbox():
    """400 final jobs answered after 50 ms each: a run long enough to interrupt."""
    with Sandbox(jobs=400, pending_share=0.0, latency=0.05) as sb:
        yield sb


def saved_rows(path) -> int:
    """The rows committed to the checkpoint, read without changing the file (read-only, as
    ``_parquet.py`` reads one). A read-write connection closed last would fold a killed run's
    ``-wal`` into the file and delete it; the rerun would then find a file whose run did not
    end and whose ``-wal`` is missing, which it refuses. (Python 3.10 closes such a connection
    at once; 3.11 and later when the garbage collector gets to it, so only now and then.)"""
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return 0  # not made yet
    try:
        return db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def test_sigint_stops_a_run_promptly_with_the_rows_so_far(slow_sandbox, opts, tmp_path):
    path = tmp_path / "jobs.sqlite"
    sent_at: list[float] = []

    def interrupt():
        sent_at.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threads_before = set(threading.enumerate())
    timer = threading.Timer(0.6, interrupt)
    timer.start()
    with pytest.raises(ij.FetchInterrupted) as caught:
        ij.fetch_jobs(slow_sandbox.job_ids, checkpoint=path, **opts(slow_sandbox, max_workers=4))
    assert sent_at  # it was the SIGINT that ended the run
    # The run stopped: every thread it started ends (a generous join, no bound on how fast).
    started = [t for t in threading.enumerate() if t not in threads_before]
    for thread in started:
        thread.join(timeout=10)
    assert not [t.name for t in started if t.is_alive()]
    partial = caught.value.df
    assert 0 < len(partial) < 400 and partial["status"].notna().all()
    # Every row taken in is on .df and in the checkpoint: the signal is taken at a row boundary
    # (a KeyboardInterrupt raised between taking a row and saving it lost it to the checkpoint).
    assert saved_rows(path) == len(partial)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C as before
    time.sleep(0.3)  # requests already in flight end; nothing new is sent after the stop
    asked = slow_sandbox.stats["requests"]
    time.sleep(0.3)
    assert slow_sandbox.stats["requests"] == asked < 400


def _checkpointed_fetch(sandbox, tmp_path):
    """``intercom-jobs fetch --checkpoint`` of every sandbox job, as a process to start (and,
    given ``saved_at_least``, to let run until the checkpoint holds that many rows)."""
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(sandbox.job_ids) + "\n")
    checkpoint = tmp_path / "jobs.sqlite"
    env = {**os.environ, "INTERCOM_TOKEN": sandbox.token, "TQDM_DISABLE": "1"}
    args = [
        "fetch",
        str(ids),
        "--base-url",
        sandbox.base_url,
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(tmp_path / "out.csv"),
        "--max-workers",
        "4",
    ]

    def start(saved_at_least: int = 0):
        process = subprocess.Popen(
            [sys.executable, "-m", "intercom_jobs_nb", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120  # generous: a loaded machine starts Python slowly
        while saved_rows(checkpoint) < saved_at_least:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                _, err = process.communicate()
                pytest.fail(f"the run never saved {saved_at_least} rows: {err}")
            time.sleep(0.05)
        return process

    return start, checkpoint


def test_sigint_to_the_cli_process_then_resume_asks_each_job_once(slow_sandbox, tmp_path):
    start, checkpoint = _checkpointed_fetch(slow_sandbox, tmp_path)
    process = start(saved_at_least=20)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)  # a generous wait: raises if it never exits
    assert process.poll() is not None  # the process exited on the signal
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    first = saved_rows(checkpoint)
    assert 20 <= first < 400

    resumed = start()
    _, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert saved_rows(checkpoint) == 400
    per_job = slow_sandbox.stats["per_job"]
    assert len(per_job) == 400
    # Each saved job was asked for once; only the requests cut off by the signal were repeated.
    assert sum(per_job.values()) <= 400 + 4
    assert (tmp_path / "out.csv").read_text().count("\n") == 401


def test_a_killed_process_keeps_its_checkpoint_and_the_rerun_finishes(slow_sandbox, tmp_path):
    start, checkpoint = _checkpointed_fetch(slow_sandbox, tmp_path)
    process = start(saved_at_least=40)
    process.kill()  # SIGKILL: no handler runs, like a kernel killed from the outside
    process.communicate(timeout=10)
    kept = saved_rows(checkpoint)
    assert kept >= 40

    rerun = start()
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert saved_rows(checkpoint) == 400
    per_job = slow_sandbox.stats["per_job"]
    # What the file held was not asked again; only what was in flight or in the last,
    # uncommitted batch was (milliseconds of work at the moment of the kill).
    assert sum(per_job.values()) - 400 <= 400 - kept
    assert sum(per_job.values()) <= 400 + 12


def test_a_stop_event_ends_a_wait_between_two_polls_at_once(mixed_sandbox):
    """The panel's Stop during the pause of an auto-refresh: the run ends then, not after the
    poll interval (30 s here; the generous bound below only tells the two apart)."""
    from intercom_jobs_nb._engine import run
    from intercom_jobs_nb._ids import read_job_ids
    from intercom_jobs_nb._options import Options

    stop = threading.Event()
    options = Options.build(
        token=mixed_sandbox.token, base_url=mixed_sandbox.base_url, progress=False
    )
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(ij.FetchInterrupted) as caught:
        run(
            read_job_ids(mixed_sandbox.job_ids),
            options,
            until_final=True,
            poll_interval=30,
            stop=stop,
        )
    assert time.monotonic() - started < 15
    assert len(caught.value.df) == 40 and not caught.value.df["final"].all()


def test_a_ctrl_c_during_a_checkpoint_write_loses_none_of_its_rows(
    slow_sandbox, opts, tmp_path, monkeypatch
):
    """SIGINT while a batch is being written: the write is rolled back, and the batch is written
    again when the run ends, so every row on ``.df`` is in the file and a resume asks none of
    them again."""
    path = tmp_path / "jobs.sqlite"
    write, calls = Checkpoint.write, []

    def cut_short(self, rows):
        rows = list(rows)
        calls.append(len(rows))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as a SIGINT arriving inside the write
        return write(self, rows)

    monkeypatch.setattr(Checkpoint, "write", cut_short)
    with pytest.raises(ij.FetchInterrupted) as caught:
        ij.fetch_jobs(slow_sandbox.job_ids, checkpoint=path, **opts(slow_sandbox, max_workers=4))
    partial = caught.value.df
    assert len(calls) > 3  # written again after the cut
    assert 0 < len(partial) < 400
    assert saved_rows(path) == len(partial)
