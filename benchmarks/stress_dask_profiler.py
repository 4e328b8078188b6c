"""Does a Dask worker hang? Many small runs of four workspaces on a two-process LocalCluster.

    python benchmarks/stress_dask_profiler.py                   # 400 runs, the task profiler
                                                                # stopped as the module does
    python benchmarks/stress_dask_profiler.py --keep-profiler   # the same, with it left on

On Python 3.11 and earlier, a Dask worker's task profiler can deadlock a worker whose tasks start
threads (CPython gh-106883; `intercom_jobs_nb.dask`'s docstring says how). `intercom_jobs_nb.dask`
stops it on those Pythons. This script shows the difference: each run fetches 400 jobs in each
of four workspaces (a sandbox without rate limit or latency, in this process) from a Dask frame
of four partitions, and must finish within 30 s. ``--keep-profiler`` makes the workers skip the
stop. A hung run is reported (with each worker's stacks if py-spy is installed) and ends the
script with exit code 1; otherwise it prints how many runs finished, and exits 0.

Measured on a 2-core machine, Python 3.11.7, dask/distributed 2026.8.0, with two busy loops
beside it: with ``--keep-profiler`` (three tries with this script's first draft, one with it),
each of four tries hung, at runs 54, 2, 11 and 67 (4 hangs in 134 runs; each worker dump showed
the profiler's ``_PyThread_CurrentFrames`` in a garbage collection, and a task thread starting
a thread); without it, 400 of 400 runs finished.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid

from _common import dask_cluster

WORKSPACES = ("acme", "globex", "initech", "umbrella")
JOBS = 400
WITHIN = 30.0  # seconds a run may take; one takes about 1.3 s


def _keep_profiler() -> None:
    """On a worker: skip intercom_jobs_nb.dask's stop of the task profiler."""
    import intercom_jobs_nb.dask as ijd

    ijd._PROFILER_DEADLOCKS = False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--keep-profiler", action="store_true")
    args = parser.parse_args()

    import distributed
    import pandas as pd

    import intercom_jobs_nb.dask as ijd
    from intercom_jobs_nb.sandbox import Sandbox

    tokens = {ws: f"tok-{ws}-{uuid.uuid4().hex}" for ws in WORKSPACES}
    refs = {}
    for ws in WORKSPACES:  # set before the cluster starts: its workers inherit them
        os.environ[f"INTERCOM_TOKEN_{ws.upper()}"] = tokens[ws]
        refs[ws] = f"env:INTERCOM_TOKEN_{ws.upper()}"
    import dask.dataframe as dd

    with (
        dask_cluster(2, 2) as client,
        Sandbox(
            jobs=JOBS,
            seed=11,
            pending_share=0.0,
            tokens={tokens[ws]: ws for ws in WORKSPACES},
            separate_jobs=True,
        ) as sb,
    ):
        if args.keep_profiler:
            client.run(_keep_profiler)
        pids = client.run(os.getpid)
        frame = pd.DataFrame(
            [(j, ws) for j in sb.job_ids for ws in WORKSPACES], columns=["job_id", "workspace"]
        )
        for run in range(1, args.runs + 1):
            out = ijd.fetch_jobs(
                dd.from_pandas(frame, npartitions=4), tokens=refs, base_url=sb.base_url
            )
            started = time.monotonic()
            try:
                df = client.compute(out).result(timeout=WITHIN)
            except distributed.TimeoutError:
                print(f"run {run}: no answer within {WITHIN:.0f} s: a worker hangs")
                if shutil.which("py-spy"):
                    for address, pid in pids.items():
                        print(f"--- worker {address} (pid {pid})", flush=True)
                        subprocess.run(["py-spy", "dump", "--native", "--pid", str(pid)])
                return 1
            assert len(df) == JOBS * len(WORKSPACES) and df["error_code"].isna().all()
            print(f"run {run}: {time.monotonic() - started:.2f} s", flush=True)
    print(f"{args.runs} of {args.runs} runs finished")
    return 0


if __name__ == "__main__":
    sys.exit(main())
