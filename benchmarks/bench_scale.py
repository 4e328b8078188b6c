"""Scale: 100,000 jobs: peak memory, bytes per row, client CPU per job, resume, and what it means.

    python benchmarks/bench_scale.py            # 25k, 50k, 100k jobs + a 100k checkpoint (~8 min)
    python benchmarks/bench_scale.py --quick    # a smoke run: 500, 1k, 2k jobs (~12 s)

A sandbox with no latency and no rate limit (``rate_limit=None``, all jobs final) runs in its
own process, so none of its memory or CPU is counted. Each fetch runs in a fresh client process
(``ij.fetch_jobs(ids, token=..., base_url=..., progress=False)``), twice per size:

* untraced: wall time, client CPU (``time.process_time()``), and the growth of the process's
  peak resident set (``ru_maxrss``) over the run;
* traced: the peak of Python/numpy allocations during the run (``tracemalloc``; it slows the
  run, so its time is not used), the result's size, then, for comparison, the same answers held
  as a plain list of dicts: (i) the parsed JSON bodies a hand-written loop would keep
  (``response.json()``), (ii) ``df.to_dict("records")`` (all 12 columns), both measured with
  tracemalloc as the bytes allocated to build them.

Then a checkpointed run over all the jobs (``checkpoint=path``) and the same call again: the
second must send no request (the sandbox's ``/__sandbox/stats`` counter) and is timed. Last, a
projection from the measured CPU per job to Intercom's published limits. Targets (issue 4):
memory linear in jobs, a few hundred bytes a job; resume in seconds. Exits 0 whatever the
figures.
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
    if checkpoint is None:  # warm up (first-call costs); not before a run whose requests count
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
    sb: RemoteSandbox, n: int, *, traced: bool = False, checkpoint: str | None = None
) -> dict[str, Any]:
    # "fork" where there is one (this process has no threads, and has imported the package
    # already, so each client starts in a moment); the figures are measured inside the child.
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(
        target=_client,
        args=(sb.base_url, sb.token, int(sb.job_ids[0]), n, traced, checkpoint, child),
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
    sizes = (500, 1_000, 2_000) if args.quick else (25_000, 50_000, 100_000)
    import intercom_jobs_nb  # noqa: F401  (imported once here, inherited by forked clients)

    top = sizes[-1]
    print(
        f"bench_scale: {', '.join(f'{n:,}' for n in sizes)} jobs against a sandbox with no "
        f"latency and no rate limit (separate process); each fetch in a fresh client process; "
        f"{machine()}"
    )

    untraced: dict[int, dict[str, Any]] = {}
    traced: dict[int, dict[str, Any]] = {}
    with RemoteSandbox(
        jobs=top, seed=0, latency=0.0, rate_limit=None, pending_share=0.0, max_seconds=3600
    ) as sb:
        for n in sizes:
            untraced[n] = run_client(sb, n)
            traced[n] = run_client(sb, n, traced=True)
            u, t = untraced[n], traced[n]
            print(
                f"  {n:>7,} jobs: {u['wall']:.1f} s, {u['n'] / u['wall']:,.0f} jobs/s, "
                f"CPU {1e6 * u['cpu'] / n:,.0f} us/job, ru_maxrss +{mb(u['rss_growth'])}, "
                f"tracemalloc peak {mb(t['trace_peak'])}, errors {u['errors']}",
                flush=True,
            )

        with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
            path = os.path.join(folder, "jobs.sqlite")
            sb.reset_stats()
            first = run_client(sb, top, checkpoint=path)
            sent_first = sum(sb.stats_http()["per_job"].values())  # job requests; /me aside
            size = os.path.getsize(path) + sum(
                os.path.getsize(path + s) for s in ("-wal", "-shm") if os.path.exists(path + s)
            )
            sb.reset_stats()
            second = run_client(sb, top, checkpoint=path)
            sent_second = sum(sb.stats_http()["per_job"].values())
            print(
                f"  checkpoint: first run {first['wall']:.1f} s ({sent_first:,} requests), "
                f"resumed run {second['wall']:.2f} s ({sent_second} requests)",
                flush=True,
            )

    print(
        "\nmemory and CPU by size (untraced run: time, CPU, ru_maxrss; traced run: "
        "tracemalloc peak)"
    )
    rows = []
    for n in sizes:
        u, t = untraced[n], traced[n]
        rows.append(
            [
                f"{n:,}",
                f"{u['wall']:.1f}",
                f"{n / u['wall']:,.0f}",
                f"{1e6 * u['cpu'] / n:,.0f}",
                mb(t["trace_peak"]),
                f"{t['trace_peak'] / n:,.0f}",
                mb(u["rss_growth"]),
                f"{u['rss_growth'] / n:,.0f}",
                f"{t['df_bytes'] / t['rows']:,.0f}",
                u["errors"],
            ]
        )
    print(
        table(
            [
                "jobs",
                "wall s",
                "jobs/s",
                "CPU us/job",
                "peak (tracemalloc)",
                "peak B/job",
                "ru_maxrss growth",
                "maxrss B/job",
                "df B/row",
                "error rows",
            ],
            rows,
        )
    )

    # Linearity: the extra memory of each extra job, between consecutive sizes (a fixed cost,
    # imports and pools, weighs on bytes/job at small sizes but not on this slope).
    per_job = [traced[n]["trace_peak"] / n for n in sizes]
    slopes = [
        (traced[b]["trace_peak"] - traced[a]["trace_peak"]) / (b - a)
        for a, b in zip(sizes, sizes[1:], strict=False)
    ]
    rss_slopes = [
        (untraced[b]["rss_growth"] - untraced[a]["rss_growth"]) / (b - a)
        for a, b in zip(sizes, sizes[1:], strict=False)
    ]
    spread = max(slopes) / min(slopes) if min(slopes) > 0 else float("inf")
    print("\nlinearity: marginal bytes per extra job (tracemalloc peak; ru_maxrss)")
    print(
        table(
            ["between", "peak B/extra job", "maxrss B/extra job"],
            [
                [f"{a:,} -> {b:,}", f"{sl:,.0f}", f"{rs:,.0f}"]
                for (a, b), sl, rs in zip(
                    zip(sizes, sizes[1:], strict=False), slopes, rss_slopes, strict=True
                )
            ],
        )
    )

    t = traced[top]
    print(f"\nthe same {top:,} answers, held as:")
    print(
        table(
            ["form", "bytes", "bytes/job", "vs DataFrame"],
            [
                [
                    "DataFrame (fetch_jobs; deep memory_usage)",
                    f"{t['df_bytes']:,}",
                    f"{t['df_bytes'] / top:,.0f}",
                    "1.00x",
                ],
                [
                    "list of parsed JSON dicts (response.json())",
                    f"{t['json_dicts_bytes']:,}",
                    f"{t['json_dicts_bytes'] / top:,.0f}",
                    f"{t['json_dicts_bytes'] / t['df_bytes']:.2f}x",
                ],
                [
                    "list of dicts, df.to_dict('records')",
                    f"{t['records_bytes']:,}",
                    f"{t['records_bytes'] / top:,.0f}",
                    f"{t['records_bytes'] / t['df_bytes']:.2f}x",
                ],
                [
                    "whole run's peak (tracemalloc)",
                    f"{t['trace_peak']:,}",
                    f"{t['trace_peak'] / top:,.0f}",
                    f"{t['trace_peak'] / t['df_bytes']:.2f}x",
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
    peak_1m = traced[top]["trace_peak"] / top * 1e6
    print(
        f"(1,000,000 jobs at the measured peak bytes/job: about {mb(peak_1m)} of memory; the "
        f"wait is the API's rate limit, not the client: one process is enough)"
    )

    print("\ntargets")
    big = per_job[-1]
    print(
        table(
            ["target", "measured", "verdict"],
            [
                [
                    "memory linear in jobs (marginal B/job steady, +-25%)",
                    f"{' vs '.join(f'{sl:,.0f}' for sl in slopes)} (max/min {spread:.2f})",
                    verdict(spread <= 1.25),
                ],
                [
                    f"a few hundred bytes a job (peak at {top:,}, tracemalloc)",
                    f"{big:,.0f} B/job",
                    verdict(big <= 1000),
                ],
                [
                    f"resume over a finished {top:,}-job checkpoint asks no job",
                    f"{sent_second} requests",
                    verdict(sent_second == 0),
                ],
                [
                    "... and answers in seconds",
                    f"{second['wall']:.2f} s",
                    verdict(second["wall"] < 10),
                ],
            ],
            align="lll",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
