"""The ``intercom-jobs`` command: a thin layer over the library's functions.

    intercom-jobs fetch IDS_FILE|- [--out FILE.csv] [--region us|eu|au] [--base-url URL]
                                   [--wait] [--checkpoint FILE]
    intercom-jobs sandbox [--port N]
    intercom-jobs demo [--out FILE.csv]

The token comes from ``INTERCOM_TOKEN`` only: a flag's value would land in the shell history.
Results go to ``--out`` (CSV) or, without it, as CSV to standard output; the progress bar and
the summary go to standard error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from . import errors as E
from .fetch import fetch_jobs
from .frames import export_csv, summarize
from .options import (
    DEFAULT_MAX_RPS,
    DEFAULT_MAX_WORKERS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_REGION,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    REGIONS,
    __version__,
)
from .polling import wait_for_jobs

__all__ = ["main", "build_parser"]

EXIT_ERROR = 2
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130


def _read_stdin_ids() -> list[str]:
    return [line.strip() for line in sys.stdin if line.strip() and not line.startswith("#")]


def _emit(df: pd.DataFrame, out: str | None) -> None:
    if out:
        path = export_csv(df, out)
        print(f"wrote {len(df)} rows to {path}", file=sys.stderr)
    else:
        df.to_csv(sys.stdout, index=False)


def _print_summary(df: pd.DataFrame) -> None:
    with pd.option_context("display.width", 120):
        print(summarize(df).to_string(), file=sys.stderr)


def cmd_fetch(args: argparse.Namespace) -> int:
    ids = _read_stdin_ids() if args.ids == "-" else args.ids
    options = dict(
        region=args.region,
        base_url=args.base_url,
        max_workers=args.max_workers,
        max_rps=args.max_rps,
        retries=args.retries,
        progress=not args.no_progress,
        checkpoint=args.checkpoint,
    )
    try:
        if args.wait:
            df = wait_for_jobs(
                ids,
                poll_interval=args.poll_interval,
                timeout=args.wait_timeout,
                request_timeout=args.timeout,
                **options,
            )
        else:
            df = fetch_jobs(ids, timeout=args.timeout, **options)
    except E.FetchInterrupted as exc:
        print("interrupted", file=sys.stderr)
        if exc.df is not None and args.out:
            _emit(exc.df, args.out)
        return EXIT_INTERRUPTED
    except E.RunAbortedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.df is not None and len(exc.df) and args.out:
            _emit(exc.df, args.out)
        return EXIT_AUTH if isinstance(exc, E.AuthenticationError) else EXIT_ERROR
    except E.IntercomJobsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    _print_summary(df)
    _emit(df, args.out)
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from .sandbox import Sandbox

    sandbox = Sandbox(
        jobs=args.jobs,
        seed=args.seed,
        latency=args.latency,
        port=args.port,
        rate_limit=args.rate_limit or None,
        window=args.window,
    )
    sandbox.start()
    print(
        f"sandbox listening on {sandbox.base_url} with {len(sandbox.job_ids)} jobs "
        f"({sandbox.job_ids[0]}..{sandbox.job_ids[-1]})",
        flush=True,
    )
    print(
        f"  export INTERCOM_TOKEN={sandbox.token}   # the sandbox's own token, not a secret",
        flush=True,
    )
    print("Ctrl-C stops it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .sandbox import Sandbox

    with Sandbox(jobs=args.jobs, seed=0, latency=0.02, faults={"server_error": 0.01}) as sandbox:
        ids = [*sandbox.job_ids, "404404", "not/a/job"]
        print(
            f"Offline demo: a local Intercom sandbox at {sandbox.base_url}, "
            f"{len(ids)} job ids (two of them bad on purpose).",
            file=sys.stderr,
        )
        started = time.perf_counter()
        df = fetch_jobs(ids, token=sandbox.token, base_url=sandbox.base_url)
        elapsed = time.perf_counter() - started
    print(
        f"fetched {len(df)} jobs in {elapsed:.1f} s ({len(df) / elapsed:,.0f} jobs/s)",
        file=sys.stderr,
    )
    _print_summary(df)
    path = export_csv(df, args.out)
    print(f"wrote {path}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="intercom-jobs",
        description="What became of my Intercom jobs? Fetch job statuses in bulk.",
        epilog="The token is read from the INTERCOM_TOKEN environment variable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser("fetch", help="fetch job statuses listed in a .txt/.csv file or stdin")
    fetch.add_argument("ids", help="a .txt (one id a line) or .csv file of job ids, or - for stdin")
    fetch.add_argument("--out", help="write the results to this CSV file (default: stdout)")
    fetch.add_argument("--region", choices=sorted(REGIONS), default=DEFAULT_REGION)
    fetch.add_argument("--base-url", help="another API host (overrides --region)")
    fetch.add_argument("--wait", action="store_true", help="poll pending jobs until all are final")
    fetch.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL,
        metavar="S",
        help="with --wait: seconds between polls (default %(default)s)",
    )
    fetch.add_argument(
        "--wait-timeout",
        type=float,
        default=None,
        metavar="S",
        help="with --wait: give up after this many seconds",
    )
    fetch.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="SQLite file: save rows as they come, resume where a run stopped",
    )
    fetch.add_argument(
        "--max-workers",
        type=int,
        default=DEFAULT_MAX_WORKERS,
        help="requests in flight at most (default %(default)s)",
    )
    fetch.add_argument(
        "--max-rps",
        type=float,
        default=DEFAULT_MAX_RPS,
        help="cap requests per second (leave room for other integrations)",
    )
    fetch.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds for one whole answer (default %(default)s)",
    )
    fetch.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        help="further tries after a passing failure (default %(default)s)",
    )
    fetch.add_argument("--no-progress", action="store_true")
    fetch.set_defaults(func=cmd_fetch)

    sandbox = sub.add_parser("sandbox", help="run the local Intercom sandbox until Ctrl-C")
    sandbox.add_argument("--port", type=int, default=0, help="default: a free port")
    sandbox.add_argument("--jobs", type=int, default=2000)
    sandbox.add_argument("--seed", type=int, default=0)
    sandbox.add_argument("--latency", type=float, default=0.0, metavar="S")
    sandbox.add_argument(
        "--rate-limit", type=int, default=10_000, help="requests per window (0: no limit)"
    )
    sandbox.add_argument("--window", type=int, default=10, metavar="S")
    sandbox.set_defaults(func=cmd_sandbox)

    demo = sub.add_parser("demo", help="offline demo: fetch 2,000 jobs from the sandbox")
    demo.add_argument("--out", default="jobs-demo.csv", help="CSV to write (default %(default)s)")
    demo.add_argument("--jobs", type=int, default=2000)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "ids", None) not in (None, "-") and not Path(args.ids).suffix:
        print("error: IDS_FILE must be a .txt or .csv file, or - for stdin", file=sys.stderr)
        return EXIT_ERROR
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
