"""Progress as people see it: the gate's status, the snapshot's figures, the text bar in an
80-column terminal, the run's own rate, and the widget bar wherever a Jupyter kernel can draw it."""

from __future__ import annotations

import io
import re
import sys
import threading
import time
import types
from email.utils import formatdate

import pytest

from intercom_jobs_nb import _pacing as pacing
from intercom_jobs_nb import _progress as progress_module
from intercom_jobs_nb._clock import FakeClock
from intercom_jobs_nb._pacing import BLOCKED, Pacer, PaceStatus, RateGate
from intercom_jobs_nb._progress import MIN_BAR, Progress, Snapshot, bar_class, in_widget_kernel


class Row:
    """Just enough of a job row for `job_outcome`."""

    def __init__(self, status: str | None, error_code: str | None = None) -> None:
        self.status = status
        self.error_code = error_code


OUTCOMES = [Row("success"), Row("failed"), Row("pending"), Row(None, "job_not_found")]


def window_headers(
    limit: int, remaining: int, reset_in: float, now: float | None = None
) -> dict[str, str]:
    now = time.time() if now is None else now
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(now + reset_in)),
        "Date": formatdate(now, usegmt=True),
    }


# -- the gate's status ---------------------------------------------------------------------------


def test_a_fresh_gate_knows_no_limit_and_holds_nothing():
    assert RateGate().status() == PaceStatus(limit=None, remaining=None, waiting=0.0, blocked=False)


def test_a_spent_window_says_how_long_requests_are_held():
    gate = RateGate()
    assert gate.acquire() == pacing.GO
    gate.release(window_headers(limit=10, remaining=0, reset_in=4), time.time(), 200)
    status = gate.status()
    assert (status.limit, status.remaining, status.blocked) == (10, 0, False)
    # The reset is 3 to 4 s away (whole UNIX seconds), plus a little jitter.
    assert 2.0 < status.waiting <= 4.3


def test_the_budget_counts_requests_in_flight_and_nothing_is_held_while_it_lasts():
    gate = RateGate()
    gate.acquire()
    gate.release(window_headers(limit=10, remaining=6, reset_in=8), time.time(), 200)
    gate.acquire()
    gate.acquire()
    status = gate.status()
    assert (status.limit, status.remaining, status.waiting) == (10, 4, 0.0)


def test_a_max_rps_cap_holds_the_next_request_until_its_slot():
    gate = RateGate(max_rps=2)
    gate.acquire()
    gate.release(window_headers(limit=100, remaining=50, reset_in=8), time.time(), 200)
    gate.acquire()  # takes a slot: the next is half a second later
    assert 0.0 < gate.status().waiting <= 0.5


def test_a_gate_the_server_blocks_says_so_and_holds_nothing():
    clock = FakeClock()  # the window that allows nothing passes at once
    gate = RateGate(clock=clock)
    gate.acquire()
    gate.release(window_headers(limit=0, remaining=0, reset_in=0, now=clock.time()), None, 429)
    deadline = clock.monotonic() + 5
    while (outcome := gate.acquire()) != BLOCKED and clock.monotonic() < deadline:
        gate.release()
    assert outcome == BLOCKED
    status = gate.status()
    assert status.blocked and status.waiting == 0.0 and status.limit == 0


def test_status_answers_while_workers_wait_in_the_gate_and_the_pacer_delegates():
    gate = RateGate()
    gate.acquire()
    gate.release(window_headers(limit=5, remaining=0, reset_in=3), time.time(), 200)
    pacer = Pacer(gate)
    waiting = threading.Thread(target=pacer.acquire, daemon=True)
    waiting.start()
    time.sleep(0.1)
    assert waiting.is_alive()  # held by the gate, with its lock released while it waits
    status = pacer.status()
    assert status == gate.status() or abs(status.waiting - gate.status().waiting) < 0.2
    assert status.waiting > 1.0 and status.remaining == 0
    pacer.halt()
    waiting.join(5)
    assert not waiting.is_alive()


# -- the snapshot --------------------------------------------------------------------------------


def test_a_snapshot_carries_the_runs_rate_eta_and_the_gates_figures():
    snapshots: list[Snapshot] = []
    pace = PaceStatus(limit=1000, remaining=640, waiting=0.0, blocked=False)
    # A resumed run: 40 rows were known before it (e.g. a checkpoint).
    progress = Progress(snapshots.append, 100, done=40, pace=lambda: pace)
    time.sleep(0.5)
    for row in OUTCOMES * 3:
        progress.count(row)
        progress.advance()
    progress.close()
    last = snapshots[-1]
    assert last.finished and (last.done, last.total) == (52, 100)
    assert (last.limit, last.remaining, last.waiting) == (1000, 640, 0.0)
    # 12 rows in at least half a second: at most 24 rows/s, not (12 + 40) / elapsed.
    assert last.rate is not None and 0 < last.rate <= 24
    assert last.eta == pytest.approx(48 / last.rate)
    assert last.workspaces == {}
    assert (last.success, last.failed, last.pending, last.errors) == (3, 3, 3, 3)


def test_rate_and_eta_are_unknown_before_the_first_row():
    progress = Progress(lambda s: None, 10)
    snap = progress.snapshot()
    assert snap.rate is None and snap.eta is None and snap.limit is None and snap.waiting == 0.0


def test_workspaces_count_their_own_rows():
    progress = Progress(lambda s: None, 7, lanes={"eu": 4, "us": 3}, lanes_done={"us": 1})
    progress.advance(2, lane="eu")
    progress.advance(1, lane="us")
    assert progress.snapshot().workspaces == {"eu": (2, 4), "us": (2, 3)}
    assert Progress(lambda s: None, 3, lanes={"us": 3}).snapshot().workspaces == {}


def test_describe_says_the_eta_and_what_the_rate_limit_holds_back():
    snap = Snapshot(
        120,
        300,
        {"success": 100, "failed": 10, "pending": 5, "errors": 5},
        rate=12.0,
        eta=15.0,
        limit=1000,
        remaining=0,
        waiting=5.2,
    )
    text = snap.describe()
    assert text.startswith("120/300 · success 100 · failed 10 · pending 5 · errors 5")
    assert "12.0/s" in text and "ETA 15 s" in text
    assert "waiting 6 s for the rate-limit window" in text
    assert Snapshot(3, 3, {"success": 3}, finished=True, rate=9.0, eta=0.0).describe() == (
        "3/3 · success 3"
    )
    assert "ETA 2 min 5 s" in Snapshot(1, 9, rate=1.0, eta=125).describe()


def test_the_callback_hears_of_a_wait_while_no_row_arrives():
    snapshots: list[Snapshot] = []
    pace = PaceStatus(limit=10, remaining=0, waiting=6.0, blocked=False)
    progress = Progress(snapshots.append, 10, pace=lambda: pace)
    deadline = time.monotonic() + 10
    while not snapshots and time.monotonic() < deadline:
        time.sleep(0.05)
    progress.close()
    assert snapshots[0].waiting == 6.0 and not snapshots[0].finished
    assert "waiting 6 s for the rate-limit window" in snapshots[0].describe()
    assert snapshots[-1].finished and snapshots[-1].waiting == 0.0


# -- the text bar --------------------------------------------------------------------------------


def text_bar(total: int, *, ncols: int = 80, unicode: bool = True, **kwargs) -> tuple:
    out = io.StringIO()
    options = {
        "file": out,
        "ncols": ncols,
        "dynamic_ncols": False,
        "ascii": not unicode,
        "mininterval": 0,
        "miniters": 1,
    }
    return Progress(True, total, bar_options=options, **kwargs), out


def redraws(out: io.StringIO) -> list[str]:
    return [line for line in re.split(r"[\r\n]", out.getvalue()) if line.strip()]


SYMBOLS = r"✓(\d+) ✗(\d+) …(\d+) !(\d+)"
LETTERS = r"s=(\d+) f=(\d+) p=(\d+) e=(\d+)"


@pytest.fixture(autouse=True)
def bars_drawn(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)


@pytest.mark.parametrize("unicode", [True, False], ids=["unicode", "ascii"])
@pytest.mark.parametrize("total", [202, 3000, 250_000])
def test_in_80_columns_the_bar_keeps_10_characters_and_no_count_is_cut(total, unicode):
    progress, out = text_bar(total, unicode=unicode)
    step, done, i = max(1, total // 400), 0, 0
    while done < total:
        n = min(step, total - done)
        for _ in range(n):
            progress.count(OUTCOMES[i % 7 % 4])
            i += 1
        progress.advance(n)
        done += n
    progress.close()
    lines = redraws(out)
    assert len(lines) > 100
    pattern = re.compile(r"(\d+)/\d+.*?" + (SYMBOLS if unicode else LETTERS) + r"\]?$")
    for line in lines:
        assert len(line) <= 80, line
        bar = re.search(r"\|(.*)\|", line)
        assert bar and len(bar.group(1)) >= MIN_BAR, line
        match = pattern.search(line)
        assert match, line  # every count there, whole, at the end of the line
        done, *counts = map(int, match.groups())
        assert done == sum(counts), line  # the counts match the position
    assert f"{total}/{total}" in lines[-1]


@pytest.mark.parametrize("unicode", [True, False], ids=["unicode", "ascii"])
def test_counts_and_a_rate_that_outgrow_the_layout_within_one_refresh_keep_10_characters(unicode):
    """A slow first row, then rows by the thousand before the next refresh (0.2 s): the layout
    measured at the first row (1-digit counts, 10 rows/s) no longer fits. It failed now and then
    on Python 3.14 in the test above, whose first row's rate was low at times."""
    progress, out = text_bar(3000, unicode=unicode)
    time.sleep(0.1)
    progress.count(OUTCOMES[0])
    progress.advance(1)
    for i in range(1, 3000):
        progress.count(OUTCOMES[i % 4])
        progress.advance(1)
    progress.close()
    lines = redraws(out)
    pattern = re.compile(r"(\d+)/\d+.*?" + (SYMBOLS if unicode else LETTERS) + r"\]?$")
    for line in lines:
        assert len(line) <= 80, line
        bar = re.search(r"\|(.*)\|", line)
        assert bar and len(bar.group(1)) >= MIN_BAR, line
        assert pattern.search(line), line  # every count there, whole, at the end of the line
    assert "3000/3000" in lines[-1]


def test_a_wide_terminal_shows_the_counts_in_full():
    progress, out = text_bar(300, ncols=160)
    for i in range(300):
        progress.count(OUTCOMES[i % 4])
        progress.advance()
    progress.close()
    assert redraws(out)[-1].endswith("success=75 failed=75 pending=75 errors=75]")


def test_in_80_columns_the_bar_says_it_waits_for_the_rate_limit_window():
    pace = PaceStatus(limit=1000, remaining=0, waiting=5.3, blocked=False)
    progress, out = text_bar(3000, pace=lambda: pace)
    for i in range(40):
        progress.count(OUTCOMES[i % 4])
        progress.advance()
    time.sleep(0.8)  # no row arrives: the ticker redraws with the wait
    progress.close()
    waiting = [line for line in redraws(out) if "wait 6s" in line]
    assert waiting, redraws(out)[-3:]
    for line in waiting:
        assert len(line) <= 80 and len(re.search(r"\|(.*)\|", line).group(1)) >= MIN_BAR
        assert re.search(SYMBOLS + r" wait 6s\]?$", line), line
    assert "wait" not in redraws(out)[-1]  # the finished bar waits for nothing


def test_the_first_frame_counts_the_rows_known_before_the_run():
    """`fetch --wait`'s second bar started at 219/300 with every count at 0."""
    known = [Row("success")] * 200 + [Row("failed")] * 19 + [Row("pending")] * 81
    progress, out = text_bar(300, ncols=160, done=219, rows=known)
    progress.close()
    first = redraws(out)[0]
    assert "219/300" in first and "success=200 failed=19 pending=81" in first, first


def test_a_resumed_run_shows_its_own_rate_not_the_checkpoints_rows():
    # 2,900 rows came from a checkpoint; this run settles 10 in at least half a second.
    progress, out = text_bar(3000, ncols=160, done=2900)
    time.sleep(0.5)
    for _ in range(10):
        progress.count(Row("success"))
        progress.advance()
    progress.close()
    rates = [float(r) for r in re.findall(r"([\d.]+)job/s", out.getvalue())]
    assert rates and max(rates) <= 20  # 10 rows / >= 0.5 s, never (2900 + 10) / elapsed
    assert progress.snapshot().rate is not None and progress.snapshot().rate <= 20


# -- which bar -----------------------------------------------------------------------------------


@pytest.fixture
def jupyter_kernel(monkeypatch):
    """This process looks like a Jupyter kernel (as in JupyterLab, Notebook or VS Code)."""
    import IPython

    shell = types.SimpleNamespace(kernel=object())
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    for name in ("QT_API", "SPYDER_ARGS"):
        monkeypatch.delenv(name, raising=False)
    return shell


def test_a_jupyter_kernel_gets_the_widget_bar_even_in_vs_code(jupyter_kernel, monkeypatch):
    from tqdm.notebook import tqdm as widget_tqdm

    monkeypatch.setenv("VSCODE_PID", "4242")
    assert in_widget_kernel()
    assert bar_class() is widget_tqdm


def test_a_terminal_or_a_kernel_without_ipywidgets_gets_the_text_bar(monkeypatch, jupyter_kernel):
    from tqdm.std import tqdm as text_tqdm

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # not importable
    assert not in_widget_kernel() and bar_class() is text_tqdm
    monkeypatch.undo()
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # plain Python, no shell
    assert not in_widget_kernel() and bar_class() is text_tqdm
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace())  # IPython REPL
    assert not in_widget_kernel() and bar_class() is text_tqdm


def test_the_qt_console_gets_the_text_bar(jupyter_kernel, monkeypatch):
    monkeypatch.setenv("QT_API", "pyqt5")
    assert not in_widget_kernel()


def test_the_widget_bar_leaves_a_finished_bar_in_the_saved_notebook(jupyter_kernel, monkeypatch):
    """A saved notebook keeps the text of a widget's display: it must be the finished bar's."""
    import IPython.display

    shown: list[str] = []

    class Handle:
        def update(self, obj):
            shown.append(repr(obj))

    def display(obj, display_id=None):
        assert display_id is True
        shown.append(repr(obj))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    progress = Progress(True, 4)
    assert type(progress._bar).__module__ == "tqdm.notebook"
    for row in OUTCOMES:
        progress.count(row)
        progress.advance()
    progress.close()
    assert "0/4" in shown[0]
    assert "100%" in shown[-1] and "4/4" in shown[-1]
    assert "success=1 failed=1 pending=1 errors=1" in shown[-1]


def test_a_widget_bar_given_a_delay_is_shown_once(jupyter_kernel, monkeypatch):
    """The bar displays its widget itself, at once: tqdm's delayed display must not add a second."""
    import IPython.display
    import tqdm.notebook

    shown: list[object] = []

    class Handle:
        def update(self, obj):
            pass

    def display(obj, display_id=None):
        shown.append(obj)
        return Handle()

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(tqdm.notebook, "display", display)  # tqdm's own, imported by name
    progress = Progress(True, 4, bar_options={"delay": 0.05, "mininterval": 0})
    time.sleep(0.1)  # past the delay: tqdm would show a bar not shown yet
    for row in OUTCOMES:
        progress.count(row)
        progress.advance()
        time.sleep(0.01)
    progress.close()
    assert len(shown) == 1


def test_progress_module_exports_what_it_names():
    for name in progress_module.__all__:
        assert hasattr(progress_module, name)
    assert "PaceStatus" in pacing.__all__
