"""The ``intercom-jobs`` command: a thin layer over the library's functions.

    intercom-jobs fetch IDS_FILE|- [--out FILE] [--region us|eu|au] [--base-url URL]
                                   [--wait] [--checkpoint FILE]
    intercom-jobs enqueue TICKETS.csv --ledger FILE [--ticket-type-id ID] [--wait] [--tickets]
                                   [--resend-unknown] [--out FILE] [--region/--base-url...]
    intercom-jobs sandbox [--port N]
    intercom-jobs demo [--out FILE]
    intercom-jobs --version

The token comes from ``INTERCOM_TOKEN`` (or a ``.env`` file, or a prompt: `get_token`), never a
flag: a flag's value would land in the shell history. Results go to ``--out`` (CSV, or Parquet
for a name ending in .parquet) or, without it, as CSV to standard output; the progress bar, the
summary and every message go to standard error. ``--out`` is checked (its folder exists and
takes a new file) and the ids are read before any request is sent. The first pass
(`fetch_jobs`) tells whether Intercom can be reached at all; ``--wait`` then polls with
`wait_for_jobs` over its rows.

``enqueue`` creates a ticket for each row of a CSV (`enqueue_tickets`); its ``--ledger`` records
each row sent, so the same command run again sends only the rows never sent. ``--wait`` then
follows the jobs (`wait_for_jobs`) and ``--tickets`` fetches the tickets they made
(`fetch_tickets`). Both commands share their flags (`_add_connection_flags`), their options
(`_connection_options`), their ending (`_complete`: the exit code of each exception, Ctrl-C,
the summary and the CSV) and the test of an unreachable Intercom (`_unreachable`).

Exit codes:

    0    done
    2    usage or configuration error: a bad flag, no job ids, --out not writable, a busy
         --port...
    3    Intercom rejected the token
    4    Intercom could not be reached: every request failed with a timeout or a connection
         error, none was answered (nothing is written)
    130  interrupted (Ctrl-C): the rows so far are written to --out or stdout first; with
         fetch --checkpoint FILE, or enqueue's --ledger, the same command resumes where it stopped
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from . import _codes as C
from . import _errors as E
from . import _textfiles as textfiles
from ._enqueue import INVALID_ROW, KEY_CHANGED, enqueue_tickets, ticket_bodies
from ._fetch import fetch_jobs
from ._format import number
from ._frames import Summary, counts_by, export_csv, summarize
from ._ids import JobIds, read_job_ids
from ._options import (
    DEFAULT_POLL_INTERVAL,
    ENV_NAME,
    OPTIONS,
    REGIONS,
    TOKEN_ENV,
    __version__,
)
from ._parquet import export_parquet
from ._polling import wait_for_jobs
from .sandbox import DEFAULT_TICKET_TYPES, Sandbox

__all__ = ["main", "build_parser"]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_UNREACHABLE = 4
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = f"""\
exit codes:
  {EXIT_OK}    done
  {EXIT_USAGE}    usage or configuration error (a bad flag, no job ids, --out not writable...)
  {EXIT_AUTH}    Intercom rejected the token
  {EXIT_UNREACHABLE}    Intercom could not be reached: no request was answered
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): the rows so far are written first"""

#: What ``--out`` writes, by the file's extension: the one list (the flag's help, its check,
#: the writer). Any other name is refused before a request, never written as CSV bytes under
#: a name that promises another format (``.xlsx``).
OUT_FORMATS: dict[str, Callable[[pd.DataFrame, str], Path]] = {
    ".csv": export_csv,
    ".parquet": export_parquet,
}
_OUT_NAMES = " or ".join(OUT_FORMATS)

_SANDBOX_TYPE = next(iter(DEFAULT_TICKET_TYPES))  # a ticket type id the sandbox knows
ENQUEUE_EXAMPLE = f"""\
example, against `intercom-jobs sandbox --port 8000` (export the {TOKEN_ENV} it prints; its
ticket type is {_SANDBOX_TYPE}; yours are in Intercom's settings):
  intercom-jobs enqueue tickets.csv --ticket-type-id {_SANDBOX_TYPE} --ledger tickets.sqlite \\
      --base-url http://127.0.0.1:8000 --wait --tickets --out outcomes.csv"""

TOKEN_HELP = f"The token is read from the {TOKEN_ENV} environment variable, never from a flag."

# Codes of a request that got no answer at all.

_SANDBOX_DEFAULTS = {name: p.default for name, p in inspect.signature(Sandbox).parameters.items()}


class _Stop(Exception):
    """Ends a command with a one-line message on stderr and an exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- input and output ------------------------------------------------------------------------


def _read_stdin_ids() -> list[str]:
    return [line.strip() for line in sys.stdin if line.strip() and not line.startswith("#")]


def _read_ids(source: str) -> JobIds:
    """The ids to fetch (with a CSV's other columns), read once: `fetch_jobs` takes them as
    they are. An input without any is refused."""
    try:
        job_ids = read_job_ids(_read_stdin_ids() if source == "-" else Path(source))
    except E.ConfigurationError as exc:
        raise _Stop(EXIT_USAGE, str(exc)) from None
    if not len(job_ids):
        raise _Stop(EXIT_USAGE, f"no job ids in {'stdin' if source == '-' else source}")
    return job_ids


def _read_workspaces(source: str) -> dict[str, str]:
    """``--workspaces FILE.csv``: each workspace's name and the environment variable that
    holds its token, as ``tokens=`` references (``"env:NAME"``: read, never shown)."""
    try:
        frame = textfiles.read_table(source, f"--workspaces {source}")
    except FileNotFoundError:
        raise _Stop(EXIT_USAGE, f"--workspaces {source}: no such file") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise _Stop(EXIT_USAGE, f"--workspaces {source}: cannot read it as CSV ({exc})") from None
    missing = [c for c in ("workspace", "token_env") if c not in frame.columns]
    if missing or not len(frame):
        raise _Stop(
            EXIT_USAGE,
            f"--workspaces {source}: needs the columns workspace and token_env and a row per "
            "workspace (token_env: the name of the environment variable holding its token)",
        )
    tokens: dict[str, str] = {}
    pairs = zip(frame["workspace"], frame["token_env"], strict=True)
    for line, (name, env) in enumerate(pairs, 2):
        name, env = name.strip(), env.strip()
        if not name or not ENV_NAME.fullmatch(env):
            raise _Stop(
                EXIT_USAGE,
                f"--workspaces {source}, line {line}: needs a workspace name and the name of "
                f"an environment variable (letters, digits, _), got {name!r}, {env!r}",
            )
        if name in tokens:
            raise _Stop(EXIT_USAGE, f"--workspaces {source}: workspace {name!r} is listed twice")
        tokens[name] = f"env:{env}"
    return tokens


def _check_out(out: str) -> None:
    """Refuse an ``--out`` that could not be written, or not in the format its name says
    (`OUT_FORMATS`), before anything is asked."""
    suffix = Path(out).suffix.lower()
    if suffix not in OUT_FORMATS:
        raise _Stop(
            EXIT_USAGE,
            f"--out {out}: {f'{suffix} files' if suffix else 'a name without an extension'} "
            f"cannot be written here; the command writes {_OUT_NAMES} files (by the "
            f"extension), e.g. --out {Path(out).with_suffix('.csv')}",
        )
    target = Path(out).expanduser().resolve()
    if target.is_dir():
        raise _Stop(EXIT_USAGE, f"--out {out}: is a folder, not a file")
    if not target.parent.is_dir():
        raise _Stop(EXIT_USAGE, f"--out {out}: no such folder {str(target.parent)!r}")
    try:
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".intercom-jobs-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise _Stop(
            EXIT_USAGE, f"--out {out}: cannot write in {str(target.parent)!r} ({reason})"
        ) from None


def _write_out(df: pd.DataFrame, out: str) -> Path:
    """``--out`` written in the format its extension names (checked by `_check_out`)."""
    return OUT_FORMATS[Path(out).suffix.lower()](df, out)


def _emit(df: pd.DataFrame, out: str | None) -> None:
    if out:
        path = _write_out(df, out)
        print(f"wrote {number(len(df))} rows to {path}", file=sys.stderr)
    else:
        df.to_csv(sys.stdout, index=False)
        sys.stdout.flush()


def _print_summary(df: pd.DataFrame) -> None:
    """The summary of a jobs frame (`summarize`) on stderr, as a notebook shows it."""
    _print_table(summarize(df))


def _print_counts(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Counts and shares by each of ``columns`` (missing values as ``(none)``), on stderr."""
    _print_table(counts_by(df, columns))


def _print_table(table: Summary) -> None:
    with pd.option_context("display.width", 120):
        print(table.shown().to_string(), file=sys.stderr)


def _cli_words(exc: BaseException, args: argparse.Namespace) -> str:
    """``exc``'s message as the command line says it: flags and INTERCOM_TOKEN, not the Python
    names (``--max-workers``, not ``max_workers``; no ``token=``)."""
    text = str(exc)
    ref = re.match(r"tokens\[('[^']*')\] is 'env:(\w*)'", text)
    if ref:  # --workspaces names a variable that is not set
        return f"no token for workspace {ref[1]}: set {ref[2]} (export {ref[2]}=...)"
    if isinstance(exc, E.MissingTokenError):
        return f"no Intercom access token: set {TOKEN_ENV} (export {TOKEN_ENV}=...)"
    if "token=" in text:  # the library's advice names its argument: give the CLI's instead
        text = f"{text.rpartition('; ')[0] or text}; check {TOKEN_ENV} and --region (or --base-url)"
    name = re.match(r"(\w+) (?:must|has) ", text)
    if name and name[1] in vars(args):
        text = f"--{name[1].replace('_', '-')}{text[len(name[1]) :]}"
    return text


# -- fetch -----------------------------------------------------------------------------------


def _unreachable(
    df: pd.DataFrame,
    *,
    code: str = "error_code",
    never_sent: str = C.INVALID_JOB_ID,
    answer: str = "http_status",
) -> bool:
    """Whether Intercom could not be reached at all: every row that was sent (there is one;
    rows whose ``code`` is ``never_sent`` were not) failed with a timeout or a connection
    error, and none has an answer (its ``answer`` column is empty)."""
    sent = df[~df[code].isin([never_sent])]
    return (
        len(sent) > 0
        and bool(sent[code].isin(C.NO_ANSWER_CODES).all())
        and bool(sent[answer].isna().all())
    )


def _host(args: argparse.Namespace) -> str:
    return str(args.base_url or REGIONS.get(str(args.region).lower(), args.region))


def _unreachable_message(df: pd.DataFrame, args: argparse.Namespace) -> str:
    failed = df[df["error_code"].isin(C.NO_ANSWER_CODES)]
    return (
        f"cannot reach Intercom at {_host(args)}: none of the {number(len(failed))} jobs asked "
        f"got an answer ({failed['error_message'].iloc[0]}); check the network or proxy, "
        "--region or --base-url. Nothing was written"
    )


def _fetch(args: argparse.Namespace, done: list[pd.DataFrame]) -> pd.DataFrame:
    """One pass (`fetch_jobs`), stopped there if Intercom cannot be reached; then, with
    ``--wait``, `wait_for_jobs` over its rows (the same cadence and time limit)."""
    options = _connection_options(args)
    ids = _read_ids(args.ids)
    if args.workspaces:
        options["tokens"] = _read_workspaces(args.workspaces)
        if ids.workspaces is None:
            raise _Stop(
                EXIT_USAGE,
                f"--workspaces needs a workspace column in {args.ids} (each job id's workspace)",
            )
    started = time.monotonic()
    df = fetch_jobs(ids, checkpoint=args.checkpoint, **options)
    done.append(df)
    if _unreachable(df):
        raise _Stop(EXIT_UNREACHABLE, _unreachable_message(df, args))
    if not args.wait or df["final"].all():
        return df
    left = None
    if args.wait_timeout is not None:
        left = max(0.0, args.wait_timeout - (time.monotonic() - started))
    # The wait's first round comes poll_interval after these rows were fetched (the engine's
    # rule for rows fetched a moment ago), on the wait's schedule.
    return wait_for_jobs(
        df,
        poll_interval=args.poll_interval,
        timeout=left,
        request_timeout=options.pop("timeout"),
        checkpoint=args.checkpoint,
        **options,
    )


def _fetch_resume_hint(args: argparse.Namespace) -> str:
    if args.checkpoint:
        return f"to resume, run the same command again: the rows so far are in {args.checkpoint}"
    checkpoint = str(Path(args.out).with_suffix(".sqlite")) if args.out else "jobs.sqlite"
    command = shlex.join(["intercom-jobs", *args.argv, "--checkpoint", checkpoint])
    return (
        "to make a run resumable, give it --checkpoint FILE (rows are saved as they come, and "
        f"after a Ctrl-C the same command goes on where it stopped): {command}"
    )


def _interrupted(df: pd.DataFrame | None, args: argparse.Namespace, hint: str) -> int:
    """Ctrl-C: write the rows so far, say how to resume. A second Ctrl-C skips the writing."""
    try:
        print(
            "interrupted: writing the rows so far (Ctrl-C again to skip)",
            file=sys.stderr,
            flush=True,
        )
        if df is not None:
            _emit(df, args.out)
    except KeyboardInterrupt:
        print("interrupted again: the rows were not all written", file=sys.stderr)
    print(hint, file=sys.stderr)
    return EXIT_INTERRUPTED


def _connection_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options every call to Intercom takes, from the flags of `_add_connection_flags`
    (`wait_for_jobs` takes ``timeout`` as ``request_timeout``)."""
    options = {name: getattr(args, name) for name in _FLAGGED}
    options["progress"] = OPTIONS["progress"].default and not args.no_progress
    return options


def _complete(
    args: argparse.Namespace,
    produce: Callable[[list[pd.DataFrame]], pd.DataFrame],
    *,
    summary: Callable[[pd.DataFrame], None],
    hint: Callable[[argparse.Namespace], str],
) -> int:
    """The ending every command that talks to Intercom shares: ``--out`` checked first, then
    ``produce(done)`` (which appends the frame of each step it finishes); the summary and the
    CSV; or the exit code of what stopped it, with the rows so far written on Ctrl-C (those of
    the run cut off, else those of the last step done) and after a run-ending error."""
    if args.out:
        _check_out(args.out)
    done: list[pd.DataFrame] = []
    try:
        df = produce(done)
    except KeyboardInterrupt as exc:  # FetchInterrupted from a run, or between two steps
        rows = getattr(exc, "df", None)
        return _interrupted(rows if rows is not None else (done[-1] if done else None), args,
                            hint(args))  # fmt: skip
    except E.UnreachableError as exc:  # before anything was asked: nothing to write
        raise _Stop(
            EXIT_UNREACHABLE,
            f"{_cli_words(exc, args)}; check the network or proxy, --region or --base-url",
        ) from None
    except E.RunAbortedError as exc:
        print(f"error: {_cli_words(exc, args)}", file=sys.stderr)
        if exc.df is not None and len(exc.df) and args.out:
            _emit(exc.df, args.out)
        return EXIT_AUTH if isinstance(exc, E.AuthenticationError) else EXIT_USAGE
    except E.IntercomJobsError as exc:
        raise _Stop(EXIT_USAGE, _cli_words(exc, args)) from None
    summary(df)
    _emit(df, args.out)
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    return _complete(args, lambda done: _fetch(args, done), summary=_print_summary,
                     hint=_fetch_resume_hint)  # fmt: skip


# -- enqueue ---------------------------------------------------------------------------------


def _read_tickets(source: str, key: str | None) -> pd.DataFrame:
    """The rows of the tickets CSV (checked as `enqueue_tickets` will: a .csv, unique keys);
    a file without rows is refused."""
    try:
        frame, _, _ = ticket_bodies(source, key=key)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    if not len(frame):
        raise _Stop(EXIT_USAGE, f"no rows in {source}")
    return frame


def _enqueue(args: argparse.Namespace, done: list[pd.DataFrame]) -> pd.DataFrame:
    """`enqueue_tickets`, stopped there if no request sent got an answer; then, with ``--wait``
    (or ``--tickets``), `wait_for_jobs` over its rows; then, with ``--tickets``,
    `fetch_tickets` over those."""
    options = _connection_options(args)
    rows = _read_tickets(args.rows, args.key)
    df = enqueue_tickets(
        rows,
        ledger=args.ledger,
        ticket_type_id=args.ticket_type_id,
        key=args.key,
        resend_unknown=args.resend_unknown,
        **options,
    )  # GET /me first (to bind the ledger): UnreachableError if it gets no answer at all
    done.append(df)
    if _unreachable(df, code="enqueue_error_code", never_sent=INVALID_ROW, answer="enqueued_at"):
        if args.out:
            _emit(df, args.out)
        failed = df[df["enqueue_error_code"].isin(C.NO_ANSWER_CODES)]
        reason = str(failed["enqueue_error_message"].iloc[0]).partition("; the request may")[0]
        raise _Stop(
            EXIT_UNREACHABLE,
            f"cannot reach Intercom at {_host(args)}: none of the {number(len(failed))} rows "
            f"sent got an answer ({reason}); check the network or "
            f"proxy, --region or --base-url. The ledger {args.ledger} knows which rows may "
            "have made a ticket (unknown): the same command sends only the others (those with "
            "--resend-unknown, once checked in Intercom)",
        )
    if not (args.wait or args.tickets):
        return df
    request_timeout = options.pop("timeout")
    df = wait_for_jobs(
        df,
        poll_interval=args.poll_interval,
        timeout=args.wait_timeout,
        request_timeout=request_timeout,
        **options,
    )
    done.append(df)
    if not args.tickets:
        return df
    from ._tickets import fetch_tickets  # imported only when asked for

    try:
        return fetch_tickets(df, timeout=request_timeout, **options)
    except (E.FetchInterrupted, E.RunAbortedError) as exc:
        exc.df = df  # its .df holds the tickets read so far; the rows so far are the jobs'
        raise


def _enqueue_summary(args: argparse.Namespace) -> Callable[[pd.DataFrame], None]:
    columns = ["enqueue_status", "enqueue_error_code"]
    if args.wait or args.tickets:
        columns += ["status", "error_code"]
    if args.tickets:
        columns += ["ticket_state", "ticket_error_code"]

    def summary(df: pd.DataFrame) -> None:
        _print_counts(df, [c for c in columns if c in df.columns])
        rejected = df["enqueue_status"] == "rejected"
        changed = df["enqueue_error_code"] == KEY_CHANGED
        if changed.any():
            print(
                f"{int(changed.sum())} rows were sent before with another body (key_changed): "
                "not sent again; give such a row a new key for a new ticket, or restore it",
                file=sys.stderr,
            )
        if (rejected & ~changed).any():
            print(
                f"{int((rejected & ~changed).sum())} rows rejected: see enqueue_error_message; "
                "correct them (the ticket type, the contact...) and run the same command again: "
                "a rejected row is sent again once it changed",
                file=sys.stderr,
            )

    return summary


def _enqueue_resume_hint(args: argparse.Namespace) -> str:
    return (
        "to resume, run the same command again: the ledger "
        f"{args.ledger} records every row sent, and only the rows never sent are sent "
        "(those that may have made a ticket, unknown, only with --resend-unknown)"
    )


def cmd_enqueue(args: argparse.Namespace) -> int:
    return _complete(args, lambda done: _enqueue(args, done), summary=_enqueue_summary(args),
                     hint=_enqueue_resume_hint)  # fmt: skip


# -- sandbox and demo ------------------------------------------------------------------------


def _start_sandbox(args: argparse.Namespace, **settings: Any) -> Sandbox:
    """A started sandbox; bad settings or a port it cannot listen on end the command."""
    try:
        sandbox = Sandbox(**settings)
    except ValueError as exc:
        raise _Stop(EXIT_USAGE, _cli_words(exc, args)) from None
    try:
        return sandbox.start()
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise _Stop(EXIT_USAGE, f"cannot listen on --port {sandbox.port}: {reason}") from None


def cmd_sandbox(args: argparse.Namespace) -> int:
    try:
        port = int(args.port)
    except ValueError:
        raise _Stop(EXIT_USAGE, f"--port must be a port number, got {args.port!r}") from None
    sandbox = _start_sandbox(
        args,
        jobs=args.jobs,
        seed=args.seed,
        latency=args.latency,
        port=port,
        rate_limit=args.rate_limit or None,
        window=args.window,
    )
    try:  # from the first line printed on: a Ctrl-C as soon as it is read stops it cleanly
        print(
            f"sandbox listening on {sandbox.base_url} with {number(len(sandbox.job_ids))} jobs "
            f"({sandbox.job_ids[0]}..{sandbox.job_ids[-1]})",
            flush=True,
        )
        print(
            f"  export {TOKEN_ENV}={sandbox.token}   # the sandbox's own token, not a secret",
            flush=True,
        )
        types = ", ".join(f"{type_id} ({name})" for type_id, name in sandbox.ticket_types.items())
        print(f"  ticket types: {types}   # for enqueue's --ticket-type-id", flush=True)
        print("Ctrl-C stops it.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    _check_out(args.out)
    sandbox = _start_sandbox(
        args, jobs=args.jobs, seed=0, latency=0.02, faults={"server_error": 0.01}
    )
    try:
        ids = [*sandbox.job_ids, "404404", "not/a/job"]
        print(
            f"Offline demo: a local Intercom sandbox at {sandbox.base_url}, "
            f"{number(len(ids))} job ids (two of them bad on purpose).",
            file=sys.stderr,
        )
        started = time.perf_counter()
        df = fetch_jobs(ids, token=sandbox.token, base_url=sandbox.base_url)
        elapsed = time.perf_counter() - started
    finally:
        sandbox.stop()
    print(
        f"fetched {number(len(df))} jobs in {elapsed:.1f} s ({len(df) / elapsed:,.0f} jobs/s)",
        file=sys.stderr,
    )
    _print_summary(df)
    path = _write_out(df, args.out)
    print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK


# -- the parser ------------------------------------------------------------------------------


def _seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text!r}")
    return value


def _add_out_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--out",
        metavar="|".join(f"FILE{suffix}" for suffix in OUT_FORMATS),
        help=f"write the results to this file, in the format its extension names ({_OUT_NAMES}"
        "); its folder must exist and be writable (default: CSV to stdout)",
    )


def _add_wait_flags(command: argparse.ArgumentParser, wait_help: str) -> None:
    command.add_argument("--wait", action="store_true", help=wait_help)
    command.add_argument(
        "--poll-interval",
        type=_seconds,
        default=DEFAULT_POLL_INTERVAL,
        metavar="S",
        help="with --wait: seconds between polls (default: %(default)s)",
    )
    command.add_argument(
        "--wait-timeout",
        type=_seconds,
        default=None,
        metavar="S",
        help="with --wait: stop waiting after this many seconds (default: no limit)",
    )


#: The options the command line takes as ``--flag VALUE``: those of `OPTIONS` with a metavar.
_FLAGGED = [name for name, option in OPTIONS.items() if option.metavar is not None]


def _add_connection_flags(command: argparse.ArgumentParser) -> None:
    """The flags of every command that talks to Intercom (read by `_connection_options`):
    one per option of `OPTIONS` that has a ``metavar``, and ``--no-progress``. The token is
    never a flag."""
    for name in _FLAGGED:
        option = OPTIONS[name]
        default = option.default
        command.add_argument(
            f"--{name.replace('_', '-')}",
            type=option.parse or str,
            default=default,
            metavar=option.metavar,
            help=f"{option.help} (default: " + ("none)" if default is None else "%(default)s)"),
        )
    command.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bar (default: "
        + ("shown on stderr)" if OPTIONS["progress"].default else "hidden)"),
    )


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="intercom-jobs",
        description="What became of my Intercom jobs? Fetch job statuses in bulk.",
        epilog=f"{TOKEN_HELP}\n\n{EXIT_CODES_HELP}",
        formatter_class=raw,
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print the version and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    fetch = sub.add_parser(
        "fetch",
        help="fetch job statuses listed in a .txt/.csv file or stdin",
        description="Fetch the status of every job listed, as CSV to --out or stdout.",
        epilog=f"{TOKEN_HELP}\n\n{EXIT_CODES_HELP}",
        formatter_class=raw,
    )
    fetch.add_argument("ids", help="a .txt (one id a line) or .csv file of job ids, or - for stdin")
    _add_out_flag(fetch)
    _add_wait_flags(fetch, "poll the jobs still pending until all are final (default: one pass)")
    fetch.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="SQLite file that saves rows as they come; the same command run again resumes "
        "where it stopped (default: none)",
    )
    fetch.add_argument(
        "--workspaces",
        metavar="FILE.csv",
        help="many workspaces at once: a CSV with the columns workspace and token_env (the "
        "environment variable holding that workspace's token); the ids file then needs a "
        "workspace column (default: one workspace, the token from "
        f"{TOKEN_ENV})",
    )
    _add_connection_flags(fetch)
    fetch.set_defaults(func=cmd_fetch)

    enqueue = sub.add_parser(
        "enqueue",
        help="create a ticket for each row of a CSV, never two for one row",
        description="Create a ticket for each row of a CSV (POST /tickets/enqueue), and write\n"
        "each row with its job id and outcome as CSV to --out or stdout.\n\n"
        "The CSV's columns: key (the row's identity, unique; without it, the row's contact and\n"
        "title); "
        "one of contact_id, contact_external_id, contact_email; title, description, attr:NAME\n"
        "(a ticket attribute); optional ticket_type_id, company_id, created_at,\n"
        "skip_notifications.",
        epilog=f"{ENQUEUE_EXAMPLE}\n\n{TOKEN_HELP}\n\n{EXIT_CODES_HELP}",
        formatter_class=raw,
    )
    enqueue.add_argument("rows", metavar="TICKETS.csv", help="a .csv file, one ticket a row")
    enqueue.add_argument(
        "--ledger",
        required=True,
        metavar="FILE",
        help="required (no default): SQLite file that records each row sent, before and after "
        "its request; it is what makes a rerun safe: the same command run again (after a "
        "Ctrl-C, a crash, a lost answer) sends only the rows it never sent, so no row makes "
        "two tickets",
    )
    enqueue.add_argument(
        "--ticket-type-id",
        metavar="ID",
        help="the ticket type of the rows without a ticket_type_id value "
        "(default: the ticket_type_id column)",
    )
    enqueue.add_argument(
        "--key",
        metavar="COLUMN",
        help="the column that holds each row's key, if it is not named key (default: key, "
        "else each row's contact and title)",
    )
    enqueue.add_argument(
        "--resend-unknown",
        action="store_true",
        help="send again the rows whose earlier request may or may not have made a ticket "
        "(enqueue_status unknown); check them in Intercom first (default: never resent)",
    )
    enqueue.add_argument(
        "--tickets",
        action="store_true",
        help="also fetch the tickets the jobs made; implies --wait (default: off)",
    )
    _add_out_flag(enqueue)
    _add_wait_flags(enqueue, "then poll the jobs until all are final (default: enqueue only)")
    _add_connection_flags(enqueue)
    enqueue.set_defaults(func=cmd_enqueue)

    sandbox = sub.add_parser(
        "sandbox",
        help="run the local Intercom sandbox until Ctrl-C",
        description="Run a local stand-in for Intercom's job-status API until Ctrl-C.",
    )
    sandbox.add_argument(
        "--port",
        default=str(_SANDBOX_DEFAULTS["port"]),
        metavar="N",
        help=f"port to listen on at {_SANDBOX_DEFAULTS['host']} "
        "(default: %(default)s, a free port)",
    )
    sandbox.add_argument(
        "--jobs",
        type=int,
        default=_SANDBOX_DEFAULTS["jobs"],
        metavar="N",
        help="how many jobs to create (default: %(default)s)",
    )
    sandbox.add_argument(
        "--seed",
        type=int,
        default=_SANDBOX_DEFAULTS["seed"],
        metavar="N",
        help="seed of the jobs' outcomes (default: %(default)s)",
    )
    sandbox.add_argument(
        "--latency",
        type=_seconds,
        default=_SANDBOX_DEFAULTS["latency"],
        metavar="S",
        help="seconds slept before each answer (default: %(default)s)",
    )
    sandbox.add_argument(
        "--rate-limit",
        type=int,
        default=_SANDBOX_DEFAULTS["rate_limit"] or 0,
        metavar="N",
        help="requests allowed per window, 0 for no limit (default: %(default)s)",
    )
    sandbox.add_argument(
        "--window",
        type=int,
        default=_SANDBOX_DEFAULTS["window"],
        metavar="S",
        help="length of a rate-limit window in seconds (default: %(default)s)",
    )
    sandbox.set_defaults(func=cmd_sandbox)

    demo = sub.add_parser(
        "demo",
        help=f"offline demo: fetch {_SANDBOX_DEFAULTS['jobs']:,} jobs from the sandbox",
        description="Fetch jobs from a local sandbox: no token, no network.",
    )
    demo.add_argument(
        "--out",
        default="jobs-demo.csv",
        metavar="|".join(f"FILE{suffix}" for suffix in OUT_FORMATS),
        help=f"file to write, {_OUT_NAMES} by its extension (default: %(default)s)",
    )
    demo.add_argument(
        "--jobs",
        type=int,
        default=_SANDBOX_DEFAULTS["jobs"],
        metavar="N",
        help="how many jobs the sandbox holds (default: %(default)s)",
    )
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        if getattr(args, "ids", None) not in (None, "-") and not Path(args.ids).suffix:
            raise _Stop(EXIT_USAGE, "IDS_FILE must be a .txt or .csv file, or - for stdin")
        return int(args.func(args))
    except _Stop as stop:
        print(f"error: {stop}", file=sys.stderr)
        return stop.code
    except KeyboardInterrupt:  # outside a run, or a second Ctrl-C
        with contextlib.suppress(KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
