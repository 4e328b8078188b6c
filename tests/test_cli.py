"""The intercom-jobs command: fetch, enqueue, sandbox and demo, as a user runs them."""

from __future__ import annotations

import argparse
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import requests

import intercom_jobs_nb as ij
from intercom_jobs_nb import _cli as cli
from intercom_jobs_nb import _codes as codes
from intercom_jobs_nb.sandbox import Sandbox


@pytest.fixture
def token_env(monkeypatch, final_sandbox):
    monkeypatch.setenv("INTERCOM_TOKEN", final_sandbox.token)
    return final_sandbox


def test_fetch_writes_the_csv_and_prints_a_summary(token_env, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(token_env.job_ids[:5]) + "\nnot/valid\n")
    out = tmp_path / "out.csv"
    code = cli.main(["fetch", str(ids), "--out", str(out), "--base-url", token_env.base_url])
    assert code == 0
    df = pd.read_csv(out, dtype=str)
    assert df["job_id"].tolist() == [*token_env.job_ids[:5], "not/valid"]
    err = capsys.readouterr().err
    assert "invalid_job_id" in err and "status" in err and str(out) in err


def test_fetch_reads_ids_from_stdin_and_writes_csv_to_stdout(token_env, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(token_env.job_ids[:3]) + "\n"))
    assert cli.main(["fetch", "-", "--base-url", token_env.base_url, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert pd.read_csv(io.StringIO(out), dtype=str)["job_id"].tolist() == token_env.job_ids[:3]


def test_fetch_without_a_token_explains_and_fails(final_sandbox, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("1001\n")
    assert cli.main(["fetch", str(ids), "--base-url", final_sandbox.base_url]) == 2
    assert "INTERCOM_TOKEN" in capsys.readouterr().err


def test_fetch_with_a_rejected_token_exits_3(final_sandbox, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTERCOM_TOKEN", "wrong")
    ids = tmp_path / "ids.txt"
    ids.write_text("1001\n")
    assert cli.main(["fetch", str(ids), "--base-url", final_sandbox.base_url]) == 3
    err = capsys.readouterr().err
    assert "rejected the token" in err and "Traceback" not in err


def test_fetch_wait_polls_until_final(monkeypatch, tmp_path):
    from intercom_jobs_nb.sandbox import Sandbox

    with Sandbox(jobs=20, pending_share=0.5, pending_seconds=(0.2, 0.6)) as sb:
        monkeypatch.setenv("INTERCOM_TOKEN", sb.token)
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(sb.job_ids) + "\n")
        out = tmp_path / "out.csv"
        assert (
            cli.main(
                [
                    "fetch",
                    str(ids),
                    "--base-url",
                    sb.base_url,
                    "--wait",
                    "--poll-interval",
                    "0.2",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    assert set(pd.read_csv(out)["status"]) <= {"success", "failed"}


def test_the_token_has_no_flag():
    with pytest.raises(SystemExit):
        cli.main(["fetch", "ids.txt", "--token", "x"])


def test_demo_runs_offline_and_writes_a_csv(tmp_path):
    out = tmp_path / "demo.csv"
    env = {k: v for k, v in os.environ.items() if k != "INTERCOM_TOKEN"}
    env["TQDM_DISABLE"] = "1"
    script = Path(sys.executable).with_name("intercom-jobs")  # the installed console script
    done = subprocess.run(
        [str(script), "demo", "--out", str(out), "--jobs", "300"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(out, dtype=str)
    assert len(df) == 302
    assert {"success", "failed"} <= set(df["status"].dropna())
    assert "job_not_found" in done.stderr and "invalid_job_id" in done.stderr


def test_sandbox_command_serves_until_interrupted():
    process = subprocess.Popen(
        [sys.executable, "-m", "intercom_jobs_nb", "sandbox", "--jobs", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()
        token_line = process.stdout.readline()
        base_url = first.split()[3]
        token = token_line.split("INTERCOM_TOKEN=")[1].split()[0]
        answer = requests.get(
            f"{base_url}/jobs/status/1001", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert answer.status_code == 200 and answer.json()["id"] == "1001"
    finally:
        process.send_signal(subprocess.signal.SIGINT)
        assert process.wait(timeout=10) == 0


# -- as a user runs it: a real process against a sandbox started here ------------------------


def cli_env(token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "INTERCOM_TOKEN"}
    env["TQDM_DISABLE"] = "1"
    if token is not None:
        env["INTERCOM_TOKEN"] = token
    return env


def run_cli(*args: str, token: str | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    """``python -m intercom_jobs_nb ARGS`` to its end (a generous wait, no bound on speed)."""
    return subprocess.run(
        [sys.executable, "-m", "intercom_jobs_nb", *args],
        env=cli_env(token),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_cli(*args: str, token: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "intercom_jobs_nb", *args],
        env=cli_env(token),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_requests(sandbox, n: int) -> None:
    """Wait (generously) until the sandbox has received ``n`` requests."""
    deadline = time.monotonic() + 30
    while sandbox.stats["requests"] < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sandbox.stats["requests"] >= n


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ids_file(tmp_path, ids) -> str:
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(ids) + "\n")
    return str(path)


@pytest.fixture
def slow_sandbox():
    """400 final jobs answered after 50 ms each: a run long enough to interrupt."""
    with Sandbox(jobs=400, pending_share=0.0, latency=0.05) as sb:
        yield sb


def unwritable_folder(tmp_path) -> Path:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if not os.access(folder, os.W_OK):
        return folder
    # Running as root, a folder's mode refuses nothing; sysfs refuses new files even to root.
    try:
        tempfile.NamedTemporaryFile(dir="/sys").close()
    except OSError:
        return Path("/sys")
    pytest.skip("no folder here refuses new files")


def test_out_in_a_missing_folder_is_refused_before_any_request(final_sandbox, tmp_path):
    ids = ids_file(tmp_path, final_sandbox.job_ids[:3])
    out = tmp_path / "no-such-folder" / "jobs.csv"
    done = run_cli(
        "fetch", ids, "--out", str(out), "--base-url", final_sandbox.base_url,
        token=final_sandbox.token,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no such folder" in done.stderr
    assert final_sandbox.stats["requests"] == 0


def test_out_in_an_unwritable_folder_is_refused_before_any_request(final_sandbox, tmp_path):
    ids = ids_file(tmp_path, final_sandbox.job_ids[:3])
    out = unwritable_folder(tmp_path) / "jobs.csv"
    done = run_cli(
        "fetch", ids, "--out", str(out), "--base-url", final_sandbox.base_url,
        token=final_sandbox.token,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "cannot write" in done.stderr
    assert final_sandbox.stats["requests"] == 0


def test_an_unreachable_intercom_exits_4_with_a_clear_message(tmp_path):
    ids = ids_file(tmp_path, ["1001", "1002", "not/valid"])
    base_url = f"http://127.0.0.1:{closed_port()}"
    done = run_cli("fetch", ids, "--base-url", base_url, "--retries", "1", token="any-token")
    assert done.returncode == 4, done.stderr
    assert f"cannot reach Intercom at {base_url}" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_fetch_wait_bars_count_what_their_position_says_from_the_first_frame(tmp_path):
    """The wait's bar starts where the first pass left off; its counts must say so from its
    first frame (they read 0 while it showed 219/300)."""
    with Sandbox(jobs=100, seed=3, pending_share=0.0) as sb:
        ids = [*sb.job_ids, *(sb.add_job("success", pending_for=3.0) for _ in range(20))]
        path = tmp_path / "ids.txt"
        path.write_text("\n".join(ids))
        env = {**cli_env(sb.token), "COLUMNS": "160"}
        env.pop("TQDM_DISABLE")
        done = subprocess.run(
            [sys.executable, "-m", "intercom_jobs_nb", "fetch", str(path), "--wait"]
            + [
                "--poll-interval",
                "0.5",
                "--base-url",
                sb.base_url,
                "--out",
                str(tmp_path / "o.csv"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    frame = re.compile(
        r"final jobs:[^\r\n]*?(\d+)/(\d+) [^\r\n]*success=(\d+) failed=(\d+) pending=(\d+) "
        r"errors=(\d+)"
    )
    frames = [tuple(map(int, m.groups())) for m in frame.finditer(done.stderr)]
    assert frames, done.stderr
    assert frames[0][0] >= 100  # it starts where the first pass left off
    for n, total, success, failed, pending, errors in frames:
        assert success + failed + errors == n and n + pending == total, frames


def test_wait_against_an_unreachable_intercom_stops_after_the_first_pass(tmp_path):
    ids = ids_file(tmp_path, ["1001", "1002"])
    base_url = f"http://127.0.0.1:{closed_port()}"
    done = run_cli(
        "fetch", ids, "--base-url", base_url, "--retries", "0", "--wait",
        "--poll-interval", "0.1",
        token="any-token",
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "cannot reach Intercom" in done.stderr


def test_some_dropped_connections_do_not_make_intercom_unreachable(tmp_path):
    with Sandbox(jobs=30, seed=3, pending_share=0.0, faults={"drop": 0.5}) as sb:
        ids = ids_file(tmp_path, sb.job_ids)
        done = run_cli("fetch", ids, "--base-url", sb.base_url, "--retries", "0", token=sb.token)
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(io.StringIO(done.stdout), dtype=str)
    assert (df["error_code"] == codes.CONNECTION_ERROR).any() and df["status"].notna().any()


def test_sigint_writes_the_rows_so_far_as_csv_to_stdout_and_exits_130(slow_sandbox, tmp_path):
    ids = ids_file(tmp_path, slow_sandbox.job_ids)
    process = start_cli(
        "fetch", ids, "--base-url", slow_sandbox.base_url, "--max-workers", "4",
        token=slow_sandbox.token,
    )  # fmt: skip
    wait_for_requests(slow_sandbox, 20)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    df = pd.read_csv(io.StringIO(out), dtype=str)
    assert {"job_id", "status", "error_code"} <= set(df.columns)
    assert 1 <= len(df) < 400 and df["status"].notna().all()
    assert "Traceback" not in err


def test_sigint_writes_the_rows_so_far_to_out(slow_sandbox, tmp_path):
    ids = ids_file(tmp_path, slow_sandbox.job_ids)
    out = tmp_path / "jobs.csv"
    process = start_cli(
        "fetch", ids, "--out", str(out), "--base-url", slow_sandbox.base_url,
        "--max-workers", "4",
        token=slow_sandbox.token,
    )  # fmt: skip
    wait_for_requests(slow_sandbox, 20)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert 1 <= len(pd.read_csv(out, dtype=str)) < 400


def test_sigint_says_to_resume_with_the_same_command_and_checkpoint(slow_sandbox, tmp_path):
    ids = ids_file(tmp_path, slow_sandbox.job_ids)
    out = tmp_path / "jobs.csv"
    process = start_cli(
        "fetch", ids, "--out", str(out), "--base-url", slow_sandbox.base_url,
        "--max-workers", "4",
        token=slow_sandbox.token,
    )  # fmt: skip
    wait_for_requests(slow_sandbox, 20)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    hint = err.strip().splitlines()[-1]
    assert "--checkpoint" in hint
    command = shlex.split(hint.split(": ", 1)[1])
    assert command[:-2] == ["intercom-jobs", "fetch", ids, "--out", str(out),
                            "--base-url", slow_sandbox.base_url, "--max-workers", "4"]  # fmt: skip
    assert command[-2:] == ["--checkpoint", str(tmp_path / "jobs.sqlite")]


def test_a_second_sigint_while_writing_the_rows_still_exits_130(slow_sandbox, tmp_path):
    # Rows with a large column of the user's, and nobody reading stdout: the write of the rows
    # so far fills the pipe and blocks, so the second SIGINT lands while it is under way.
    ids = tmp_path / "ids.csv"
    note = "x" * 8000
    ids.write_text("job_id,note\n" + "".join(f"{i},{note}\n" for i in slow_sandbox.job_ids))
    process = start_cli(
        "fetch", str(ids), "--base-url", slow_sandbox.base_url, "--max-workers", "8",
        token=slow_sandbox.token,
    )  # fmt: skip
    wait_for_requests(slow_sandbox, 60)
    process.send_signal(signal.SIGINT)
    first = ""
    while "interrupted" not in first:
        first = process.stderr.readline()
        assert first, "the process ended before writing"
    time.sleep(0.5)  # into the blocked write
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted again" in err and "Traceback" not in err


def test_help_lists_the_exit_codes():
    for args in ([], ["fetch"], ["enqueue"]):
        done = run_cli(*args, "--help")
        assert done.returncode == 0
        for code in ("0", "2", "3", "4", "130"):
            assert re.search(rf"^\s+{code}\s+\w", done.stdout, re.MULTILINE), (args, code)


def test_fetch_help_says_the_token_comes_from_intercom_token():
    done = run_cli("fetch", "--help")
    assert done.returncode == 0 and "INTERCOM_TOKEN" in done.stdout


def test_every_option_help_says_what_it_does_and_its_default():
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, command in commands.choices.items():
        for action in command._actions:
            if action.option_strings and action.dest != "help":
                assert action.help and "default" in action.help, (name, action.dest)
                shown = command.format_help()
                assert action.option_strings[0] in shown


def test_version_prints_the_package_version():
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"intercom-jobs {ij.__version__}"


def test_a_missing_token_says_to_set_intercom_token(final_sandbox, tmp_path):
    ids = ids_file(tmp_path, final_sandbox.job_ids[:1])
    done = run_cli("fetch", ids, "--base-url", final_sandbox.base_url)
    assert done.returncode == 2
    assert "set INTERCOM_TOKEN" in done.stderr and "token=" not in done.stderr


def test_a_rejected_token_speaks_of_intercom_token_not_token_argument(final_sandbox, tmp_path):
    ids = ids_file(tmp_path, final_sandbox.job_ids[:1])
    done = run_cli("fetch", ids, "--base-url", final_sandbox.base_url, token="wrong")
    assert done.returncode == 3
    assert "INTERCOM_TOKEN" in done.stderr and "token=" not in done.stderr


def test_a_bad_option_value_is_named_by_its_flag(final_sandbox, tmp_path):
    ids = ids_file(tmp_path, final_sandbox.job_ids[:1])
    done = run_cli(
        "fetch", ids, "--base-url", final_sandbox.base_url, "--max-workers", "0",
        token=final_sandbox.token,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--max-workers must be" in done.stderr and "max_workers" not in done.stderr


def test_an_empty_ids_file_says_no_job_ids_and_exits_2(final_sandbox, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# nothing yet\n\n")
    done = run_cli("fetch", str(ids), "--base-url", final_sandbox.base_url, token="t")
    assert done.returncode == 2 and f"no job ids in {ids}" in done.stderr
    assert final_sandbox.stats["requests"] == 0


def test_empty_stdin_says_no_job_ids_and_exits_2(final_sandbox):
    done = run_cli("fetch", "-", "--base-url", final_sandbox.base_url, token="t", stdin="")
    assert done.returncode == 2 and "no job ids in stdin" in done.stderr
    assert final_sandbox.stats["requests"] == 0


def test_a_csv_ids_file_keeps_its_other_columns(final_sandbox, tmp_path):
    ids = tmp_path / "ids.csv"
    ids.write_text(
        f"job_id,order\n{final_sandbox.job_ids[0]},A-1\n{final_sandbox.job_ids[1]},B-2\n"
    )
    done = run_cli(
        "fetch", str(ids), "--base-url", final_sandbox.base_url, token=final_sandbox.token
    )
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(io.StringIO(done.stdout), dtype=str)
    assert df["order"].tolist() == ["A-1", "B-2"] and df["status"].notna().all()


def test_a_busy_sandbox_port_is_one_line_and_exits_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = run_cli("sandbox", "--port", str(busy.getsockname()[1]))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--port" in done.stderr


def test_an_invalid_sandbox_port_is_one_line_and_exits_2():
    done = run_cli("sandbox", "--port", "70000")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--port" in done.stderr


def test_the_summary_shows_shares_as_percentages(final_sandbox, tmp_path):
    ids = ids_file(tmp_path, final_sandbox.job_ids)
    done = run_cli("fetch", ids, "--base-url", final_sandbox.base_url, token=final_sandbox.token)
    assert done.returncode == 0, done.stderr
    assert re.search(r"\bsuccess\s+\d+\s+\d{1,3}\.\d%", done.stderr), done.stderr


# -- enqueue: tickets from a CSV, never two for one row ---------------------------------------


def tickets_csv(tmp_path, n: int = 3, *, bad: int = 0) -> str:
    """``n`` rows with a contact and a title, then ``bad`` rows without a contact."""
    path = tmp_path / "tickets.csv"
    rows = [f"t{i},user{i}@example.com,Ticket {i}" for i in range(n)]
    rows += [f"bad{i},,No contact {i}" for i in range(bad)]
    path.write_text("key,contact_email,title\n" + "\n".join(rows) + "\n")
    return str(path)


def enqueue_args(sb, rows: str, ledger, *more: str) -> list[str]:
    return ["enqueue", rows, "--ticket-type-id", "88", "--ledger", str(ledger),
            "--base-url", sb.base_url, *more]  # fmt: skip


@pytest.fixture
def ticket_sandbox():
    """A sandbox whose enqueued jobs succeed at once (no failed share): each makes a ticket."""
    with Sandbox(jobs=5, enqueue_pending_seconds=(0.0, 0.0)) as sb:
        yield sb


def test_enqueue_writes_each_row_with_its_job_id(ticket_sandbox, tmp_path):
    sb = ticket_sandbox
    out = tmp_path / "outcomes.csv"
    rows = tickets_csv(tmp_path, 3, bad=1)
    done = run_cli(*enqueue_args(sb, rows, tmp_path / "l.sqlite", "--out", str(out)),
                   token=sb.token)  # fmt: skip
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(out, dtype=str)
    assert df["key"].tolist() == ["t0", "t1", "t2", "bad0"]
    assert df["enqueue_status"].tolist() == ["enqueued"] * 3 + ["rejected"]
    assert df["job_id"].iloc[:3].notna().all() and df["job_id"].iloc[3:].isna().all()
    assert df["title"].tolist() == ["Ticket 0", "Ticket 1", "Ticket 2", "No contact 0"]
    assert sb.enqueued == 3
    assert re.search(r"enqueue_status\s+enqueued\s+3\s+75\.0%", done.stderr), done.stderr
    assert "invalid_row" in done.stderr and str(out) in done.stderr


def test_enqueue_writes_csv_to_stdout_without_out(ticket_sandbox, tmp_path):
    sb = ticket_sandbox
    done = run_cli(*enqueue_args(sb, tickets_csv(tmp_path, 2), tmp_path / "l.sqlite"),
                   token=sb.token)  # fmt: skip
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(io.StringIO(done.stdout), dtype=str)
    assert df["enqueue_status"].tolist() == ["enqueued", "enqueued"]


def test_enqueue_again_with_the_same_ledger_sends_nothing_new(ticket_sandbox, tmp_path):
    sb = ticket_sandbox
    rows, ledger = tickets_csv(tmp_path, 4), tmp_path / "tickets.sqlite"
    first = run_cli(*enqueue_args(sb, rows, ledger), token=sb.token)
    assert first.returncode == 0, first.stderr
    assert sb.enqueued == 4
    again = run_cli(*enqueue_args(sb, rows, ledger), token=sb.token)
    assert again.returncode == 0, again.stderr
    assert sb.enqueued == 4
    before = pd.read_csv(io.StringIO(first.stdout), dtype=str)
    after = pd.read_csv(io.StringIO(again.stdout), dtype=str)
    assert after["job_id"].tolist() == before["job_id"].tolist()
    assert (after["enqueue_status"] == "enqueued").all()


def test_enqueue_without_a_ledger_is_refused_and_says_why(ticket_sandbox, tmp_path):
    sb = ticket_sandbox
    done = run_cli("enqueue", tickets_csv(tmp_path), "--base-url", sb.base_url, token=sb.token)
    assert done.returncode == 2
    assert "--ledger" in done.stderr
    assert sb.stats["requests"] == 0 and sb.enqueued == 0
    help_text = run_cli("enqueue", "--help").stdout
    assert "makes a rerun safe" in " ".join(help_text.split())


@pytest.mark.parametrize("where", ["missing", "unwritable"])
def test_enqueue_out_that_cannot_be_written_is_refused_before_any_request(
    ticket_sandbox, tmp_path, where
):
    sb = ticket_sandbox
    folder = tmp_path / "no-such-folder" if where == "missing" else unwritable_folder(tmp_path)
    done = run_cli(
        *enqueue_args(sb, tickets_csv(tmp_path), tmp_path / "l.sqlite",
                      "--out", str(folder / "outcomes.csv")),
        token=sb.token,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--out" in done.stderr
    assert sb.stats["requests"] == 0 and sb.enqueued == 0


def test_enqueue_wait_gives_each_job_its_status(tmp_path):
    with Sandbox(jobs=5, enqueue_pending_seconds=(0.2, 0.5), enqueue_failed_share=0.3) as sb:
        out = tmp_path / "outcomes.csv"
        done = run_cli(
            *enqueue_args(sb, tickets_csv(tmp_path, 6, bad=1), tmp_path / "l.sqlite",
                          "--wait", "--poll-interval", "0.1", "--out", str(out)),
            token=sb.token,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(out, dtype=str)
    assert len(df) == 7
    enqueued = df[df["enqueue_status"] == "enqueued"]
    assert len(enqueued) == 6 and set(enqueued["status"]) <= {"success", "failed"}
    assert df.loc[df["key"] == "bad0", "enqueue_status"].tolist() == ["rejected"]
    # The status part of the summary (every status listed, as `ij.summarize` lists them).
    assert re.search(r"^(status)?\s+success\s+[1-9]\d*\s+\d+\.\d%$", done.stderr, re.MULTILINE), (
        done.stderr
    )


def test_enqueue_tickets_fetches_the_tickets_made(ticket_sandbox, tmp_path):
    sb = ticket_sandbox
    done = run_cli(
        *enqueue_args(sb, tickets_csv(tmp_path, 3), tmp_path / "l.sqlite",
                      "--tickets", "--poll-interval", "0.1"),
        token=sb.token,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    df = pd.read_csv(io.StringIO(done.stdout), dtype=str)
    assert (df["status"] == "success").all()
    made = {t["ticket_id"] for t in sb.tickets}
    assert len(made) == 3 and set(df["ticket_id"]) == {str(t) for t in made}


def test_enqueue_with_a_rejected_token_exits_3(ticket_sandbox, tmp_path):
    sb = ticket_sandbox
    done = run_cli(*enqueue_args(sb, tickets_csv(tmp_path), tmp_path / "l.sqlite"), token="wrong")
    assert done.returncode == 3
    assert "INTERCOM_TOKEN" in done.stderr and "Traceback" not in done.stderr
    assert sb.enqueued == 0


def test_enqueue_against_an_unreachable_intercom_exits_4(tmp_path):
    base_url = f"http://127.0.0.1:{closed_port()}"
    done = run_cli(
        "enqueue", tickets_csv(tmp_path), "--ticket-type-id", "88",
        "--ledger", str(tmp_path / "l.sqlite"), "--base-url", base_url, "--retries", "0",
        token="any-token",
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert f"cannot reach Intercom at {base_url}" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_enqueue_whose_every_request_goes_unanswered_exits_4(tmp_path):
    with Sandbox(jobs=5, faults={"drop": 1.0}) as sb:  # GET /me answers; every enqueue drops
        out = tmp_path / "outcomes.csv"
        ledger = tmp_path / "l.sqlite"
        done = run_cli(
            *enqueue_args(sb, tickets_csv(tmp_path, 3, bad=1), ledger, "--retries", "0",
                          "--out", str(out)),
            token=sb.token,
        )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert f"cannot reach Intercom at {sb.base_url}" in done.stderr
    assert str(ledger) in done.stderr and "resend_unknown" not in done.stderr
    df = pd.read_csv(out, dtype=str)  # with --out, the rows say which may have made a ticket
    assert df["enqueue_status"].tolist() == ["unknown"] * 3 + ["rejected"]


def test_enqueue_sigint_writes_the_rows_so_far_and_the_same_command_resumes(tmp_path):
    n = 300
    with Sandbox(jobs=5, latency=0.05) as sb:
        rows, ledger = tickets_csv(tmp_path, n), tmp_path / "tickets.sqlite"
        args = enqueue_args(sb, rows, ledger, "--max-workers", "4")
        process = start_cli(*args, token=sb.token)
        wait_for_requests(sb, 20)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "Traceback" not in err
        first = pd.read_csv(io.StringIO(out), dtype=str)
        assert len(first) == n
        assert set(first["enqueue_status"]) <= {"enqueued", "not_sent", "unknown"}
        assert 1 <= (first["enqueue_status"] == "enqueued").sum() < n
        hint = err.strip().splitlines()[-1]
        assert "same command" in hint and str(ledger) in hint

        again = run_cli(*args, token=sb.token)
        assert again.returncode == 0, again.stderr
        df = pd.read_csv(io.StringIO(again.stdout), dtype=str)
        assert df["key"].tolist() == first["key"].tolist()
        # What the first run got an answer for is kept, not sent again; the rows never sent are
        # sent now; a row whose request was cut off in flight (4 at most) stays unknown: it may
        # have made a ticket, and is not resent without --resend-unknown.
        kept = first["enqueue_status"] == "enqueued"
        assert df.loc[kept, "job_id"].tolist() == first.loc[kept, "job_id"].tolist()
        assert set(df["enqueue_status"]) <= {"enqueued", "unknown"}
        enqueued = int((df["enqueue_status"] == "enqueued").sum())
        unknown = int((df["enqueue_status"] == "unknown").sum())
        assert unknown <= 4 + (first["enqueue_status"] == "unknown").sum()
        assert df.loc[df["enqueue_status"] == "enqueued", "job_id"].is_unique
        assert enqueued <= sb.enqueued <= enqueued + unknown  # no row made two tickets


def test_the_command_line_keeps_to_its_budget_share(tmp_path):
    with Sandbox(jobs=60, pending_share=0.0, rate_limit=20, window=1) as sb:
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(sb.job_ids) + "\n")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "intercom_jobs_nb",
                "fetch",
                str(ids),
                "--base-url",
                sb.base_url,
                "--budget-share",
                "0.5",
                "--out",
                str(tmp_path / "out.csv"),
            ],
            env={**os.environ, "INTERCOM_TOKEN": sb.token, "TQDM_DISABLE": "1"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        served = [w["served"] for w in sb.stats["windows"]][1:-1]
    assert done.returncode == 0, done.stderr
    assert served and max(served) <= 10
