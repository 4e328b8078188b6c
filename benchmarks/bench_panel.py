"""The JobsPanel's table with 100,000 rows: what the kernel sends the page per view.

    python benchmarks/bench_panel.py            # 100,000 rows (~30 s)
    python benchmarks/bench_panel.py --quick    # a smoke run: 20,000 rows

The panel's page scrolls through every row but asks the kernel only for the rows in sight (and a
margin each side): at most ``MAX_WINDOW`` rows a message. This script builds a jobs frame of N rows
(a 200-job sandbox fetch, repeated with ids of their own), gives it to a `JobsPanel` watched by a
recorder of the bytes each change of its model would put on the wire (the changed trait's state as
JSON, as ipywidgets sends it), and measures:

* ``results``: what showing the frame sends (the summary, the chart's counts, the columns and
  their widths, the filters' choices, the first window of rows);
* ``scroll``: one view of the table as the page asks it while scrolling (98 rows: the ~18 in
  sight of a 400 px box and 40 each side), at the top, middle and end;
* ``header click`` and ``find``: a sort and a find, each with its window;

and, as the baseline measured in the same run, the **full table**: every row as the page would
need it without windowing (the same cells, JSON). Printed: the bytes of each, the ratio to the
full table, and the seconds each took in Python (informative; not judged). The verdict judges
bytes only: each view sends at most ``MAX_WINDOW`` rows and under 1% of the full table's bytes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import traitlets
from _common import machine, table, verdict

import intercom_jobs_nb as ij
from intercom_jobs_nb._panel_table import MAX_WINDOW
from intercom_jobs_nb.sandbox import Sandbox

PAGE_ASKS = 98  # rows the page asks for a view: ~18 in sight of a 400 px box, 40 each side


class Recorder:
    """Counts the bytes of what the widget would send for each change of its model: the JSON
    of the changed trait's state (`Widget.get_state`), whatever comm (or none) it has. Public
    APIs only (``observe``, ``get_state``), so it measures alike on every ipywidgets version."""

    def __init__(self, panel: Any) -> None:
        self.sent = 0
        self.rows = 0
        panel.observe(self, names=traitlets.All)

    def __call__(self, change: Any) -> None:
        state = change["owner"].get_state(change["name"])
        self.sent += len(json.dumps(state, default=str, separators=(",", ":")).encode())
        if "window" in state:
            self.rows = max(self.rows, len(state["window"].get("rows", [])))


def frame(rows: int):
    import pandas as pd

    with Sandbox(jobs=200, seed=0, pending_share=0.2) as sb:
        df = ij.fetch_jobs(sb.job_ids, token=sb.token, base_url=sb.base_url, progress=False)
    big = pd.concat([df] * -(-rows // len(df)), ignore_index=True).iloc[:rows]
    return big.assign(job_id=[str(10**7 + k) for k in range(rows)])


def measure(panel: Any, recorder: Recorder, action: Any) -> tuple[int, int, float]:
    recorder.sent = recorder.rows = 0
    started = time.perf_counter()
    action()
    return recorder.sent, recorder.rows, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    args = parser.parse_args()
    n = 20_000 if args.quick else 100_000
    df = frame(n)
    panel = ij.JobsPanel(["1001"], base_url="http://127.0.0.1:9")
    recorder = Recorder(panel)
    t = panel.controller.table

    def ask(start: int) -> Any:
        return lambda: panel._on_message(
            panel, {"type": "window", "start": start, "count": PAGE_ASKS}, []
        )

    def send(**message: Any) -> Any:
        return lambda: panel._on_message(panel, message, [])

    views = [
        ("results", lambda: setattr(panel, "df", df)),
        ("scroll, top", ask(0)),
        ("scroll, middle", ask(n // 2)),
        ("scroll, end", ask(n - PAGE_ASKS)),
        (
            "header click",
            lambda: panel._on_message(panel, {"type": "sort", "column": "job_id"}, []),
        ),
        ("find", lambda: panel._on_message(panel, {"type": "find", "text": str(10**7 + 7)}, [])),
    ]
    measured = [(name, *measure(panel, recorder, action)) for name, action in views]
    full_rows = [[str(v) for v in row] for row in t.view()[t.columns].astype(object).to_numpy()]
    full = len(json.dumps(full_rows, separators=(",", ":")).encode())
    rows = [("full table (baseline)", f"{full:,}", f"{n:,}", "1", "")]
    ok = True
    for name, sent, shown, seconds in measured:
        ratio = sent / full
        view = name != "results"
        ok &= shown <= MAX_WINDOW and (not view or ratio < 0.01)
        rows.append((name, f"{sent:,}", f"{shown:,}", f"{ratio:.4f}", f"{seconds:.3f}"))
    print(f"JobsPanel, a table of {n:,} rows: bytes the kernel sends ({machine()})")
    print(table(["message", "bytes", "rows", "ratio to full", "seconds"], rows))
    print()
    print(table(["target", "verdict"], [
        (f"each view: at most {MAX_WINDOW} rows and under 1% of the full table's bytes",
         verdict(ok)),
    ]))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
