"""The benchmark scripts still run (their --quick smoke mode); their figures go in
docs/how-it-works/performance.md.

These check that each script completes and prints its verdict table, not how fast anything is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs each benchmark script in its --quick form

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize(
    "script",
    [
        "bench_throughput.py",
        "bench_ratelimit.py",
        "bench_scale.py",
        "bench_enqueue.py",
        "bench_workspaces.py",
        "bench_read_ids.py",
        "bench_panel.py",
        "bench_wait.py",
    ],
)
@pytest.mark.timeout(900)
def test_benchmark_script_runs_in_quick_mode(script):
    """Each exits 0 only when every target it judges is met."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MET" in done.stdout  # the verdict table was printed
    assert "Traceback" not in done.stderr
