"""Enqueue, wait, fetch tickets: throughput against a thread pool, the rate-limit budget, integrity.

    python benchmarks/bench_enqueue.py            # 2,000 rows x3, then 600 paced (~1.5 min)
    python benchmarks/bench_enqueue.py --quick    # smoke run: 300 rows x1, 80 paced (~20 s)

The whole flow a user runs, each call with its defaults (32 workers) and ``progress=False``:
``ij.enqueue_tickets(rows, ledger=<a fresh SQLite file>, ticket_type_id="88", ...)``, then
``ij.wait_for_jobs(out, poll_interval=0.5, ...)``, then ``ij.fetch_tickets(...)``. Each row has
a unique key in ``attr:row_key`` (a ticket attribute), so the sandbox can count the tickets made
per row. The sandbox runs in a child process, so the CPU time measured here
(``time.process_time()``, all threads of this process) is the client's only; its enqueued jobs
are pending for ``uniform(0.2, 1.0)`` seconds, then succeed and make their ticket.

1. Throughput. A sandbox with 20 ms latency per answer and a rate limit too large to matter.
   Each round, on a fresh sandbox each (so no ticket of one counts against the other), in turn:
   (a) the three calls above; (b) a hand-written pool, ``ThreadPoolExecutor(16)`` with one
   ``requests.Session`` per thread, doing the same requests: ``POST /tickets/enqueue`` with the
   same bodies (built in the timed stage by ``intercom_jobs_nb._enqueue.ticket_bodies``), then
   ``GET /jobs/status/{id}`` in passes ``poll_interval`` apart until no job is pending, then
   ``GET /tickets/{id}`` for each successful job. The rate (input rows per second) and client
   CPU per row of each stage; the median of the rounds. Target: each stage (a)/(b) >= 1.2x.
   With 2,000 rows every job is final by its first status request (one pass each side); with
   fewer (``--quick``) the rows are enqueued faster than the jobs finish, jobs are polled again,
   and the wait stage then measures mostly the jobs' pending time, not the client.
   (a) also keeps a ledger (two SQLite writes per row) and checks the token's workspace
   (one ``GET /me``, for the ledger); (b) does neither.
2. Budget. The same flow against a sandbox allowing ``--limit`` requests per 2-second window
   (no latency). From the sandbox's per-window counters, as ``bench_ratelimit.py``: the share
   of the budget used in each FULL window (the first, partial window and the last one are left
   out; a full window with no request counts as 0%). Targets: 0 requests answered 429, and
   >= 95% of the budget used over the full windows (their total against ``limit`` x their
   number; the lowest single window is shown too).
3. Integrity, for every run of (a) (each round and the budget run), from the sandbox's own
   counts: 0 duplicate tickets (``count_tickets(by="row_key")``: no key above 1) and 0 lost
   rows: every input row in each output frame, every enqueued row's job final, every
   successful job's ticket fetched (HTTP 200, the right ``row_key``), and exactly one ticket
   in the sandbox per input row.

This script reports; it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import requests
from _common import RemoteSandbox, machine, median, table, verdict

import intercom_jobs_nb as ij
from intercom_jobs_nb._enqueue import ENQUEUE_PATH, ticket_bodies

LATENCY = 0.02
POOL_THREADS = 16
POLL_INTERVAL = 0.5
PENDING = (0.2, 1.0)
TICKET_TYPE = "88"  # the sandbox's default ticket type
WINDOW = 2
THROUGHPUT_TARGET = 1.2
BUDGET_TARGET = 0.95
STAGES = ("enqueue", "wait", "fetch")


def make_rows(n: int, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "key": f"{prefix}-{i:05d}",
            "contact_email": f"user{i}@example.com",
            "title": f"Benchmark ticket {i}",
            "description": "Made by bench_enqueue.py",
            "attr:row_key": f"{prefix}-{i:05d}",
        }
        for i in range(n)
    ]


# -- (a) the toolkit ---------------------------------------------------------------------------


def ours_flow(
    rows: list[dict[str, Any]], sb: RemoteSandbox, ledger: str, lap: Callable[[str], None]
) -> dict[str, pd.DataFrame]:
    """The three calls; ``lap(stage)`` after each (the timing is the caller's)."""
    where = {"token": sb.token, "base_url": sb.base_url, "progress": False}
    out = ij.enqueue_tickets(rows, ledger=ledger, ticket_type_id=TICKET_TYPE, **where)
    lap("enqueue")
    waited = ij.wait_for_jobs(out, poll_interval=POLL_INTERVAL, timeout=300, **where)
    lap("wait")
    fetched = ij.fetch_tickets(waited, **where)
    lap("fetch")
    return {"enqueue": out, "wait": waited, "fetch": fetched}


# -- (b) a hand-written pool -------------------------------------------------------------------


class Pool:
    """``ThreadPoolExecutor(16)``, a ``requests.Session`` per thread, kept for all three stages."""

    def __init__(self, sb: RemoteSandbox) -> None:
        self.base = sb.base_url
        self.headers = {
            "Authorization": f"Bearer {sb.token}",
            "Accept": "application/json",
            "Intercom-Version": "2.15",
        }
        self.local = threading.local()
        self.sessions: list[requests.Session] = []
        self.executor = ThreadPoolExecutor(POOL_THREADS)

    def session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
            session.headers.update(self.headers)
            self.sessions.append(session)
        return session

    def close(self) -> None:
        self.executor.shutdown()
        for session in self.sessions:
            session.close()

    def enqueue(self, rows: list[dict[str, Any]]) -> list[str | None]:
        _, _, bodies = ticket_bodies(rows, ticket_type_id=TICKET_TYPE)
        encoded = [json.dumps(b, separators=(",", ":")).encode() for b in bodies]
        url = self.base + ENQUEUE_PATH
        content = {"Content-Type": "application/json"}

        def post(body: bytes) -> str | None:
            answer = self.session().post(url, data=body, headers=content, timeout=30)
            return answer.json().get("id") if answer.status_code == 200 else None

        return list(self.executor.map(post, encoded))

    def wait(self, job_ids: list[str | None]) -> dict[str, dict]:
        base = self.base + "/jobs/status/"

        def get(job_id: str) -> dict:
            return self.session().get(base + job_id, timeout=30).json()

        final: dict[str, dict] = {}
        todo = [j for j in job_ids if j]
        while True:
            answers = list(self.executor.map(get, todo))
            pending = []
            for job_id, answer in zip(todo, answers, strict=True):
                if answer.get("status") == "pending":
                    pending.append(job_id)
                else:
                    final[job_id] = answer
            if not pending:
                return final
            todo = pending
            time.sleep(POLL_INTERVAL)

    def fetch(self, jobs: dict[str, dict]) -> list[dict]:
        base = self.base + "/tickets/"
        ids = [j["resource_id"] for j in jobs.values() if j.get("status") == "success"]

        def get(ticket_id: str) -> dict:
            return self.session().get(base + ticket_id, timeout=30).json()

        return list(self.executor.map(get, ids))


def pool_flow(
    rows: list[dict[str, Any]], sb: RemoteSandbox, lap: Callable[[str], None]
) -> dict[str, int]:
    pool = Pool(sb)
    try:
        job_ids = pool.enqueue(rows)
        lap("enqueue")
        jobs = pool.wait(job_ids)
        lap("wait")
        tickets = pool.fetch(jobs)
        lap("fetch")
    finally:
        pool.close()
    return {
        "not_enqueued": sum(1 for j in job_ids if not j),
        "not_success": sum(1 for j in jobs.values() if j.get("status") != "success"),
        "tickets": sum(1 for t in tickets if t.get("type") == "ticket"),
    }


# -- measuring ---------------------------------------------------------------------------------


class Laps:
    """Wall and CPU time of each stage: ``lap(stage)`` closes the stage begun at the last one."""

    def __init__(self) -> None:
        gc.collect()
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def __call__(self, stage: str) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.wall[stage] = wall - self._wall
        self.cpu[stage] = cpu - self._cpu
        self._wall, self._cpu = time.perf_counter(), time.process_time()


def integrity(rows: list[dict[str, Any]], frames: dict[str, pd.DataFrame], sb: RemoteSandbox):
    """Duplicates and lost rows of one run of (a), from its frames and the sandbox's counts."""
    keys = {r["key"] for r in rows}
    n = len(rows)
    counts = sb.count_tickets(by="row_key")
    duplicates = sum(1 for k, c in counts.items() if c > 1)
    extra = sum(c for k, c in counts.items() if k not in keys)  # tickets of no input row
    out, waited, fetched = frames["enqueue"], frames["wait"], frames["fetch"]
    missing_rows = sum(
        len(keys - set(frame["key"].astype(str))) + abs(len(frame) - n)
        for frame in (out, waited, fetched)
    )
    enqueued = waited["enqueue_status"].astype(str) == "enqueued"
    not_final = int((enqueued & ~waited["final"].fillna(False).astype(bool)).sum())
    success = (fetched["status"] == "success").fillna(False)
    good_ticket = (fetched["ticket_http_status"] == 200).fillna(False) & (
        fetched["attr:row_key"].astype(str) == fetched["key"].astype(str)
    )
    not_fetched = int((success & ~good_ticket).sum())
    no_ticket = sum(1 for k in keys if counts.get(k, 0) == 0)
    return {
        "rows": n,
        "duplicates": duplicates,
        "extra": extra,
        "missing_rows": missing_rows,
        "not_enqueued": int((~enqueued).sum()),
        "not_final": not_final,
        "not_success": int((~success).sum()),
        "not_fetched": not_fetched,
        "no_ticket": no_ticket,
        "sandbox_jobs": sb.enqueued(),
        "tickets": sum(counts.values()),
    }


def lost(check: dict[str, int]) -> int:
    return (
        check["missing_rows"]
        + check["not_enqueued"]
        + check["not_final"]
        + check["not_fetched"]
        + check["no_ticket"]
    )


def throughput_round(n: int, r: int, workdir: str) -> dict[str, Any]:
    config = {
        "jobs": 0,
        "seed": r,
        "latency": LATENCY,
        "rate_limit": 1_000_000_000,
        "window": 10,
        "enqueue_pending_seconds": PENDING,
        "max_seconds": 900,
    }
    with RemoteSandbox(**config) as sb_ours, RemoteSandbox(**config) as sb_pool:
        rows = make_rows(n, f"r{r}")
        ours = Laps()
        frames = ours_flow(rows, sb_ours, os.path.join(workdir, f"ledger-{r}.sqlite"), ours)
        pool = Laps()
        pool_check = pool_flow(rows, sb_pool, pool)
        check = integrity(rows, frames, sb_ours)
        stats = {"ours": sb_ours.stats(), "pool": sb_pool.stats()}
    return {"ours": ours, "pool": pool, "check": check, "pool_check": pool_check, "stats": stats}


def warm_up(workdir: str) -> None:
    """Imports and first-call costs, on a sandbox of its own."""
    with RemoteSandbox(jobs=0, enqueue_pending_seconds=(0.0, 0.0), max_seconds=120) as sb:
        rows = make_rows(40, "warm")
        ours_flow(rows, sb, os.path.join(workdir, "warm.sqlite"), lambda stage: None)
        pool_flow(rows, sb, lambda stage: None)


def budget_run(n: int, limit: int, workdir: str) -> dict[str, Any]:
    with RemoteSandbox(
        jobs=0,
        seed=0,
        rate_limit=limit,
        window=WINDOW,
        enqueue_pending_seconds=PENDING,
        max_seconds=900,
    ) as sb:
        rows = make_rows(n, "budget")
        laps = Laps()
        frames = ours_flow(rows, sb, os.path.join(workdir, "budget.sqlite"), laps)
        stats = sb.stats()
        check = integrity(rows, frames, sb)
    windows = {w["start"]: (w["served"], w["rejected"]) for w in stats["windows"]}
    starts = sorted(windows)
    full = [
        (start, *windows.get(start, (0, 0)))
        for start in range(starts[0] + WINDOW, starts[-1], WINDOW)
    ]
    return {
        "rows": n,
        "limit": limit,
        "laps": laps,
        "stats": stats,
        "windows": windows,
        "starts": starts,
        "full": full,
        "check": check,
        "polls": sum(stats["per_job"].values()),
    }


# -- report ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--rows", type=int, default=None, help="rows per throughput round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--budget-rows", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="requests per 2 s window")
    args = parser.parse_args(argv)
    n = args.rows or (300 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)
    budget_rows = args.budget_rows or (80 if args.quick else 600)
    limit = args.limit or (40 if args.quick else 100)
    print(
        f"bench_enqueue: {n} rows x {rounds} round(s) at {LATENCY * 1000:.0f} ms latency, then "
        f"{budget_rows} rows at {limit} requests per {WINDOW} s window; sandbox in a separate "
        f"process, enqueued jobs pending {PENDING[0]}-{PENDING[1]} s, poll_interval "
        f"{POLL_INTERVAL} s; {machine()}",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="bench_enqueue-") as workdir:
        warm_up(workdir)
        runs = []
        for r in range(rounds):
            run = throughput_round(n, r, workdir)
            runs.append(run)
            line = "  ".join(
                f"{stage} {n / run['ours'].wall[stage]:,.0f} vs "
                f"{n / run['pool'].wall[stage]:,.0f} rows/s"
                for stage in STAGES
            )
            print(f"  round {r + 1}: (a) vs (b): {line}", flush=True)
        budget = budget_run(budget_rows, limit, workdir)

    # 1. throughput
    def med(side: str, field: str, stage: str) -> float:
        return median([getattr(run[side], field)[stage] for run in runs])

    print(f"\n1. throughput: {n} rows, median of {rounds} round(s)")
    rows = []
    ratios = {}
    for stage in (*STAGES, "total"):
        if stage == "total":
            wall = {
                s: median([sum(run[s].wall.values()) for run in runs]) for s in ("ours", "pool")
            }
            cpu = {s: median([sum(run[s].cpu.values()) for run in runs]) for s in ("ours", "pool")}
        else:
            wall = {s: med(s, "wall", stage) for s in ("ours", "pool")}
            cpu = {s: med(s, "cpu", stage) for s in ("ours", "pool")}
        ratios[stage] = wall["pool"] / wall["ours"]
        rows.append(
            [
                stage,
                f"{wall['ours']:.2f}",
                f"{n / wall['ours']:,.0f}",
                f"{wall['pool']:.2f}",
                f"{n / wall['pool']:,.0f}",
                f"{ratios[stage]:.2f}x",
                f"{1000 * cpu['ours'] / n:.3f}",
                f"{1000 * cpu['pool'] / n:.3f}",
                f"{cpu['ours'] / cpu['pool']:.2f}x",
            ]
        )
    print(
        table(
            [
                "stage",
                "(a) wall s",
                "(a) rows/s",
                f"(b) pool of {POOL_THREADS} wall s",
                "(b) rows/s",
                "(a)/(b) rate",
                "(a) CPU ms/row",
                "(b) CPU ms/row",
                "(a)/(b) CPU",
            ],
            rows,
        )
    )
    requests_ours = [run["stats"]["ours"]["requests"] for run in runs]
    requests_pool = [run["stats"]["pool"]["requests"] for run in runs]
    print(
        f"requests per round: (a) {median(requests_ours):,.0f}, (b) {median(requests_pool):,.0f} "
        f"(minimum {3 * n:,}: one POST, one status, one ticket per row; (a) adds a GET /me for "
        f"its ledger; more means jobs polled again); (b) problems: "
        + ", ".join(
            f"{k} {sum(run['pool_check'][k] for run in runs)}"
            for k in ("not_enqueued", "not_success")
        )
        + f", tickets read {sum(run['pool_check']['tickets'] for run in runs)}/{n * rounds}"
    )

    # 2. budget
    shares = [served / limit for _, served, _ in budget["full"]]
    rejected = sum(r for _, r in budget["windows"].values())
    served_all = sum(s for s, _ in budget["windows"].values())
    overall = sum(s for _, s, _ in budget["full"]) / (limit * len(budget["full"])) if shares else 0
    elapsed = sum(budget["laps"].wall.values())
    print(
        f"\n2. budget: {budget_rows} rows, {limit} requests per {WINDOW} s window "
        f"(start relative to the first; * = full window, counted)"
    )
    first = budget["starts"][0]
    full_starts = {start for start, _, _ in budget["full"]}
    rows = []
    for start in sorted(set(budget["starts"]) | full_starts):
        served, rej = budget["windows"].get(start, (0, 0))
        mark = "*" if start in full_starts else ""
        rows.append([f"{start - first:+d} s{mark}", served, rej, f"{100 * served / limit:.0f}%"])
    print(table(["window", "served", "429", "budget used"], rows))
    stage_times = ", ".join(f"{s} {budget['laps'].wall[s]:.1f} s" for s in STAGES)
    print(
        f"{served_all + rejected} requests ({budget['polls']} status polls for "
        f"{budget_rows} jobs), "
        f"{len(budget['starts'])} windows (minimum {-(-(served_all) // limit)}), "
        f"{elapsed:.1f} s ({stage_times})"
    )

    # 3. integrity
    checks = [("round " + str(i + 1), run["check"]) for i, run in enumerate(runs)]
    checks.append(("budget", budget["check"]))
    print("\n3. integrity of every run of (a), from the sandbox's counts")
    rows = [
        [
            name,
            c["rows"],
            c["sandbox_jobs"],
            c["tickets"],
            c["duplicates"],
            c["extra"],
            c["missing_rows"],
            c["not_enqueued"],
            c["not_final"],
            c["not_fetched"],
            c["no_ticket"],
        ]
        for name, c in checks
    ]
    print(
        table(
            [
                "run",
                "rows",
                "jobs made",
                "tickets",
                "keys > 1 ticket",
                "tickets of no row",
                "rows missing",
                "not enqueued",
                "job not final",
                "ticket not fetched",
                "row without ticket",
            ],
            rows,
        )
    )

    duplicates = sum(c["duplicates"] + c["extra"] for _, c in checks)
    lost_rows = sum(lost(c) for _, c in checks)
    low = min(shares) if shares else 0.0
    print("\ntargets")
    rows = [
        [
            f"throughput {stage} (a)/(b)",
            f"{ratios[stage]:.2f}x",
            f">= {THROUGHPUT_TARGET}x",
            verdict(ratios[stage] >= THROUGHPUT_TARGET),
        ]
        for stage in STAGES
    ]
    rows += [
        ["throughput whole flow (a)/(b)", f"{ratios['total']:.2f}x", "(info)", ""],
        [
            "budget used over the full windows",
            f"{100 * overall:.1f}% of {len(shares)}",
            f">= {100 * BUDGET_TARGET:.0f}%",
            verdict(bool(shares) and overall >= BUDGET_TARGET),
        ],
        ["lowest full window", f"{100 * low:.0f}%", "(info)", ""],
        ["answered 429 (budget run)", rejected, "0", verdict(rejected == 0)],
        ["duplicate tickets (all runs)", duplicates, "0", verdict(duplicates == 0)],
        ["lost rows (all runs)", lost_rows, "0", verdict(lost_rows == 0)],
    ]
    print(table(["target", "value", "target", "verdict"], rows, align="lrll"))
    print(
        "\n(a) = enqueue_tickets + wait_for_jobs + fetch_tickets, defaults (32 workers); "
        f"(b) = ThreadPoolExecutor({POOL_THREADS}), a requests.Session per thread. rows/s = input "
        "rows / the stage's wall time; the wait stage includes the jobs' own pending time "
        f"({PENDING[0]}-{PENDING[1]} s after their enqueue) and {POLL_INTERVAL} s between passes, "
        "on both sides. Ceiling from latency alone: 32 workers / "
        f"{LATENCY * 1000:.0f} ms = {32 / LATENCY:,.0f} rows/s, 16 threads = "
        f"{16 / LATENCY:,.0f} rows/s."
    )
    if median(requests_ours) > 3 * n + 1 or median(requests_pool) > 3 * n:
        print(
            "Jobs were polled again (requests above the minimum): the wait stage's figures "
            "measure mostly the jobs' own pending time here, not the client."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
