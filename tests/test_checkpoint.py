"""Checkpoints: rows saved as they arrive, resumed runs ask only for what is not final."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb import _engine as engine
from intercom_jobs_nb._checkpoint import SCHEMA_VERSION, Checkpoint
from intercom_jobs_nb._rows import job_row


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
        job_row(
            job_id,
            "success",
            resource_type="ticket",
            resource_id="1",
            resource_url=None,
            url=None,
            request_id=None,
            attempts=1,
            fetched_at=0.0,
        )
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


# -- a checkpoint belongs to one workspace ------------------------------------------------------


@pytest.fixture
def two_workspaces():
    """30 final jobs; the main token is workspace "sandbox", "tok-b" is workspace "workspace-b"."""
    with ij.Sandbox(jobs=30, seed=3, pending_share=0.0, tokens={"tok-b": "workspace-b"}) as sb:
        yield sb


def test_a_token_of_another_workspace_is_refused_before_any_job_is_asked(
    two_workspaces, opts, tmp_path
):
    path = tmp_path / "jobs.sqlite"
    ij.fetch_jobs(two_workspaces.job_ids[:10], checkpoint=path, **opts(two_workspaces))
    two_workspaces.reset_stats()
    with pytest.raises(ij.ConfigurationError, match="workspace"):
        ij.fetch_jobs(
            two_workspaces.job_ids, checkpoint=path, **opts(two_workspaces, token="tok-b")
        )
    assert two_workspaces.stats["per_job"] == {}


def test_a_checkpoint_refused_to_another_workspace_still_resumes_for_its_own(
    two_workspaces, opts, tmp_path
):
    path = tmp_path / "jobs.sqlite"
    first = ij.fetch_jobs(two_workspaces.job_ids[:10], checkpoint=path, **opts(two_workspaces))
    with pytest.raises(ij.ConfigurationError, match="workspace"):
        ij.fetch_jobs(
            two_workspaces.job_ids, checkpoint=path, **opts(two_workspaces, token="tok-b")
        )
    two_workspaces.reset_stats()
    again = ij.fetch_jobs(two_workspaces.job_ids, checkpoint=path, **opts(two_workspaces))
    assert set(two_workspaces.stats["per_job"]) == set(two_workspaces.job_ids[10:])
    assert again["job_id"].tolist() == two_workspaces.job_ids
    assert again["status"].head(10).tolist() == first["status"].tolist()


# -- files that are not checkpoints are refused, unchanged --------------------------------------


def write_text_file(path):
    path.write_text("job_id\n1001\n1002\n" * 50)


def write_other_sqlite(path, *, wal=False):
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    db.executemany("INSERT INTO notes (body) VALUES (?)", [("a note",)] * 20)
    db.commit()
    db.close()


def write_app_sqlite_without_tables(path):
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 1234")
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()


def write_app_sqlite_with_empty_meta_and_jobs(path):
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (name TEXT, data BLOB)")
    db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, cron TEXT, command TEXT)")
    db.commit()
    db.close()


NOT_CHECKPOINTS = {
    "text file": write_text_file,
    "sqlite with another table": write_other_sqlite,
    "sqlite in wal mode with another table": lambda path: write_other_sqlite(path, wal=True),
    "sqlite from another app, no tables": write_app_sqlite_without_tables,
    "sqlite from another app, empty meta and jobs": write_app_sqlite_with_empty_meta_and_jobs,
}


@pytest.mark.parametrize("kind", list(NOT_CHECKPOINTS))
def test_a_file_that_is_not_a_checkpoint_is_refused_and_left_exactly_as_it_was(
    final_sandbox, opts, tmp_path, kind
):
    path = tmp_path / "mine.db"
    NOT_CHECKPOINTS[kind](path)
    before = path.read_bytes()
    assert before  # an empty file is a new checkpoint, not someone else's
    with pytest.raises(ij.ConfigurationError):
        ij.fetch_jobs(final_sandbox.job_ids, checkpoint=path, **opts(final_sandbox))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.db"]  # no -wal, -shm, -journal
    assert final_sandbox.stats["requests"] == 0


# -- a checkpoint of this schema made before the columns were declared once ---------------------

#: The jobs table of schema 3, as the code before `rows.Column` wrote it (hand-listed columns,
#: ``job_id`` first and ``workspace`` last).
SCHEMA_3_JOBS = (
    "CREATE TABLE jobs (job_id TEXT NOT NULL, status, resource_type, resource_id, resource_url, "
    "url, http_status, error_code, error_message, request_id, attempts, fetched_at, final, "
    "workspace TEXT NOT NULL, PRIMARY KEY (workspace, job_id)) WITHOUT ROWID"
)


def test_a_new_checkpoint_has_schema_3s_table_exactly(tmp_path):
    """A new column bumps the schema version; until then, files are laid out as before."""
    assert SCHEMA_VERSION == "3"  # a new schema: give its table here, and its upgrade a test
    path = tmp_path / "jobs.sqlite"
    Checkpoint(path, "https://api.intercom.io").close()
    db = sqlite3.connect(path)
    try:
        (made,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'jobs'").fetchone()
    finally:
        db.close()
    assert made == SCHEMA_3_JOBS


def test_a_checkpoint_written_by_the_previous_code_opens_and_its_rows_read_back(tmp_path):
    path = tmp_path / "jobs.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute(SCHEMA_3_JOBS)
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [
            ("kind", "checkpoint"),
            ("base_url", "https://api.intercom.io"),
            ("schema", "3"),
            ("written_by", "0.4.0"),
            ("workspace", "abc123"),
        ],
    )
    db.executemany(  # by position, in the table's own order
        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            ("1", "success", "ticket", "5001", None, "u1", 200, None, None, "r1", 1, 1.7e9, 1, ""),
            ("2", None, None, None, None, None, 503, "server_error", "down", None, 3, 1.7e9, 0, ""),
        ],
    )
    db.commit()
    db.close()
    with Checkpoint(path, "https://api.intercom.io") as checkpoint:
        checkpoint.bind("abc123")
        saved = checkpoint.rows()
        assert saved[(None, "1")] == job_row(
            "1",
            "success",
            resource_type="ticket",
            resource_id="5001",
            resource_url=None,
            url="u1",
            request_id="r1",
            attempts=1,
            fetched_at=1.7e9,
        )
        failed = saved[(None, "2")]
        assert (failed.http_status, failed.error_code, failed.error_message) == (
            503,
            "server_error",
            "down",
        )
        assert failed.final is False and failed.workspace is None and failed.attempts == 3
        checkpoint.write([failed._replace(attempts=4)])  # and it is written to as before
        assert checkpoint.rows()[(None, "2")].attempts == 4
        assert checkpoint.frame()["job_id"].tolist() == ["1", "2"]


# -- a checkpoint of another schema version -----------------------------------------------------


def write_checkpoint_of_schema(path, base_url, schema):
    """A checkpoint as version 0.1 wrote it: no workspace, the 12 columns before ``final``."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute(
        "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, status, resource_type, resource_id, "
        "resource_url, url, http_status, error_code, error_message, request_id, attempts, "
        "fetched_at) WITHOUT ROWID"
    )
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("base_url", base_url), ("schema", schema)])
    db.execute(
        "INSERT INTO jobs VALUES ('1001', 'success', 'ticket', '5001', NULL, NULL, 200, NULL, "
        "NULL, NULL, 1, 1700000000.0)"
    )
    db.commit()
    db.close()


@pytest.mark.parametrize("schema", ["1", "99"])
def test_a_checkpoint_of_another_schema_is_refused_naming_it_and_left_unchanged(
    final_sandbox, opts, tmp_path, schema
):
    path = tmp_path / "old.sqlite"
    write_checkpoint_of_schema(path, final_sandbox.base_url, schema)
    before = path.read_bytes()
    with pytest.raises(ij.ConfigurationError, match=f"schema {schema}\\b") as caught:
        ij.fetch_jobs(final_sandbox.job_ids, checkpoint=path, **opts(final_sandbox))
    assert not isinstance(caught.value.__cause__, sqlite3.Error)
    assert not isinstance(caught.value.__context__, sqlite3.Error)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.sqlite"]
    assert final_sandbox.stats["requests"] == 0


# -- disk full ends the run with the rows on .df ------------------------------------------------

DISK_FULL_SCRIPT = r"""
import json, resource, sqlite3, sys
import intercom_jobs_nb as ij

path, limit = sys.argv[1], int(sys.argv[2])
out = {"raised": None}
with ij.Sandbox(jobs=3000, seed=0, pending_share=0.0) as sb:
    # Every file this process writes stops growing at `limit` bytes: a write past it fails with
    # EFBIG (Python ignores SIGXFSZ), which SQLite reports as an I/O error, as on a full disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        ij.fetch_jobs(
            sb.job_ids, token=sb.token, base_url=sb.base_url, progress=False, checkpoint=path
        )
    except ij.CheckpointError as exc:
        out["raised"] = type(exc).__name__
        out["aborted"] = isinstance(exc, ij.RunAbortedError)
        out["message"] = str(exc)
        out["df"] = dict(zip(exc.df["job_id"], exc.df["status"].astype(str)))
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
out["file"] = dict(db.execute("SELECT job_id, status FROM jobs").fetchall())
db.close()
print(json.dumps(out))
"""


def test_a_full_disk_ends_the_run_with_every_row_on_df(tmp_path):
    path = tmp_path / "jobs.sqlite"
    limit = 256 * 1024  # room for the file and a few hundred rows, not for 3000
    done = subprocess.run(
        [sys.executable, "-c", DISK_FULL_SCRIPT, str(path), str(limit)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["raised"] == "CheckpointError" and out["aborted"]
    assert "every row fetched is on .df" in out["message"]
    saved, df = out["file"], out["df"]
    assert 0 < len(saved) <= len(df)
    assert {job_id: df.get(job_id) for job_id in saved} == saved


def test_fetch_tickets_with_a_checkpoint_resumes_without_asking_saved_tickets(tmp_path):
    rows = pd.DataFrame(
        {"key": ["a", "b", "c"], "contact_email": ["a@x.io", "b@x.io", "c@x.io"], "title": "T"}
    )
    with ij.Sandbox(jobs=1, enqueue_pending_seconds=(0.0, 0.0)) as sb:
        kw = {"token": sb.token, "base_url": sb.base_url, "progress": False}
        out = ij.enqueue_tickets(rows, ledger=tmp_path / "ledger.sqlite", ticket_type_id="88", **kw)
        jobs = ij.wait_for_jobs(out, poll_interval=0.1, **kw)
        path = tmp_path / "tickets.sqlite"
        first = ij.fetch_tickets(jobs, checkpoint=path, **kw)
        sb.reset_stats()
        again = ij.fetch_tickets(jobs, checkpoint=path, **kw)
        requests = sb.stats["requests"]
    assert requests == 1  # GET /me only: the saved tickets are final
    assert again["ticket_id"].tolist() == first["ticket_id"].tolist()
    assert first["ticket_id"].notna().all()


def test_a_ledger_is_not_taken_for_a_checkpoint(tmp_path, final_sandbox, opts):
    rows = pd.DataFrame({"key": ["a"], "contact_email": ["a@x.io"]})
    ledger = tmp_path / "ledger.sqlite"
    ij.enqueue_tickets(rows, ledger=ledger, ticket_type_id="88", **opts(final_sandbox))
    before = ledger.read_bytes()
    with pytest.raises(ij.ConfigurationError, match="checkpoint"):
        ij.fetch_jobs(final_sandbox.job_ids[:1], checkpoint=ledger, **opts(final_sandbox))
    assert ledger.read_bytes() == before
