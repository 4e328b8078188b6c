"""Progress: a tqdm bar (a widget in Jupyter, text in a terminal) or a callback, with live counts.

``progress=True`` draws a bar (``TQDM_DISABLE=1`` turns it off), ``progress=False`` shows
nothing, and a callable receives a `Snapshot` a few times a second and once at the end (the
JobsPanel uses that).

The bar is a widget in any Jupyter kernel where ipywidgets can render (JupyterLab, Notebook,
VS Code, Colab), and text elsewhere: `bar_class` decides, not `tqdm.auto` (which gives text in
VS Code). A text bar fits its terminal: when the counts do not fit beside a bar of at least
`MIN_BAR` characters they are abbreviated (``✓150 ✗12 …3 !2``), then the least useful fields
go (elapsed time, rate, label); nothing is cut. The rate is this run's own (rows known before
it, e.g. from a checkpoint, are not counted), and while the rate-limit gate holds requests back
the bar and the snapshots say so ("wait 6s").
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._format import number
from ._pacing import PaceStatus
from ._rows import Row

__all__ = [
    "Snapshot",
    "Progress",
    "JOB_OUTCOMES",
    "job_outcome",
    "bar_class",
    "in_widget_kernel",
    "MIN_BAR",
]

UPDATE_EVERY = 0.2  # seconds between refreshes of the counts
MIN_BAR = 10  # characters a text bar keeps, whatever the terminal's width
SHOW_WAIT = 0.5  # a hold shorter than this (a max_rps slot) is not worth saying
_SLACK = 4  # characters kept free for the rate and times to grow between two layouts

# Short marks for the counts, by outcome; other kinds use their first letter.
_SYMBOLS = {
    "success": "✓",
    "failed": "✗",
    "pending": "…",
    "errors": "!",
    "enqueued": "✓",
    "rejected": "✗",
    "unknown": "?",
    "not_sent": "…",
    "read": "✓",
}

# Text-bar layouts, most complete first: (bar_format, counts style). None: tqdm's default.
_LAYOUTS: tuple[tuple[str | None, str], ...] = (
    (None, "full"),
    (None, "short"),
    ("{l_bar}{bar}| {n_fmt}/{total_fmt} [{remaining}, {rate_fmt}{postfix}]", "short"),
    ("{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{remaining}, {rate_fmt}{postfix}]", "short"),
    ("{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{remaining}{postfix}]", "short"),
    ("{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}", "short"),
)


@dataclass(frozen=True)
class Snapshot:
    """Where a run stands: ``done`` of ``total``, and the count of each outcome so far
    (for job statuses: success, failed, pending, errors).

    Attributes:
        rate: rows per second over this run (from its start; rows known before it, e.g. from
            a checkpoint, do not count); None until a row has arrived.
        eta: seconds left at that rate; None while the rate is unknown.
        limit: requests per window Intercom allows; None: not known (yet).
        remaining: budget left in the current window; None: not known.
        waiting: seconds the rate-limit gate is holding requests back right now; 0.0 when not.
        workspaces: (done, total) per workspace, for runs over many; empty for one.
    """

    done: int
    total: int
    counts: Mapping[str, int] = field(default_factory=dict)
    finished: bool = False
    rate: float | None = None
    eta: float | None = None
    limit: int | None = None
    remaining: int | None = None
    waiting: float = 0.0
    workspaces: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def success(self) -> int:
        return self.counts.get("success", 0)

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def pending(self) -> int:
        return self.counts.get("pending", 0)

    @property
    def errors(self) -> int:
        return self.counts.get("errors", 0)

    def describe(self) -> str:
        """One line: ``120/300 · success 100 · … · 40.0/s · ETA 5 s · waiting 6 s for the
        rate-limit window``."""
        parts = [f"{self.done}/{self.total}"]
        parts += [f"{kind} {number(n)}" for kind, n in self.counts.items()]
        if self.rate is not None and not self.finished:
            parts.append(f"{self.rate:.1f}/s")
            if self.eta is not None and self.done < self.total:
                parts.append(f"ETA {duration(self.eta)}")
        if self.waiting >= SHOW_WAIT and not self.finished:
            parts.append(f"waiting {math.ceil(self.waiting)} s for the rate-limit window")
        return " · ".join(parts)


def duration(seconds: float) -> str:
    """``5 s``, ``2 min 5 s``, ``1 h 3 min``: a time left, rounded up to the second."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


JOB_OUTCOMES = ("success", "failed", "pending", "errors")


def job_outcome(row: Row) -> str:
    """The progress bucket of a job-status row."""
    if row.status is not None:
        return row.status
    return "errors" if row.error_code is not None else "pending"  # not asked yet: to do


def in_widget_kernel() -> bool:
    """Whether this process is a Jupyter kernel whose front end can render ipywidgets.

    True in an IPython kernel (JupyterLab, Notebook, VS Code, Colab: ``get_ipython()`` has a
    ``kernel``) with ipywidgets importable; False in a terminal, plain IPython, or the Qt
    console and Spyder (which draw no widgets).
    """
    if "IPython" not in sys.modules:  # never imported: no kernel here
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:
        return False
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    if any(name == "QT_API" or name.startswith("SPYDER") for name in os.environ):
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def bar_class() -> type:
    """The tqdm class for a bar here: the widget bar in a Jupyter kernel, text elsewhere."""
    if in_widget_kernel():
        from tqdm.notebook import tqdm as widget_tqdm

        return widget_tqdm
    from tqdm.std import tqdm as text_tqdm

    return text_tqdm


class Progress:
    """Counts rows as they arrive and shows them. ``done`` advances only on `advance`.

    Args:
        setting: True for a bar, a callable for snapshots, False for nothing.
        total: rows in the run.
        desc: the bar's label.
        done: rows settled before the run started (e.g. read from a checkpoint): the bar starts
            there, and the rate does not count them.
        kinds: the outcome buckets, in display order.
        outcome: the bucket of a row.
        pace: the rate-limit gate's status (`Pacer.status`), for the rate-limit figures.
        lanes: total per workspace, for runs over many (`advance` with ``lane=``).
        lanes_done: rows settled per workspace before the run started.
        rows: rows known before the run started, counted before the bar is first drawn (its
            counts then match its position from the first frame).
        bar_options: extra tqdm arguments (e.g. ``file``, ``ncols``; tests use them).
    """

    def __init__(
        self,
        setting: bool | Callable[[Snapshot], Any],
        total: int,
        *,
        desc: str = "jobs",
        done: int = 0,
        kinds: tuple[str, ...] = JOB_OUTCOMES,
        outcome: Callable[[Any], str] = job_outcome,
        pace: Callable[[], PaceStatus] | None = None,
        lanes: Mapping[str, int] | None = None,
        lanes_done: Mapping[str, int] | None = None,
        rows: Iterable[Any] = (),
        bar_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.total = total
        self.done = done
        self.counts = dict.fromkeys(kinds, 0)
        self._outcome = outcome
        for row in rows:
            self.count(row)
        self._callback = setting if callable(setting) else None
        self._pace = pace
        self._lanes = dict(lanes or {})
        self._lanes_done = {lane: (lanes_done or {}).get(lane, 0) for lane in self._lanes}
        self._start = time.monotonic()
        self._start_done = done
        self._lock = threading.RLock()  # one redraw at a time: position and counts together
        self._bar: Any = None
        self._handle: Any = None  # the widget bar's display, updated when the run ends
        self._style = "full"
        self._counts_str = ""
        self._wait_str = ""
        self._seen = (done, dict(self.counts))  # done and counts of the last redraw
        # What the bar's layout was measured for: each count below its limit, the rate at most
        # this (None: a layout that fits whatever they are).
        self._fits: tuple[list[int], float] | None = None
        # tqdm reads TQDM_DISABLE once, at import; read it per run so `%env` works too.
        if setting is True and os.environ.get("TQDM_DISABLE", "").lower() in ("", "0", "false"):
            self._bar = self._make_bar(desc, bar_options or {})
        self._last = 0.0
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None
        if pace is not None and (self._bar is not None or self._callback is not None):
            # Nothing advances while the gate holds every request: a ticker says so meanwhile.
            self._ticker = threading.Thread(target=self._tick, name="ij-progress", daemon=True)
            self._ticker.start()

    def _make_bar(self, desc: str, options: Mapping[str, Any]) -> Any:
        kwargs: dict[str, Any] = {
            "total": self.total,
            "initial": self.done,
            "desc": desc,
            "unit": "job",
            "dynamic_ncols": True,
            # smoothing=0: the rate is this run's average, (n - initial) / elapsed, so rows
            # known before the run (initial) never count.
            "smoothing": 0,
            # First draw once the layout is known (below), so the counts show from the start.
            "delay": 1e9,
        }
        kwargs.update(options)
        cls = bar_class() if "file" not in options else _text_tqdm()
        widget = cls is not _text_tqdm()
        if widget:
            kwargs["display"] = False
        bar = cls(**kwargs)
        if widget and not bar.disable:
            from IPython.display import display

            # Our own display (tqdm's documented ``display=False`` then ``display(bar.container)``),
            # with an id: at the end it is updated, so a saved notebook shows the finished bar as
            # text too (not the 0/N of the moment it appeared).
            self._handle = display(bar.container, display_id=True)
        self._layout(bar)
        if not bar.disable:
            # Shown already, a widget waits for nothing (with a delay tqdm would show it again).
            bar.delay = 0 if widget else options.get("delay", 0)
            self._counts_str = self._counts_text()
            bar.set_postfix_str(self._counts_str)  # and the first draw
        return bar

    # -- counting ----------------------------------------------------------------------------
    def count(self, row: Any, *, replaces: Any = None) -> None:
        """Count a row's outcome (taking back the outcome of the row it replaces)."""
        if replaces is not None:
            self.counts[self._outcome(replaces)] -= 1
        self.counts[self._outcome(row)] += 1

    def advance(self, n: int = 1, lane: str | None = None) -> None:
        """``n`` more rows are settled (in workspace ``lane``, for runs over many)."""
        with self._lock:
            self.done += n
            if lane is not None and lane in self._lanes_done:
                self._lanes_done[lane] += n
            self._seen = (self.done, dict(self.counts))
            bar = self._bar
            if bar is not None:
                if self._outgrown(bar):  # faster than the layouts of `_show` (rows by the 1000)
                    self._layout(bar, waiting=bool(self._wait_str))
                # The counts are set before the bar moves, so a redraw never shows the position
                # of one moment beside the counts of another.
                self._counts_str = self._counts_text()
                bar.set_postfix_str(self._counts_str + self._wait_str, refresh=False)
                bar.update(n)
        now = time.monotonic()
        if now - self._last >= UPDATE_EVERY:
            self._last = now
            self._show()

    # -- figures ---------------------------------------------------------------------------
    def rate(self) -> float | None:
        """Rows per second settled by this run since it started; None before the first."""
        elapsed = time.monotonic() - self._start
        gained = self.done - self._start_done
        return gained / elapsed if gained > 0 and elapsed > 0 else None

    def snapshot(self, finished: bool = False) -> Snapshot:
        return self._snapshot(self.done, dict(self.counts), finished)

    def _snapshot(self, done: int, counts: dict[str, int], finished: bool) -> Snapshot:
        rate = self.rate()
        eta = max(0, self.total - done) / rate if rate else None
        if self._pace is not None:
            pace = self._pace()
            limit, remaining = pace.limit, pace.remaining
            waiting = 0.0 if finished else pace.waiting
        else:
            limit = remaining = None
            waiting = 0.0
        lanes = self._lanes_done
        workspaces = (
            {lane: (lanes[lane], total) for lane, total in self._lanes.items()}
            if len(self._lanes) > 1
            else {}
        )
        return Snapshot(
            done, self.total, counts, finished, rate, eta, limit, remaining, waiting, workspaces
        )

    # -- showing -----------------------------------------------------------------------------
    def _counts_text(
        self, counts: Mapping[str, int] | None = None, digits: list[int] | None = None
    ) -> str:
        """``counts`` (default: the live ones) in the current style; with ``digits``, each count
        that many digits wide instead (for measuring)."""
        counts = self.counts if counts is None else counts
        nums = (
            [str(n) for n in counts.values()]
            if digits is None
            else ["9" * width for width in digits]
        )
        kinds = list(counts)
        if self._style == "full":
            marks = [f"{kind}=" for kind in kinds]
        elif self._style == "letters":
            marks = [f"{kind[0]}=" for kind in kinds]
        else:
            marks = [_SYMBOLS.get(kind, kind[0]) for kind in kinds]
        return " ".join(mark + num for mark, num in zip(marks, nums, strict=True))

    def _outgrown(self, bar: Any) -> bool:
        """Whether a count or the rate has outgrown what the bar's layout was measured for."""
        if self._fits is None:
            return False
        limits, rate = self._fits
        if any(n >= limit for n, limit in zip(self.counts.values(), limits, strict=True)):
            return True
        elapsed = time.time() - getattr(bar, "start_t", time.time())  # tqdm's clock
        return elapsed > 0 and (self.done - bar.initial) / elapsed > rate

    def _layout(self, bar: Any, waiting: bool = False) -> None:
        """Pick the most complete layout whose bar keeps `MIN_BAR` characters in the terminal's
        width, measured with every count a digit wider than now and the wait, if any (so none
        is cut before the next layout)."""
        self._fits = None
        if bar is None or bar.disable or not isinstance(getattr(bar, "ncols", None), int):
            self._style = "full"  # no width to fit (a widget, a pipe): everything, in full
            return
        d = bar.format_dict  # refreshes ncols when it follows the terminal
        ncols = d["ncols"]
        if not ncols:
            self._style = "full"
            return
        short = "letters" if bar.ascii else "symbols"
        cap = len(str(self.total))
        # Each count one digit wider than now (it may grow before the next layout), the rate
        # ten times what it is (at least 99.99 job/s), and room for "wait 15s" while the gate
        # holds requests back.
        digits = [min(cap, len(str(n)) + 1) for n in self.counts.values()]
        elapsed = d["elapsed"]
        rate = (d["n"] - d["initial"]) / elapsed if elapsed else 0.0
        chosen = _LAYOUTS[-1]
        for layout in _LAYOUTS:
            fmt, style = layout
            self._style = short if style == "short" else "full"
            postfix = self._counts_text(digits=digits) + (" wait 15s" if waiting else "")
            nobar = bar.format_meter(
                **{
                    **d,
                    "n": self.total,
                    "rate": max(10 * rate, 99.99),  # room for the rate to grow tenfold
                    "postfix": postfix,
                    "ncols": None,
                    "bar_format": (fmt or "{l_bar}{bar}{r_bar}").replace("{bar}", ""),
                }
            )
            if ncols - _width(nobar) - _SLACK >= MIN_BAR:
                chosen = layout
                break
        fmt, style = chosen
        self._style = short if style == "short" else "full"
        bar.bar_format = fmt
        self._fits = ([10**width for width in digits], max(10 * rate, 99.99))

    def _wait_text(self, waiting: float) -> str:
        return f" wait {math.ceil(waiting)}s" if waiting >= SHOW_WAIT else ""

    def _show(self, finished: bool = False, tick: bool = False) -> None:
        with self._lock:
            done, counts = self._seen if tick else (self.done, dict(self.counts))
            snap = self._snapshot(done, counts, finished)
            changed = False
            bar = self._bar
            if bar is not None:
                wait = self._wait_text(snap.waiting)
                style = self._style
                self._layout(bar, waiting=bool(wait))
                if not tick or self._style != style:
                    self._counts_str = self._counts_text(counts)
                changed = wait != self._wait_str or self._style != style
                self._wait_str = wait
                bar.set_postfix_str(self._counts_str + wait, refresh=tick and changed)
        if self._callback is not None and (not tick or snap.waiting > 0 or changed):
            self._callback(snap)

    def _tick(self) -> None:
        while not self._closed.wait(UPDATE_EVERY):
            if time.monotonic() - self._last < UPDATE_EVERY:
                continue  # rows are arriving: `advance` shows them
            try:
                self._show(tick=True)
            except Exception:  # a display that went away must not end in a thread's traceback
                return

    def close(self) -> None:
        self._closed.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=2)
        self._wait_str = ""
        self._show(finished=True)
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.close()
            if self._handle is not None:
                self._handle.update(bar.container)


_ANSI = re.compile(r"\x1b\[[;\d]*[A-Za-z]")  # colour codes take no room


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal: two for a wide (East Asian) character."""
    return sum(2 if unicodedata.east_asian_width(c) in "FW" else 1 for c in _ANSI.sub("", text))


def _text_tqdm() -> type:
    from tqdm.std import tqdm as text_tqdm

    return text_tqdm
