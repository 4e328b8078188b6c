"""Reading a file of millions of job ids: how soon the first request leaves, and its memory.

    python benchmarks/bench_read_ids.py            # 5,000,000 ids, .csv and .txt (~2 min)
    python benchmarks/bench_read_ids.py --quick    # a smoke run: 200,000 ids (~15 s)

Each measured run is a fresh process running the CLI as a person would,
``intercom-jobs fetch FILE --base-url http://127.0.0.1:PORT`` (its progress bar on), against a stub
server in this process that notes when the first request arrives and answers every request 401
(Intercom's ``unauthorized``): the run stops after that one request, so the process's peak
resident set (``ru_maxrss``, from ``os.wait4``) is what reading the file and starting the run
took. The baselines, measured in the same run on the same files, each in a fresh process:

* ``import``: ``python -c "import intercom_jobs_nb"`` (the fixed start-up cost: Python, pandas,
  pyarrow);
* ``plain csv``: the same import, then the ids read into a list of str with the standard
  library's ``csv`` module (the least any reader that hands over Python strings does);
* ``per-id reader (before)``: the .csv read as the toolkit read it before this script (pandas'
  ``read_csv``, then every id checked and made distinct in Python), once, no request.

Printed: the seconds from the process's start to the first request, the peak memory, and the
ratios to the baselines. No target is asserted on time (the machine decides it); the script
exits 1 only if a run did not send its request or did not end with exit code 3.
"""

from __future__ import annotations

import argparse
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from _common import ROOT, machine, median, table, verdict

SANDBOX_TOKEN = "bench-read-ids-token"
PLAIN_CSV = """
import csv, sys
import intercom_jobs_nb
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    rows = csv.reader(f)
    next(rows)
    ids = [row[0] for row in rows]
print(len(ids))
"""
IMPORT_ONLY = "import intercom_jobs_nb"
# The reader before pyarrow (pandas, then each id checked and made distinct in Python): read
# once here; the CLI then read the ids a second time, so its first request came later still.
PER_ID_READER = """
import sys
import pandas as pd
from intercom_jobs_nb._ids import read_job_ids
frame = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False, encoding="utf-8-sig")
print(len(read_job_ids(frame)))
"""


class _FirstRequest(http.server.BaseHTTPRequestHandler):
    """Notes when the first request arrives; answers every request 401 ``unauthorized``."""

    first: float | None = None
    count = 0
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        now = time.perf_counter()
        with self.lock:
            type(self).count += 1
            if type(self).first is None:
                type(self).first = now
        body = (
            b'{"type":"error.list","request_id":"bench","errors":'
            b'[{"code":"unauthorized","message":"Access Token Invalid"}]}'
        )
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def write_files(folder: str, n: int) -> dict[str, str]:
    """``n`` distinct numeric ids as a one-column .csv with a header and as a .txt."""
    paths = {"csv": os.path.join(folder, "ids.csv"), "txt": os.path.join(folder, "ids.txt")}
    first = 10_000_000
    block = 100_000
    with open(paths["csv"], "w", encoding="utf-8") as c, open(paths["txt"], "w") as t:
        c.write("job_id\n")
        for start in range(0, n, block):
            text = "\n".join(str(first + i) for i in range(start, min(n, start + block))) + "\n"
            c.write(text)
            t.write(text)
    return paths


def measure(argv: list[str], env: dict[str, str], server: type[_FirstRequest] | None) -> dict:
    """Run ``argv`` in a fresh process: wall seconds to its end (or to the first request
    ``server`` saw), its peak resident set, its exit code."""
    if server is not None:
        server.first, server.count = None, 0
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: nothing blocks the child
        started = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)
        ended = time.perf_counter()
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    out: dict[str, Any] = {
        "end": ended - started,
        "rss": usage.ru_maxrss * 1024,
        "code": proc.returncode,
        "stderr": stderr,
    }
    if server is not None:
        out["first"] = None if server.first is None else server.first - started
        out["requests"] = server.count
    return out


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--ids", type=int, default=None, help="how many ids (default 5,000,000)")
    parser.add_argument("--rounds", type=int, default=None, help="runs of each (default 3)")
    args = parser.parse_args(argv)
    n = args.ids or (200_000 if args.quick else 5_000_000)
    rounds = args.rounds or (1 if args.quick else 3)
    print(f"bench_read_ids: {n:,} ids, medians of {rounds} fresh processes; {machine()}")

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FirstRequest)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    env = {**os.environ, "INTERCOM_TOKEN": SANDBOX_TOKEN, "PYTHONPATH": ROOT}
    cli = [sys.executable, "-m", "intercom_jobs_nb._cli"]
    failures: list[str] = []
    results: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-read-ids-") as folder:
            paths = write_files(folder, n)
            size = os.path.getsize(paths["csv"])
            print(f"  files: {paths['csv']} ({size / 1e6:,.0f} MB) and the same ids as .txt")
            runs: dict[str, list[dict]] = {}
            plan = [
                ("import", [sys.executable, "-c", IMPORT_ONLY], None),
                ("plain csv", [sys.executable, "-c", PLAIN_CSV, paths["csv"]], None),
                ("per-id reader (before)", [sys.executable, "-c", PER_ID_READER, paths["csv"]],
                 None),
            ]  # fmt: skip
            for kind in ("csv", "txt"):
                command = [*cli, "fetch", paths[kind], "--base-url", base_url]  # a bar, as a user
                plan.append((f"fetch .{kind}", command, _FirstRequest))
            for _ in range(rounds):
                for name, command, server in plan:
                    got = measure(command, env, server)
                    runs.setdefault(name, []).append(got)
                    if server is not None and (got["code"] != 3 or got["requests"] != 1):
                        failures.append(
                            f"{name}: exit {got['code']}, {got['requests']} requests "
                            f"(expected 3 and 1): {got['stderr'][-500:]}"
                        )
                    elif server is None and got["code"] != 0:
                        failures.append(f"{name}: exit {got['code']}: {got['stderr'][-500:]}")
            for name, got in runs.items():
                results[name] = {
                    "time": median(
                        [g["first"] or g["end"] if "first" in g else g["end"] for g in got]
                    ),  # fmt: skip
                    "end": median([g["end"] for g in got]),
                    "rss": median([g["rss"] for g in got]),
                }
    finally:
        httpd.shutdown()
        httpd.server_close()

    base = results["import"]
    plain = results["plain csv"]
    print()
    print(
        table(
            ["run", "s to first request (or end)", "peak RSS", "x plain csv time",
             "x plain csv RSS", "above import: s", "above import: RSS"],
            [
                [
                    name,
                    f"{r['time']:.2f}",
                    mb(r["rss"]),
                    f"{r['time'] / plain['time']:.2f}x",
                    f"{r['rss'] / plain['rss']:.2f}x",
                    f"{r['time'] - base['time']:.2f}",
                    mb(r["rss"] - base["rss"]),
                ]
                for name, r in results.items()
            ],
        )
    )  # fmt: skip
    before = results["per-id reader (before)"]
    for kind in ("csv", "txt"):
        r = results[f"fetch .{kind}"]
        print(
            f"fetch .{kind}: its first request left {before['time'] / r['time']:.1f}x sooner than "
            f"the per-id reader (before) had even read the ids, at "
            f"{r['rss'] / before['rss']:.2f}x its peak memory"
        )
    print()
    print(
        table(
            ["check", "verdict"],
            [["each fetch sent exactly one request, then exit 3", verdict(not failures)]],
            align="ll",
        )
    )  # fmt: skip
    for failure in failures:
        print(f"  {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
