"""Scale: a million jobs: peak resident memory, DataFrame bytes per row, client CPU, resume.

    python benchmarks/bench_scale.py            # 100k and 1,000,000 jobs, checkpoint on (~12 min)
    python benchmarks/bench_scale.py --quick    # a smoke run: 2k and 20k jobs (~30 s)

A sandbox with no latency and no rate limit (``rate_limit=None``, all jobs final) runs in its
own process, so none of its memory or CPU is counted. Each fetch runs in a fresh client process
(``ij.fetch_jobs(ids, token=..., base_url=..., progress=False, checkpoint=path)``):

* untraced, a checkpoint on (as a long run should be): wall time, client CPU
  (``time.process_time()``), and the growth of the process's peak resident set (``ru_maxrss``,
  which sees pyarrow's and SQLite's buffers, unlike tracemalloc) over the run;
* traced, at the smallest size: the same answers held as a plain list of dicts, for
  comparison: (i) the parsed JSON bodies a hand-written loop would keep (``response.json()``),
  (ii) ``df.to_dict("records")``, both measured with tracemalloc.

Then the same call again over the largest run's checkpoint: it must send no request (the
sandbox's ``/__sandbox/stats`` counter). Last, a projection from the measured CPU per job to
Intercom's published limits. Targets (issue 10): at 1,000,000 jobs at most 300 bytes of resident
memory per job; a DataFrame of at most 250 bytes a row; resume sends nothing. Exits 1 when a
target it can judge is missed (the resident-memory one only at a million jobs: at small sizes
the fixed cost of imports and threads dominates).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from typing import Any

from _common import RemoteSandbox, machine, table, verdict

APP_LIMIT_PER_MIN = 10_000  # Intercom: per app
WORKSPACE_LIMIT_PER_MIN = 25_000  # Intercom: per workspace


def _client(
    base_url: str,
    token: str,
    first_id: int,
    n: int,
    traced: bool,
    checkpoint: str | None,
    warm: bool,
    conn: Any,
) -> None:
    """Child process: one fetch of ``n`` jobs, measured; the figures go back on ``conn``."""
    import gc
    import json
    import resource
    import tracemalloc

    import intercom_jobs_nb as ij

    ids = [str(first_id + i) for i in range(n)]
    opts = dict(token=token, base_url=base_url, progress=False)
    if warm:  # first-call costs, before the measure (not before a run whose requests count)
        ij.fetch_jobs(ids[:20], **opts)
    gc.collect()
    out: dict[str, Any] = {"n": n}
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if traced:
        tracemalloc.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    df = ij.fetch_jobs(ids, checkpoint=checkpoint, **opts)
    out["wall"] = time.perf_counter() - wall0
    out["cpu"] = time.process_time() - cpu0
    out["rss_growth"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
    out["rows"] = len(df)
    out["errors"] = int(df["error_code"].notna().sum())
    out["df_bytes"] = int(df.memory_usage(deep=True).sum())
    if traced:
        out["trace_peak"] = tracemalloc.get_traced_memory()[1]
        # The same answers as a plain list of dicts. (i) What a hand-written loop keeps: the
        # parsed bodies. Render them as the server did, then measure only the parsing.
        keys = ("url", "status", "resource_type", "resource_id", "resource_url")
        cols = {k: df[k].astype(object).where(df[k].notna(), None).tolist() for k in keys}
        job_ids = df["job_id"].astype(object).tolist()
        bodies = [
            json.dumps(
                {
                    "type": "job",
                    "id": job_ids[i],
                    "url": cols["url"][i],
                    "status": cols["status"][i],
                    "resource_type": cols["resource_type"][i],
                    "resource_id": cols["resource_id"][i],
                    "resource_url": cols["resource_url"][i],
                },
                separators=(",", ":"),
            )
            for i in range(len(df))
        ]
        del cols, job_ids
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        parsed = [json.loads(body) for body in bodies]
        out["json_dicts_bytes"] = tracemalloc.get_traced_memory()[0] - before
        del parsed, bodies
        gc.collect()
        # (ii) The DataFrame's own rows as dicts (12 columns, Timestamps and all).
        before = tracemalloc.get_traced_memory()[0]
        records = df.to_dict("records")
        out["records_bytes"] = tracemalloc.get_traced_memory()[0] - before
        del records
        tracemalloc.stop()
    conn.send(out)
    conn.close()


def run_client(
    sb: RemoteSandbox,
    n: int,
    *,
    traced: bool = False,
    checkpoint: str | None = None,
    warm: bool = True,
) -> dict[str, Any]:
    # "fork" where there is one (this process has no threads, and has imported the package
    # already, so each client starts in a moment); the figures are measured inside the child.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_client,
        args=(sb.base_url, sb.token, int(sb.job_ids[0]), n, traced, checkpoint, warm, child),
        daemon=True,
    )
    proc.start()
    child.close()
    try:
        if not parent.poll(1200):
            raise RuntimeError(f"the client of {n} jobs did not finish in 20 minutes")
        return parent.recv()
    finally:
        proc.join(30)
        if proc.is_alive():  # our own child, by its handle
            proc.terminate()
            proc.join(5)


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    args = parser.parse_args(argv)
    sizes = (2_000, 20_000) if args.quick else (100_000, 1_000_000)
    import intercom_jobs_nb  # noqa: F401  (imported once here, inherited by forked clients)

    top = sizes[-1]
    print(
        f"bench_scale: {', '.join(f'{n:,}' for n in sizes)} jobs against a sandbox with no "
        f"latency and no rate limit (separate process); each fetch in a fresh client process; "
        f"{machine()}"
    )

    untraced: dict[int, dict[str, Any]] = {}
    small = sizes[0]
    with (
        RemoteSandbox(
            jobs=top, seed=0, latency=0.0, rate_limit=None, pending_share=0.0, max_seconds=3600
        ) as sb,
        tempfile.TemporaryDirectory(prefix="bench-scale-") as folder,
    ):
        traced = run_client(sb, small, traced=True)
        for n in sizes:
            path = os.path.join(folder, f"jobs-{n}.sqlite")
            sb.reset_stats()
            untraced[n] = run_client(sb, n, checkpoint=path)
            u = untraced[n]
            print(
                f"  {n:>9,} jobs: {u['wall']:.1f} s, {u['n'] / u['wall']:,.0f} jobs/s, "
                f"CPU {1e6 * u['cpu'] / n:,.0f} us/job, ru_maxrss +{mb(u['rss_growth'])} "
                f"({u['rss_growth'] / n:,.0f} B/job), DataFrame {u['df_bytes'] / n:,.0f} B/row, "
                f"errors {u['errors']}",
                flush=True,
            )
        size = os.path.getsize(path) + sum(
            os.path.getsize(path + s) for s in ("-wal", "-shm") if os.path.exists(path + s)
        )
        first = untraced[top]
        sent_first = top
        sb.reset_stats()
        second = run_client(sb, top, checkpoint=path, warm=False)
        sent_second = sum(sb.stats_http()["per_job"].values())
        print(
            f"  checkpoint: first run {first['wall']:.1f} s, resumed run {second['wall']:.2f} s "
            f"({sent_second} requests)",
            flush=True,
        )

    print("\nmemory and CPU by size (untraced runs, a checkpoint on)")
    print(
        table(
            [
                "jobs",
                "wall s",
                "jobs/s",
                "CPU us/job",
                "ru_maxrss growth",
                "RSS B/job",
                "DataFrame B/row",
                "error rows",
            ],
            [
                [
                    f"{n:,}",
                    f"{u['wall']:.1f}",
                    f"{n / u['wall']:,.0f}",
                    f"{1e6 * u['cpu'] / n:,.0f}",
                    mb(u["rss_growth"]),
                    f"{u['rss_growth'] / n:,.0f}",
                    f"{u['df_bytes'] / n:,.0f}",
                    u["errors"],
                ]
                for n, u in untraced.items()
            ],
        )
    )
    a, b = sizes[0], sizes[-1]
    slope = (untraced[b]["rss_growth"] - untraced[a]["rss_growth"]) / (b - a)
    print(f"marginal resident memory per extra job, {a:,} -> {b:,}: {slope:,.0f} B")

    t = traced
    print(f"\nthe same {small:,} answers, held as (the baseline: what a hand-written loop keeps):")
    print(
        table(
            ["form", "bytes", "bytes/job", "vs DataFrame"],
            [
                [
                    "DataFrame (fetch_jobs; deep memory_usage)",
                    f"{t['df_bytes']:,}",
                    f"{t['df_bytes'] / small:,.0f}",
                    "1.00x",
                ],
                [
                    "list of parsed JSON dicts (response.json())",
                    f"{t['json_dicts_bytes']:,}",
                    f"{t['json_dicts_bytes'] / small:,.0f}",
                    f"{t['json_dicts_bytes'] / t['df_bytes']:.2f}x",
                ],
                [
                    "list of dicts, df.to_dict('records')",
                    f"{t['records_bytes']:,}",
                    f"{t['records_bytes'] / small:,.0f}",
                    f"{t['records_bytes'] / t['df_bytes']:.2f}x",
                ],
            ],
        )
    )

    print(f"\ncheckpoint ({top:,} jobs, SQLite file {mb(size)})")
    print(
        table(
            ["run", "wall s", "CPU us/job", "requests sent", "rows", "error rows"],
            [
                [
                    "first (writes the checkpoint)",
                    f"{first['wall']:.1f}",
                    f"{1e6 * first['cpu'] / top:,.0f}",
                    f"{sent_first:,}",
                    f"{first['rows']:,}",
                    first["errors"],
                ],
                [
                    "again, same checkpoint (resume)",
                    f"{second['wall']:.2f}",
                    f"{1e6 * second['cpu'] / top:,.1f}",
                    f"{sent_second:,}",
                    f"{second['rows']:,}",
                    second["errors"],
                ],
            ],
        )
    )

    cpu_per_job = untraced[top]["cpu"] / top
    app_rps = APP_LIMIT_PER_MIN / 60
    ws_rps = WORKSPACE_LIMIT_PER_MIN / 60
    print(
        f"\nprojection from the measured client CPU per job ({1e6 * cpu_per_job:,.0f} us, "
        f"{top:,}-job run, no latency; it includes building the DataFrame):"
    )
    print(
        table(
            [
                "Intercom limit",
                "req/s",
                "1,000,000 statuses take",
                "client CPU needed",
                "one process could do",
            ],
            [
                [
                    f"{APP_LIMIT_PER_MIN:,}/min per app",
                    f"{app_rps:.1f}",
                    f"{1e6 / app_rps / 60:,.0f} min",
                    f"{100 * cpu_per_job * app_rps:.1f}% of a core",
                    f"{1 / cpu_per_job:,.0f} req/s ({1 / cpu_per_job / app_rps:.0f}x)",
                ],
                [
                    f"{WORKSPACE_LIMIT_PER_MIN:,}/min per workspace",
                    f"{ws_rps:.1f}",
                    f"{1e6 / ws_rps / 60:,.0f} min",
                    f"{100 * cpu_per_job * ws_rps:.1f}% of a core",
                    f"{1 / cpu_per_job:,.0f} req/s ({1 / cpu_per_job / ws_rps:.0f}x)",
                ],
            ],
        )
    )
    rss_per_job = untraced[top]["rss_growth"] / top
    df_per_row = max(u["df_bytes"] / n for n, u in untraced.items())
    million = top >= 1_000_000
    print(
        f"(1,000,000 jobs at the measured {rss_per_job:,.0f} B/job: about "
        f"{mb(rss_per_job * 1e6)} of memory; the wait is the API's rate limit, not the client)"
    )
    print("\ntargets")
    checks = [
        (
            "resident memory at 1,000,000 jobs <= 300 B/job",
            f"{rss_per_job:,.0f} B/job at {top:,}",
            rss_per_job <= 300 if million else None,
        ),
        ("DataFrame <= 250 B/row", f"{df_per_row:,.0f} B/row", df_per_row <= 250),
        (f"resume over a finished {top:,}-job checkpoint asks no job", f"{sent_second}",
         sent_second == 0),
    ]  # fmt: skip
    print(
        table(
            ["target", "measured", "verdict"],
            [[name, got, verdict(ok) if ok is not None else "n/a (full run only)"]
             for name, got, ok in checks],
            align="lll",
        )
    )  # fmt: skip
    if any(ok is False for _, _, ok in checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
