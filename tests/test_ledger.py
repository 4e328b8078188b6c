"""The ledger's promise where users break it: two runs at once on one ledger, a sheet edited
between runs, a ticket type corrected, a ledger copied or moved after a crash, a ledger written
by the previous version.

Every test talks to a real `ij.Sandbox` over loopback sockets and counts tickets per key on the
server's side (``count_tickets``): more than one is a duplicate. Runs that must be separate
processes (two at once, a SIGKILL) are real subprocesses.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from ticket_rows import keyed_rows

import intercom_jobs_nb as ij
from intercom_jobs_nb._cli import main as cli_main
from intercom_jobs_nb._ledger import Ledger

TYPE = "88"  # the sandbox's default ticket type


def keyless_rows(n):
    """``n`` valid rows without a key column; each title is unique."""
    return [{"contact_id": f"contact-{i}", "title": f"Ticket {i}"} for i in range(n)]


def requests(sb):
    """How many requests the sandbox received (each run's one GET /me among them)."""
    return sb.stats["requests"]


def duplicates(counts):
    return {k: n for k, n in counts.items() if n > 1}


@pytest.fixture
def sandbox():
    with ij.Sandbox(jobs=0, enqueue_pending_seconds=(0, 0)) as sb:
        yield sb


@pytest.fixture
def slow_sandbox():
    """Each answer takes 50 ms: a run of 120 rows on 2 workers lasts about 3 s."""
    with ij.Sandbox(jobs=0, latency=0.05, enqueue_pending_seconds=(0, 0)) as sb:
        yield sb


@pytest.fixture
def run(tmp_path):
    def call(sb, rows, **kwargs):
        kwargs.setdefault("ledger", tmp_path / "ledger.sqlite")
        kwargs.setdefault("ticket_type_id", TYPE)
        return ij.enqueue_tickets(
            rows, token=sb.token, base_url=sb.base_url, progress=False, retries=2, **kwargs
        )

    return call


def child_env():
    env = {k: v for k, v in os.environ.items() if k != "INTERCOM_TOKEN"}
    env["TQDM_DISABLE"] = "1"
    return env


# -- one writer per ledger ---------------------------------------------------------------------

_RACER = """
import os, sys, time
import intercom_jobs_nb as ij
base_url, token, ledger, csv, go = sys.argv[1:6]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
try:
    ij.enqueue_tickets(csv, ledger=ledger, ticket_type_id="88", token=token, base_url=base_url,
                       progress=False, max_workers=2)
except ij.FileInUseError as exc:
    print("busy", exc, flush=True)
else:
    print("done", flush=True)
"""


@pytest.mark.parametrize("made", ["beforehand", "by both"])
def test_two_processes_started_at_once_on_one_ledger_never_send_a_key_twice(
    made, slow_sandbox, tmp_path
):
    sb = slow_sandbox
    csv = tmp_path / "rows.csv"
    pd.DataFrame(keyed_rows(120)).to_csv(csv, index=False)
    ledger = tmp_path / "ledger.sqlite"
    if made == "beforehand":
        Ledger(str(ledger), sb.base_url).close()
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", _RACER, sb.base_url, sb.token, str(ledger), str(csv), str(go)],
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        for _ in range(2)
    ]
    for racer in racers:
        assert racer.stdout.readline().strip() == "ready"
    go.touch()
    said = [racer.communicate(timeout=120)[0].strip() for racer in racers]

    assert sorted(line.split()[0] for line in said) == ["busy", "done"], said
    busy = next(line for line in said if line.startswith("busy"))
    winner = racers[[line.startswith("done") for line in said].index(True)]
    assert f"pid {winner.pid} on host {socket.gethostname()}, since " in busy
    assert "stopped before sending anything" in busy
    counts = sb.count_tickets(by="row_key")
    assert not duplicates(counts)
    assert len(counts) == 120 and requests(sb) == 121  # the refused run asked nothing


_HOLDER = """
import sys, time
from intercom_jobs_nb._ledger import Ledger
book = Ledger(sys.argv[1], sys.argv[2])
print("held", flush=True)
time.sleep(600)
"""


@pytest.fixture
def held_ledger(sandbox, tmp_path):
    """A ledger another process holds open (as a run does) until the test kills it."""
    ledger = tmp_path / "ledger.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(ledger), sandbox.base_url],
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield ledger, holder
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_run_on_a_ledger_in_use_stops_before_any_request_naming_the_other_process(
    sandbox, run, held_ledger
):
    ledger, holder = held_ledger
    with pytest.raises(ij.FileInUseError) as caught:
        run(sandbox, keyed_rows(5), ledger=ledger)
    message = str(caught.value)
    assert f"is in use by another run (pid {holder.pid} on host {socket.gethostname()}" in message
    assert time.strftime("since %Y-%m-%d", time.gmtime()) in message
    assert "Let that run end" in message
    assert sandbox.stats["requests"] == 0  # not even GET /me


def test_the_lock_of_a_killed_run_needs_no_cleanup(sandbox, run, held_ledger):
    ledger, holder = held_ledger
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    out = run(sandbox, keyed_rows(5), ledger=ledger)
    assert set(out["enqueue_status"]) == {"enqueued"}


def test_the_cli_on_a_ledger_in_use_exits_2_naming_the_other_process(
    sandbox, held_ledger, tmp_path, monkeypatch, capsys
):
    ledger, holder = held_ledger
    csv = tmp_path / "rows.csv"
    pd.DataFrame(keyed_rows(3)).to_csv(csv, index=False)
    monkeypatch.setenv("INTERCOM_TOKEN", sandbox.token)
    code = cli_main(
        ["enqueue", str(csv), "--ledger", str(ledger), "--ticket-type-id", TYPE,
         "--base-url", sandbox.base_url, "--no-progress"]
    )  # fmt: skip
    assert code == 2
    assert f"pid {holder.pid}" in capsys.readouterr().err
    assert sandbox.stats["requests"] == 0


def test_two_threads_of_one_process_on_one_ledger_exclude_each_other(sandbox, run, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    held = threading.Event()
    done = threading.Event()

    def hold():
        with Ledger(str(ledger), sandbox.base_url):
            held.set()
            done.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(ij.FileInUseError, match="another run in this process"):
            run(sandbox, keyed_rows(3), ledger=ledger)
    finally:
        done.set()
        thread.join()
    assert sandbox.stats["requests"] == 0
    assert set(run(sandbox, keyed_rows(3), ledger=ledger)["enqueue_status"]) == {"enqueued"}


# -- a key means one ticket body ---------------------------------------------------------------


def test_a_keyless_sheet_edited_between_runs_sends_only_its_new_row(sandbox, run, tmp_path):
    csv = tmp_path / "tickets.csv"
    pd.DataFrame(keyless_rows(6)).to_csv(csv, index=False)
    first = run(sandbox, csv).set_index("title")
    sheet = pd.read_csv(csv, dtype=str)
    new = pd.DataFrame([{"contact_id": "contact-new", "title": "Inserted on top"}])
    edited = pd.concat([new, sheet.drop(index=3)]).sort_values("contact_id", ascending=False)
    edited.to_csv(csv, index=False)
    sent = requests(sandbox)

    second = run(sandbox, csv).set_index("title")

    assert requests(sandbox) == sent + 2  # GET /me and the new row
    assert second.loc["Inserted on top", "enqueue_status"] == "enqueued"
    kept = [t for t in first.index if t != "Ticket 3"]
    assert (second.loc[kept, "job_id"] == first.loc[kept, "job_id"]).all()
    assert (second.loc[kept, "key"] == first.loc[kept, "key"]).all()
    assert not duplicates(sandbox.count_tickets(by="title"))


def test_a_column_added_to_a_keyless_sheet_changes_no_key(sandbox, run):
    frame = pd.DataFrame(keyless_rows(4))
    first = run(sandbox, frame)
    frame["notes"] = ["called", "", "emailed", "x"]
    sent = requests(sandbox)
    second = run(sandbox, frame)
    assert requests(sandbox) == sent + 1  # GET /me only
    assert second["job_id"].tolist() == first["job_id"].tolist()


def test_two_identical_keyless_rows_are_refused_saying_to_add_a_key_column(sandbox, run):
    rows = keyless_rows(3) + [keyless_rows(3)[1]]
    with pytest.raises(ij.ConfigurationError, match="add a 'key' column") as caught:
        run(sandbox, rows)
    assert "rows 1 and 3" in str(caught.value)
    assert sandbox.stats["requests"] == 0


def test_a_key_sent_before_with_another_body_is_not_sent_and_names_what_changed(sandbox, run):
    rows = keyed_rows(4)
    first = run(sandbox, rows).set_index("key")
    rows[1]["title"] = "Ticket 1, edited"
    rows[2]["attr:priority"] = "high"
    sent = requests(sandbox)

    second = run(sandbox, rows).set_index("key")

    assert requests(sandbox) == sent + 1  # GET /me only
    for key, field in (("k1", "title"), ("k2", "attr:priority")):
        row = second.loc[key]
        assert row["enqueue_status"] == "rejected"
        assert row["enqueue_error_code"] == "key_changed"
        assert f"changed: {field}." in row["enqueue_error_message"]
        assert first.loc[key, "job_id"] in row["enqueue_error_message"]
        assert pd.isna(row["job_id"])  # not labelled with the old job
    assert second.loc[["k0", "k3"], "job_id"].tolist() == first.loc[["k0", "k3"], "job_id"].tolist()
    assert not duplicates(sandbox.count_tickets(by="row_key"))


def test_rows_rejected_for_a_wrong_ticket_type_are_sent_once_it_is_corrected(sandbox, run):
    rows = keyless_rows(5)
    wrong = run(sandbox, rows, ticket_type_id="1234")
    assert set(wrong["enqueue_status"]) == {"rejected"}
    assert set(wrong["enqueue_error_message"]) == {"Ticket type not found"}

    right = run(sandbox, rows, ticket_type_id=TYPE)
    assert set(right["enqueue_status"]) == {"enqueued"}
    assert right["key"].tolist() == wrong["key"].tolist()

    sent = requests(sandbox)
    again = run(sandbox, rows, ticket_type_id=TYPE)
    assert requests(sandbox) == sent + 1  # GET /me only
    assert again["job_id"].tolist() == right["job_id"].tolist()
    assert sandbox.count_tickets(by="title") == {f"Ticket {i}": 1 for i in range(5)}


def test_key_names_the_column_that_holds_the_keys(sandbox, run):
    rows = [{**row, "ref": row.pop("key")} for row in keyed_rows(3)]
    out = run(sandbox, rows, key="ref")
    assert out["key"].tolist() == ["k0", "k1", "k2"]
    with pytest.raises(ij.ConfigurationError, match="key='nope': no such column"):
        run(sandbox, rows, key="nope")


# -- durable and whole -------------------------------------------------------------------------


def side_files(path):
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "-")) + (
        [path.name + ".lock"] if path.with_name(path.name + ".lock").exists() else []
    )


def test_a_finished_run_leaves_the_ledger_one_file_that_resumes_alone(sandbox, run, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    first = run(sandbox, keyed_rows(30), ledger=ledger)
    assert side_files(ledger) == []
    moved = tmp_path / "elsewhere" / "copy.sqlite"
    moved.parent.mkdir()
    shutil.copy(ledger, moved)
    sent = requests(sandbox)
    again = run(sandbox, keyed_rows(30), ledger=moved)
    assert requests(sandbox) == sent + 1  # GET /me only
    assert again["job_id"].tolist() == first["job_id"].tolist()


def test_a_run_ended_by_an_error_leaves_the_ledger_one_file_too(sandbox, run, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    run(sandbox, keyed_rows(3), ledger=ledger)
    with pytest.raises(ij.AuthenticationError):
        ij.enqueue_tickets(keyed_rows(6), ledger=ledger, ticket_type_id=TYPE, token="wrong-t0ken",
                           base_url=sandbox.base_url, progress=False)  # fmt: skip
    assert side_files(ledger) == []


def test_the_ledger_fsyncs_every_commit(sandbox, tmp_path):
    with Ledger(str(tmp_path / "ledger.sqlite"), sandbox.base_url) as book:
        db = book._db  # the pragmas are the promise: SQLite fsyncs the WAL at each commit
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


_KILLED = """
import sys
import intercom_jobs_nb as ij
base_url, token, ledger, csv = sys.argv[1:5]
ij.enqueue_tickets(csv, ledger=ledger, ticket_type_id="88", token=token, base_url=base_url,
                   progress=False, max_workers=2)
"""


def test_a_killed_runs_ledger_moved_without_its_wal_is_refused_and_with_it_resumes(
    slow_sandbox, tmp_path
):
    sb = slow_sandbox
    csv = tmp_path / "rows.csv"
    pd.DataFrame(keyed_rows(120)).to_csv(csv, index=False)
    ledger = tmp_path / "run" / "ledger.sqlite"
    ledger.parent.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED, sb.base_url, sb.token, str(ledger), str(csv)],
        env=child_env(),
    )
    deadline = time.monotonic() + 60
    while requests(sb) < 21 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 21 <= requests(sb) < 121
    assert ledger.with_name("ledger.sqlite-wal").exists()

    alone = tmp_path / "alone" / "ledger.sqlite"
    alone.parent.mkdir()
    shutil.copy(ledger, alone)
    before = sb.stats["requests"]
    with pytest.raises(ij.CheckpointError) as caught:
        ij.enqueue_tickets(csv, ledger=alone, ticket_type_id=TYPE, token=sb.token,
                           base_url=sb.base_url, progress=False)  # fmt: skip
    message = str(caught.value)
    assert "did not end cleanly" in message and "'ledger.sqlite-wal'" in message
    assert f"pid {child.pid}" in message
    assert sb.stats["requests"] == before  # nothing sent, not even GET /me

    together = tmp_path / "together"
    together.mkdir()
    for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"):
        if (ledger.parent / name).exists():
            shutil.copy(ledger.parent / name, together / name)
    out = ij.enqueue_tickets(csv, ledger=together / "ledger.sqlite", ticket_type_id=TYPE,
                             token=sb.token, base_url=sb.base_url, progress=False)  # fmt: skip
    assert set(out["enqueue_status"]) <= {"enqueued", "unknown"}
    assert not duplicates(sb.count_tickets(by="row_key"))
    assert side_files(together / "ledger.sqlite") == []


def test_a_checkpoint_moved_without_its_wal_after_a_crash_is_refused(tmp_path):
    with ij.Sandbox(jobs=30, pending_share=0.0) as sb:
        cp = tmp_path / "run" / "jobs.sqlite"
        cp.parent.mkdir()
        script = (
            "import os, signal, sys\n"
            "from intercom_jobs_nb._checkpoint import Checkpoint\n"
            "from intercom_jobs_nb._rows import frame_rows\n"
            "import intercom_jobs_nb as ij\n"
            "df = ij.fetch_jobs(sys.argv[3:], token=sys.argv[2], base_url=sys.argv[1], "
            "progress=False)\n"
            "book = Checkpoint(os.environ['CP'], sys.argv[1])\n"
            "book.bind('ws')\n"
            "book.write(frame_rows(df))\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n"
        )
        env = {**child_env(), "CP": str(cp)}
        subprocess.run([sys.executable, "-c", script, sb.base_url, sb.token, *sb.job_ids], env=env)
        assert cp.with_name("jobs.sqlite-wal").exists()
        alone = tmp_path / "jobs.sqlite"
        shutil.copy(cp, alone)
        with pytest.raises(ij.CheckpointError, match="'jobs.sqlite-wal'"):
            ij.fetch_jobs(sb.job_ids, token=sb.token, base_url=sb.base_url, progress=False,
                          checkpoint=alone)  # fmt: skip


# -- a ledger of the previous version ----------------------------------------------------------


def schema1_ledger(path, base_url, keys):
    """A ledger as intercom-jobs-nb 0.1 wrote it, with ``keys`` enqueued."""
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        "CREATE TABLE keys (key TEXT PRIMARY KEY, job_id, enqueue_status, enqueue_error_code, "
        "enqueue_error_message, enqueue_request_id, enqueued_at, "
        "sent_count INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    )
    db.executemany(
        "INSERT INTO meta VALUES (?, ?)",
        [("kind", "ledger"), ("base_url", base_url), ("schema", "1"), ("written_by", "0.1.0")],
    )
    db.executemany(
        "INSERT INTO keys (key, job_id, enqueue_status, enqueued_at, sent_count) "
        "VALUES (?, ?, 'enqueued', 1.0, 1)",
        [(key, f"job-{key}") for key in keys],
    )
    db.commit()
    db.close()


def test_a_ledger_of_version_0_1_is_upgraded_and_keeps_its_keys(sandbox, run, tmp_path):
    ledger = tmp_path / "old.sqlite"
    schema1_ledger(ledger, sandbox.base_url, ["k0", "k1"])
    out = run(sandbox, keyed_rows(3), ledger=ledger).set_index("key")
    assert requests(sandbox) == 2  # GET /me, then k2 only
    assert out.loc[["k0", "k1"], "job_id"].tolist() == ["job-k0", "job-k1"]
    with Ledger(str(ledger), sandbox.base_url) as book:
        assert book.upgraded_from is None  # the first open upgraded it
        assert set(book.rows()) == {"k0", "k1", "k2"}


def test_a_keyless_sheet_on_a_ledger_of_version_0_1_is_refused_before_sending(
    sandbox, run, tmp_path
):
    ledger = tmp_path / "old.sqlite"
    schema1_ledger(ledger, sandbox.base_url, ["0", "1"])
    with pytest.raises(ij.ConfigurationError, match="by their row number"):
        run(sandbox, keyless_rows(3), ledger=ledger)
    assert sandbox.stats["requests"] == 0


def test_a_ledger_another_program_holds_locked_is_refused_before_any_request(
    sandbox, run, tmp_path, monkeypatch
):
    ledger = tmp_path / "ledger.sqlite"
    run(sandbox, keyed_rows(2), ledger=ledger)
    other = sqlite3.connect(ledger, isolation_level=None)  # a DB browser with a write open
    other.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(sqlite3, "connect", functools.partial(sqlite3.connect, timeout=0.2))
    before = requests(sandbox)
    try:
        with pytest.raises(ij.CheckpointError, match="no other program holds it open"):
            run(sandbox, keyed_rows(4), ledger=ledger)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert requests(sandbox) == before
    assert not ledger.with_name("ledger.sqlite.lock").exists()  # the lock went with the failure


@pytest.mark.parametrize("damage", ["truncated", "zeroed pages"])
def test_a_damaged_ledger_is_refused_before_any_request_saying_so(damage, sandbox, run, tmp_path):
    ledger = tmp_path / "ledger.sqlite"
    rows = [{**row, "description": "x" * 400} for row in keyed_rows(200)]
    run(sandbox, rows, ledger=ledger)
    data = ledger.read_bytes()
    if damage == "truncated":
        ledger.write_bytes(data[: len(data) // 2])
    else:
        ledger.write_bytes(data[:8192] + bytes(len(data) - 8192))
    before = requests(sandbox)
    with pytest.raises(ij.CheckpointError, match="is damaged"):
        run(sandbox, rows, ledger=ledger)
    assert requests(sandbox) == before


def test_a_wal_folded_in_by_another_sqlite_program_is_refused_with_a_way_out_that_works(
    sandbox, run, tmp_path
):
    ledger = tmp_path / "ledger.sqlite"
    script = (
        "import json, os, signal, sys\n"
        "from intercom_jobs_nb._enqueue import ticket_bodies\n"
        "from intercom_jobs_nb._ledger import Body, Ledger\n"
        "_, keys, bodies = ticket_bodies([json.loads(sys.argv[3])], ticket_type_id='88')\n"
        "book = Ledger(sys.argv[1], sys.argv[2])\n"
        "book.intend(keys[0], Body.of(bodies[0]))  # then killed mid-request\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    row = json.dumps(keyed_rows(1)[0])
    subprocess.run(
        [sys.executable, "-c", script, str(ledger), sandbox.base_url, row], env=child_env()
    )
    assert ledger.with_name("ledger.sqlite-wal").exists()
    browser = sqlite3.connect(ledger)  # a DB browser: its last connection folds the WAL in
    browser.execute("SELECT count(*) FROM keys").fetchone()
    browser.close()
    assert not ledger.with_name("ledger.sqlite-wal").exists()
    with pytest.raises(ij.CheckpointError) as caught:
        run(sandbox, keyed_rows(2), ledger=ledger)
    command = str(caught.value).split("removing the mark: ")[1].rstrip(")")
    subprocess.run(command, shell=True, cwd=tmp_path, check=True)
    out = run(sandbox, keyed_rows(2), ledger=ledger).set_index("key")
    assert out.loc["k0", "enqueue_status"] == "unknown"  # the folded-in intent was kept
    assert out.loc["k1", "enqueue_status"] == "enqueued"
