"""One column declaration: each result column is declared once, on its field of `Row`, and every
list of columns (the frame's dtypes, the Arrow blocks, the checkpoint's table, Parquet, the CSV's
escaping) follows from it; enqueue and ticket rows declare theirs the same way."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated, NamedTuple

import pyarrow.parquet as pq
import pytest

import intercom_jobs_nb
from intercom_jobs_nb import _frames as frames
from intercom_jobs_nb import _parquet as parquet
from intercom_jobs_nb import _rows as R
from intercom_jobs_nb._checkpoint import Checkpoint
from intercom_jobs_nb._enqueue import ENQUEUE_COLUMNS
from intercom_jobs_nb._ledger import ENQUEUE_STATUSES, ENQUEUED, NOT_SENT, Body, EnqueueRow, Ledger
from intercom_jobs_nb._tickets import TICKET_COLUMNS, TicketRow


def sample_rows() -> list[R.Row]:
    answered = R.job_row(
        "1",
        "success",
        resource_type="ticket",
        resource_id="5001",
        resource_url="https://x/tickets/5001",
        url="https://x/jobs/status/1",
        request_id="req-1",
        attempts=1,
        fetched_at=1_700_000_000.5,
    )
    failed = R.error_row("2", None, "timeout", "took too long", attempts=3)
    return [
        answered._replace(workspace="acme"),
        failed._replace(workspace="beta", fetched_at=1_700_000_002.0),
    ]


def test_the_frame_has_the_declared_columns_in_order_with_their_dtypes():
    df = R.to_frame(sample_rows())
    assert tuple(df.columns) == tuple(c.name for c in R.DECLARED) == R.Row._fields
    for column in R.DECLARED:
        assert df[column.name].dtype == column.dtype, column.name
    assert R.frame_rows(df) == sample_rows()


def test_the_checkpoint_table_has_the_declared_columns_and_keeps_every_value(tmp_path):
    path = tmp_path / "jobs.sqlite"
    with Checkpoint(path, "https://api.intercom.io") as checkpoint:
        checkpoint.write(sample_rows())
        saved = sorted(checkpoint.rows().values())
    db = sqlite3.connect(path)
    try:
        table = [name for _, name, *_ in db.execute("PRAGMA table_info(jobs)")]
    finally:
        db.close()
    assert tuple(table) == R.COLUMNS
    assert saved == sample_rows()


def test_parquet_has_the_declared_columns(tmp_path):
    written = parquet.export_parquet(R.to_frame(sample_rows()), tmp_path / "jobs.parquet")
    assert tuple(pq.read_schema(written).names) == R.COLUMNS


def test_csv_escapes_the_columns_declared_intercom_text_and_no_other():
    declared = {c.name for c in R.DECLARED if c.intercom_text}
    assert set(frames.INTERCOM_TEXT_COLUMNS) == declared
    assert "job_id" not in declared and "error_message" in declared


def test_a_field_without_its_column_declaration_is_refused():
    class Bare(NamedTuple):
        key: Annotated[str, R.Column("string")]
        note: str | None

    with pytest.raises(TypeError, match=r"Bare\.note must declare one Column"):
        R.columns_of(Bare)


# What adding a column takes: this one line, in a copy of the package. Nothing else is edited.
NEW_FIELD = "    note: Annotated[str | None, _INTERCOM_TEXT] = None\n"

ADDED_COLUMN_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import pandas as pd
    import pyarrow.parquet as pq

    import intercom_jobs_nb as ij
    from intercom_jobs_nb import _rows as R
    from intercom_jobs_nb._checkpoint import Checkpoint

    assert Path(ij.__file__).parent == Path(sys.argv[2]), ij.__file__
    work = Path(sys.argv[1])
    row = R.unasked_row("7")._replace(note="=1+1")
    df = R.to_frame([row])
    assert df.columns[-1] == "note" and df["note"].dtype == R.STRING, df.dtypes
    assert R.frame_rows(df) == [row]
    with Checkpoint(work / "jobs.sqlite", "https://api.intercom.io") as checkpoint:
        checkpoint.write([row])
        assert list(checkpoint.rows().values()) == [row]
    ij.export_csv(df, work / "jobs.csv")
    assert pd.read_csv(work / "jobs.csv")["note"].tolist() == ["'=1+1"]  # Intercom's text
    ij.export_parquet(df, work / "jobs.parquet")
    assert "note" in pq.read_schema(work / "jobs.parquet").names
    print("note reached the frame, the checkpoint, the CSV and Parquet")
    """
)


def test_a_column_added_to_the_declaration_alone_reaches_every_output(tmp_path):
    source = Path(intercom_jobs_nb.__file__).parent
    copy = tmp_path / "site" / "intercom_jobs_nb"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__"))
    rows_py = copy / "_rows.py"
    text = rows_py.read_text()
    anchor = text.index("\n", text.index("    workspace: Annotated[")) + 1
    rows_py.write_text(text[:anchor] + NEW_FIELD + text[anchor:])
    done = subprocess.run(
        [sys.executable, "-c", ADDED_COLUMN_SCRIPT, str(tmp_path), str(copy)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(copy.parent), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "note reached the frame, the checkpoint, the CSV and Parquet" in done.stdout


# -- the enqueue and ticket rows declare their columns the same way -----------------------------


def test_an_enqueue_row_declares_the_frames_columns_and_the_ledgers(tmp_path):
    sent = EnqueueRow.of("k1", ENQUEUED, job_id="7", request_id="r", at=1_700_000_000.0)
    frame = R.records_frame([sent, EnqueueRow.of("k2", NOT_SENT)], EnqueueRow)
    assert tuple(frame.columns) == ENQUEUE_COLUMNS
    assert "final" not in frame.columns  # it follows from the status
    assert list(frame["enqueue_status"].cat.categories) == list(ENQUEUE_STATUSES)
    assert str(frame["enqueued_at"].dt.tz) == "UTC" and frame["key"].dtype == "string"
    path = tmp_path / "ledger.sqlite"
    with Ledger(str(path), "https://api.intercom.io") as ledger:
        ledger.intend("k1", Body.of({"title": "x"}))
        ledger.record(sent)
        assert ledger.rows() == {"k1": sent}
    db = sqlite3.connect(path)
    try:
        table = [name for _, name, *_ in db.execute("PRAGMA table_info(keys)")]
    finally:
        db.close()
    assert table[: len(ENQUEUE_COLUMNS)] == list(ENQUEUE_COLUMNS)


def test_a_ticket_row_declares_the_columns_fetch_tickets_adds_with_their_dtypes():
    read = TicketRow(
        resource_id="5",
        ticket_id="T-5",
        ticket_state="submitted",
        ticket_state_label="Submitted",
        ticket_type="Bug",
        ticket_open=True,
        ticket_created_at=1_700_000_000.0,
        ticket_updated_at=None,
        admin_assignee_id=None,
        team_assignee_id="t",
        attributes={"size": 3},
        http_status=200,
        error_code=None,
        error_message=None,
        final=True,
    )
    frame = R.records_frame([read], TicketRow)
    assert tuple(frame.columns) == TICKET_COLUMNS
    assert "ticket_http_status" in TICKET_COLUMNS and "http_status" not in TICKET_COLUMNS
    expected = {
        "ticket_state": "category",
        "ticket_open": "boolean",
        "ticket_http_status": "Int16",
        "ticket_error_message": "string",
    }
    assert {name: str(frame[name].dtype) for name in expected} == expected
    assert str(frame["ticket_created_at"].dt.tz) == "UTC"
