"""The sandbox tells its ticket types, and the docs' and ``--help``'s enqueue examples run
against it as written (only pointed at the sandbox: ``--base-url``, ``INTERCOM_TOKEN``)."""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
import requests

import intercom_jobs_nb as ij
from intercom_jobs_nb import _cli as cli
from intercom_jobs_nb.sandbox import DEFAULT_TICKET_TYPES, Sandbox

ROOT = Path(__file__).resolve().parent.parent
# The README and the docs' pages (the enqueue examples live in docs/guides/cli.md and
# docs/guides/tickets.md; tests/test_docs.py runs every page's Python blocks too).
README = "\n".join(
    page.read_text(encoding="utf-8")
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    if not {"_build", "examples"} & set(page.relative_to(ROOT).parts)
)
TICKETS = (
    "key,contact_email,title,description\n"
    "T-1,ada@example.com,Printer on fire,Third floor\n"
    "T-2,alan@example.com,Cannot log in,Since Monday\n"
)


def shell_commands(text: str, program: str) -> list[list[str]]:
    """The ``program ...`` commands of the README's bash blocks: continuation lines joined,
    comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            if line.strip().startswith(program):
                commands.append(shlex.split(line, comments=True))
    return commands


@pytest.fixture
def ticket_sandbox(tmp_path, monkeypatch):
    """A sandbox whose enqueued jobs succeed at once; the README's tickets.csv in the cwd."""
    with Sandbox(jobs=3, enqueue_pending_seconds=(0.0, 0.0)) as sb:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("INTERCOM_TOKEN", sb.token)
        (tmp_path / "tickets.csv").write_text(TICKETS)
        yield sb


def test_the_sandbox_says_which_ticket_types_it_accepts():
    with Sandbox(jobs=1) as sb:
        assert sb.ticket_types == DEFAULT_TICKET_TYPES == {"88": "Bug report"}
    assert '``"88"``' in (Sandbox.__doc__ or "") and "ticket_types" in (Sandbox.__doc__ or "")
    with Sandbox(jobs=1, ticket_types={"7": "Question"}) as sb:
        assert sb.ticket_types == {"7": "Question"}


def test_the_sandbox_command_prints_the_ticket_types_it_accepts():
    process = subprocess.Popen(
        [sys.executable, "-m", "intercom_jobs_nb", "sandbox", "--jobs", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("Ctrl-C"):
            lines.append(process.stdout.readline())  # type: ignore[union-attr]
            assert lines[-1], f"the sandbox ended early: {lines}"
        base_url = lines[0].split()[3]
        token = lines[1].split("INTERCOM_TOKEN=")[1].split()[0]
        (shown,) = [line for line in lines if "ticket types:" in line]
        printed = re.findall(r"(\d+) \(([^)]*)\)", shown)
        assert printed == [("88", "Bug report")]
        headers = {"Authorization": f"Bearer {token}"}
        body = {"contacts": [{"email": "ada@example.com"}]}
        for type_id, _ in printed:  # each printed type is accepted, and only those
            answer = requests.post(f"{base_url}/tickets/enqueue", headers=headers,
                                   json={**body, "ticket_type_id": type_id}, timeout=5)  # fmt: skip
            assert answer.status_code == 200, answer.text
        refused = requests.post(f"{base_url}/tickets/enqueue", headers=headers,
                                json={**body, "ticket_type_id": "1234"}, timeout=5)  # fmt: skip
        assert refused.status_code == 400 and "Ticket type not found" in refused.text
    finally:
        process.send_signal(subprocess.signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_every_ticket_type_in_the_readme_and_the_help_is_one_the_sandbox_knows():
    named = re.findall(
        r'ticket_type_id="(\w+)"|--ticket-type-id (\w+)', README + cli.ENQUEUE_EXAMPLE
    )
    named = [a or b for a, b in named]
    assert named and set(named) <= set(DEFAULT_TICKET_TYPES), named


def check_outcomes(sb: Sandbox, out: pd.DataFrame) -> None:
    assert out["enqueue_status"].tolist() == ["enqueued", "enqueued"]
    assert out["status"].tolist() == ["success", "success"]
    assert out["ticket_type"].tolist() == ["Bug report", "Bug report"]
    assert sb.count_tickets(by="title") == {"Printer on fire": 1, "Cannot log in": 1}


def test_the_readme_enqueue_command_runs_against_the_sandbox(ticket_sandbox, tmp_path):
    (command,) = shell_commands(README, "intercom-jobs enqueue")
    assert cli.main([*command[1:], "--base-url", ticket_sandbox.base_url, "--no-progress"]) == 0
    check_outcomes(ticket_sandbox, pd.read_csv(tmp_path / "outcomes.csv", dtype=str))


def test_the_help_enqueue_example_runs_against_the_sandbox(ticket_sandbox, tmp_path):
    (command,) = shell_commands(f"```bash\n{cli.ENQUEUE_EXAMPLE}\n```", "intercom-jobs enqueue")
    argv = [ticket_sandbox.base_url if word == "http://127.0.0.1:8000" else word
            for word in command[1:]]  # fmt: skip
    assert ticket_sandbox.base_url in argv
    assert cli.main([*argv, "--no-progress"]) == 0
    check_outcomes(ticket_sandbox, pd.read_csv(tmp_path / "outcomes.csv", dtype=str))


def test_the_readme_python_enqueue_example_runs_against_the_sandbox(ticket_sandbox):
    """The "From a spreadsheet to tickets" block, as written; its calls get the sandbox's
    ``base_url`` (which overrides ``region``) and no progress bar."""
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.S)
                if 'ij.enqueue_tickets("tickets.csv"' in b]  # fmt: skip
    sandboxed = {
        name: functools.partial(
            getattr(ij, name), base_url=ticket_sandbox.base_url, progress=False
        )  # fmt: skip
        for name in ("enqueue_tickets", "wait_for_jobs", "fetch_tickets")
    }
    names: dict = {}
    exec(block.replace("import intercom_jobs_nb as ij", ""),  # noqa: S102 (the README's code)
         {"ij": types.SimpleNamespace(**sandboxed)}, names)  # fmt: skip
    check_outcomes(ticket_sandbox, names["out"].astype({"status": str}))
