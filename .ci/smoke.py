"""Smoke test of an installed intercom-jobs-nb, run by .ci/run with the python of a fresh
virtualenv that has only the built wheel installed, from a folder outside the checkout: so it
imports the wheel, and fails if the wheel lacks a module or a file the package needs.

    cd "$(mktemp -d)" && /path/to/venv/bin/python /path/to/checkout/.ci/smoke.py

It checks: the import comes from site-packages, the version is the metadata's, every public name
imports, ``py.typed`` ships, the sandbox answers a fetch, an enqueue with its ledger, a Parquet
export and the JobsPanel's first refresh, and the ``intercom-jobs`` command runs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import intercom_jobs_nb as ij


def check(condition: object, what: str) -> None:
    if not condition:
        sys.exit(f"smoke test failed: {what}")
    print(f"ok: {what}")


def main() -> None:
    os.environ.pop("INTERCOM_TOKEN", None)  # only the sandbox is asked
    os.environ["TQDM_DISABLE"] = "1"
    package = Path(ij.__file__).resolve().parent
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    check(package.parent == site, f"imported from the installed wheel ({package})")
    version = importlib.metadata.version("intercom-jobs-nb")
    check(ij.__version__ == version != "0+unknown", f"version {ij.__version__}")
    check(all(hasattr(ij, name) for name in ij.__all__), f"{len(ij.__all__)} public names")
    files = importlib.resources.files("intercom_jobs_nb")
    check(files.joinpath("py.typed").is_file(), "py.typed is in the wheel")
    check(files.joinpath("sandbox").joinpath("__init__.py").is_file(), "the sandbox is in it")
    static = files.joinpath("static")
    check(
        all(static.joinpath(name).is_file() for name in ("panel.js", "panel.css")),
        "the panel's front end (static/panel.js, panel.css) is in it",
    )

    work = Path(tempfile.mkdtemp(prefix="ij-smoke-"))
    os.chdir(work)
    with ij.Sandbox(jobs=200, pending_share=0.0, enqueue_pending_seconds=(0.0, 0.0)) as sb:
        options = {"token": sb.token, "base_url": sb.base_url, "progress": False}
        df = ij.fetch_jobs(sb.job_ids, **options)
        check(len(df) == 200 and df["final"].all(), "fetch_jobs: 200 jobs from the sandbox")
        check(ij.summarize(df) is not None, "summarize")
        path = ij.export_parquet(df, work / "jobs.parquet")
        check(Path(path).stat().st_size > 0, "export_parquet")

        rows = [{"key": f"K-{n}", "contact_email": f"u{n}@example.com", "title": f"T{n}"}
                for n in range(5)]  # fmt: skip
        out = ij.enqueue_tickets(rows, ledger=work / "tickets.sqlite", ticket_type_id="88",
                                 **options)  # fmt: skip
        out = ij.wait_for_jobs(out, tickets=True, poll_interval=0.2, **options)
        check((out["enqueue_status"] == "enqueued").all(), "enqueue_tickets with a ledger")
        check(out["ticket_id"].notna().all(), "wait_for_jobs(tickets=True): every ticket")
        again = ij.enqueue_tickets(rows, ledger=work / "tickets.sqlite", ticket_type_id="88",
                                   **options)  # fmt: skip
        check(len(sb.tickets) == 5 and again["job_id"].equals(out["job_id"]),
              "the ledger: sent again, nothing sent twice")  # fmt: skip

        panel = ij.JobsPanel(sb.job_ids[:20], base_url=sb.base_url)
        panel.refresh(token=sb.token)  # what typing the token and clicking Refresh do
        panel.wait(timeout=60)
        check(len(panel.df) == 20, "the JobsPanel's first refresh")

    command = Path(sys.executable).parent / "intercom-jobs"
    shown = subprocess.run([str(command), "--version"], capture_output=True, text=True)
    check(shown.returncode == 0 and version in shown.stdout + shown.stderr, "intercom-jobs")
    print("smoke test passed")


if __name__ == "__main__":
    main()
