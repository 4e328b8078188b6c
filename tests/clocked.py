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
from intercom_jobs_nb._engine import run
from intercom_jobs_nb._ids import read_job_ids
from intercom_jobs_nb._options import Options


def fetch_jobs_on(clock: Clock, ids: Any, **options: Any) -> pd.DataFrame:
    """What ``ij.fetch_jobs(ids, **options)`` returns, with the run's waits on ``clock``."""
    options.setdefault("progress", False)
    return run(read_job_ids(ids), Options.build(**options), clock=clock)
