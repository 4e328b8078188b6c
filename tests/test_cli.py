"""The intercom-jobs command: fetch, sandbox and demo, as a user runs them."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import requests

from intercom_jobs_nb import cli


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
