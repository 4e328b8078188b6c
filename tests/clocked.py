"""Runs on a fake clock: the engine behind `ij.fetch_jobs`, with every wait on a `FakeClock`.

The public functions take no clock (time is the real one for users); a test that goes through
rate-limit windows, resets and backoffs runs the same engine on the clock its server reads
(``Sandbox(clock=...)``, ``HostileServer(clock=...)``), over real loopback sockets, and the
windows pass in milliseconds.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from intercom_jobs_nb._clock import Clock
from intercom_jobs_nb._engine import from_frame, run
from intercom_jobs_nb._ids import read_job_ids
from intercom_jobs_nb._options import Options


def fetch_jobs_on(clock: Clock, ids: Any, **options: Any) -> pd.DataFrame:
    """What ``ij.fetch_jobs(ids, **options)`` returns, with the run's waits on ``clock``."""
    options.setdefault("progress", False)
    return run(read_job_ids(ids), Options.build(**options), clock=clock)


def wait_for_jobs_on(
    clock: Clock,
    ids_or_df: Any,
    *,
    poll_interval: float,
    schedule: str = "adaptive",
    timeout: float | None = None,
    **options: Any,
) -> pd.DataFrame:
    """What ``ij.wait_for_jobs(ids_or_df, poll_interval=..., schedule=...)`` returns, with the
    run's waits (its rounds' pauses too) on ``clock``."""
    options.setdefault("progress", False)
    if isinstance(ids_or_df, pd.DataFrame) and "status" in ids_or_df.columns:
        job_ids, known = from_frame(ids_or_df)
    else:
        job_ids, known = read_job_ids(ids_or_df), {}
    return run(
        job_ids,
        Options.build(**options),
        known=known,
        until_final=True,
        poll_interval=poll_interval,
        timeout=timeout,
        schedule=schedule,  # type: ignore[arg-type]
        clock=clock,
    )
