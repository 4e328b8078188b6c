"""Shared helpers for the benchmark scripts: a sandbox in its own process, a Dask cluster, and
table printing.

The sandbox runs in a child process (multiprocessing, "spawn") so that the benchmark process's
CPU time (``time.process_time()``) and memory are the client's alone. The child stops when the
parent says so, when the parent's end of the pipe closes, or after ``max_seconds``: nothing is
left running.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import multiprocessing as mp
import os
import platform
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run from anywhere without installing
    sys.path.insert(0, ROOT)


def _serve(kwargs: dict[str, Any], conn: Any, max_seconds: float) -> None:
    """Child process: start a Sandbox, send back where it is, serve until told to stop."""
    from intercom_jobs_nb.sandbox import Sandbox

    sandbox = Sandbox(**kwargs).start()
    conn.send((sandbox.base_url, sandbox.token, sandbox.job_ids))
    try:
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            if conn.poll(0.5):
                message = conn.recv()
                if message == "stop":
                    break
                if message == "stats":
                    conn.send(sandbox.stats)
                elif message == "reset_stats":
                    sandbox.reset_stats()
                    conn.send(True)
                elif message == "enqueued":
                    conn.send(sandbox.enqueued)
                elif message == "unnoticed":
                    conn.send(sandbox.unnoticed())
                elif isinstance(message, tuple) and message[0] == "count_tickets":
                    conn.send(sandbox.count_tickets(by=message[1]))
    except (EOFError, OSError, KeyboardInterrupt):
        pass
    finally:
        sandbox.stop()


class RemoteSandbox:
    """A `Sandbox` in a child process. Use as a context manager.

    Attributes: ``base_url``, ``token``, ``job_ids``; ``stats()``, ``reset_stats()``,
    ``enqueued()``, ``unnoticed()`` and ``count_tickets(by)`` ask the child (``stats_http()`` reads
    ``GET /__sandbox/stats`` instead).
    """

    def __init__(self, max_seconds: float = 1800.0, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.max_seconds = max_seconds
        self._proc: Any = None
        self._conn: Any = None

    def __enter__(self) -> RemoteSandbox:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(self.kwargs, child, self.max_seconds), name="sandbox", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(120):
            self.__exit__()
            raise RuntimeError("the sandbox process did not start")
        self.base_url, self.token, self.job_ids = parent.recv()
        return self

    def stats(self) -> dict[str, Any]:
        self._conn.send("stats")
        return self._conn.recv()

    def reset_stats(self) -> None:
        self._conn.send("reset_stats")
        self._conn.recv()

    def enqueued(self) -> int:
        """`Sandbox.enqueued`: enqueue requests carried out (each made a job)."""
        self._conn.send("enqueued")
        return self._conn.recv()

    def count_tickets(self, by: str = "title") -> dict[Any, int]:
        """`Sandbox.count_tickets` (``by`` a field or attribute name, not a function)."""
        self._conn.send(("count_tickets", by))
        return self._conn.recv()

    def unnoticed(self) -> dict[str, float]:
        """`Sandbox.unnoticed`: how long each job answered final went unnoticed."""
        self._conn.send("unnoticed")
        return self._conn.recv()

    def stats_http(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base_url}/__sandbox/stats", timeout=30) as answer:
            return json.loads(answer.read())

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send("stop")
            self._conn.close()
        if self._proc is not None:
            self._proc.join(10)
            if self._proc.is_alive():  # our own child, by its handle
                self._proc.terminate()
                self._proc.join(5)


@contextlib.contextmanager
def dask_cluster(workers: int, threads: int) -> Iterator[Any]:
    """A client of a ``LocalCluster`` of ``workers`` processes with ``threads`` threads each,
    closed on exit. Its workers inherit this process's environment (the tokens set in it) and
    have imported ``intercom_jobs_nb.dask`` (imports out of the timings)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(importlib.import_module, "intercom_jobs_nb.dask")
        yield client


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str = "") -> str:
    """A plain-text table; ``align`` per column 'l' or 'r' (default: first left, rest right)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if a == "l" else c.rjust(w)
            for c, w, a in zip(row, widths, align, strict=True)
        ).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def machine() -> str:
    import pandas
    import requests

    return (
        f"python {platform.python_version()}, pandas {pandas.__version__}, requests "
        f"{requests.__version__}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.machine()}"
    )


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
