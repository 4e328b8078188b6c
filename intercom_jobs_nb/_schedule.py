"""Waiting: which jobs each round of a wait asks, learned from what the rounds before saw.

A wait (`wait_for_jobs`, with ``tickets=True`` too, the CLI's ``--wait``, the dask module's
`wait_for_jobs`: each is a run of the engine ``until_final``; and the panel's auto-refresh, a
run per round over one schedule) goes in *rounds*, each starting
``poll_interval`` seconds after the one before began (``poll_interval`` after it ended, if it
took longer: never back to back). A job that became final is noticed by the first round that
asks it after, so ``poll_interval`` is the longest a finished job goes unnoticed, give or take
the rate limit (a round that takes longer than ``poll_interval``). What a round asks is the
schedule's:

``"fixed"`` (the schedule of old, kept for comparison)
    Every round asks every job not final. A job that finishes after ``t`` seconds costs about
    ``t / poll_interval + 1`` requests: 3,000 jobs that a queue finishes within a minute cost
    about six each at 5 s, and 100,000 pending jobs spend whole windows of the workspace's rate
    limit, shared with every other integration it runs.

``"adaptive"`` (the default)
    Jobs enqueued together finish roughly in the order they were enqueued (a worker pool
    draining a queue). A round takes the jobs not final in that order (``enqueued_at``, when
    the frame has it, else the order of the ids given) and asks them one after another, a few
    at a time, until ``k`` answers in a row say pending: that is where the queue has got to, and
    the jobs behind it are taken as pending too, unasked. So a job is asked about once, just
    after it is done, plus the ``k`` or so answers per round that find the queue's front.

    The order is only mostly true (a queue's workers finish neighbours out of order), and not
    at all for jobs that finish independently. Each round measures it, two ways. Locally: a
    final answer after pending ones is an inversion, and the longest run of pending answers an
    inversion ends is the disorder; the next rounds' ``k`` is `RUN` plus the widest disorder
    seen, so the jobs that may be final just behind a pending one are asked. Far behind: once
    the scan stops, the round asks `SAMPLE` jobs (`WIDE_SAMPLE` until a round has shown a
    queue: many final answers in a row, then pending ones) chosen at random among those at
    least twice ``k`` behind where it stopped, which a queue has not reached. If one of them is
    final, the order is not there: the round goes on to ask every job not final, and so does
    every later round of the lane, as ``"fixed"`` does (the fallback, never worse than it).

    Assumptions, and what they cost when wrong: (1) a job pending at some moment was pending at
    every moment before, and one final stays final (Intercom's jobs); (2) jobs in order finish
    in order within the disorder measured so far: a job that finishes well ahead of the ones
    before it (beyond ``k``) goes unnoticed until the queue's front reaches it, or until the
    sample finds one like it (jobs that finish independently: until the wide sample hits a
    final one, about one round once a few percent are final, so such jobs may go unnoticed up
    to about two ``poll_interval``). A run's first round asks about ``RUN + WIDE_SAMPLE`` jobs of
    a queue rather than all of them, which also saves most of the ``"fixed"`` first round when
    the order is not there. Requests: never more than one per job not final per round, and
    rounds at the ``"fixed"`` cadence, so never more than ``"fixed"``, up to the rounds'
    lengths (a shorter round starts the next sooner). Cost on a queue: one request per job,
    plus about ``k + SAMPLE`` per round (``bench_wait.py``: 1.1 per job for 3,000 jobs at
    60 a second, polled every 5 s).

Each workspace of a run of many (a lane) has its own order and its own measure of it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "SCHEDULES",
    "ScheduleName",
    "Schedule",
    "FixedSchedule",
    "AdaptiveSchedule",
    "make_schedule",
    "check_schedule",
    "RUN",
]

ScheduleName = Literal["adaptive", "fixed"]
SCHEDULES: tuple[str, ...] = ("adaptive", "fixed")
RUN = 6  # pending answers in a row that end a round's scan, before any disorder is seen
SAMPLE = 8  # items asked each round well behind the queue's front, to check the order holds
WIDE_SAMPLE = 64  # the same, until a round has shown a queue (jobs that finish independently
# are found out within a round once a few percent of them are final)
WAIT_ANSWER = 0.1  # real seconds between two looks at the stop event while answers are awaited

_UNKNOWN, _PENDING, _FINAL, _NEITHER = 0, 1, 2, 3  # an answer, as a scan reads it
_SCAN, _SAMPLE, _REST = 0, 1, 2  # a scan's phases


def check_schedule(schedule: object) -> ScheduleName:
    """``schedule`` if it names one of `SCHEDULES`.

    Raises:
        ValueError: anything else (the caller words it as its own error).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    return schedule  # type: ignore[return-value]


class Schedule:
    """What the engine asks of a schedule: each round's asks per lane, and every answer."""

    def round(self, lane: str | None, todo: np.ndarray, stop: threading.Event) -> Iterator[int]:
        """The items of ``lane`` to ask this round, as an iterator the lane's workers share
        (under their lock); ``todo`` are its items not final."""
        return map(int, todo)

    def heard(self, index: int, row: Any) -> None:
        """The answer for ``index`` (the run's thread)."""

    def ended(self) -> None:
        """The round is over (the run's thread)."""


class FixedSchedule(Schedule):
    """Every round asks every item not final."""


def order_of(extra: pd.DataFrame | None, size: int) -> np.ndarray:
    """Each item's rank in the queue: by ``enqueued_at`` when the user's columns have it (the
    frame of `enqueue_tickets`; items without one last), else the order given."""
    if extra is not None and "enqueued_at" in extra.columns and len(extra) == size:
        stamps = pd.to_datetime(extra["enqueued_at"], errors="coerce", utc=True)
        values = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        values = np.where(stamps.isna().to_numpy(), np.iinfo(np.int64).max, values)
        ranks = np.empty(size, dtype=np.int64)
        ranks[np.argsort(values, kind="stable")] = np.arange(size)
        return ranks
    return np.arange(size, dtype=np.int64)


class _Scan:
    """One lane's round: its items in queue order, handed out while the answers so far do not
    show ``k`` pending in a row (the answers are read in order as they arrive); then a sample
    of the items well behind that point, and, if one of those is final, all the others."""

    def __init__(
        self,
        order: np.ndarray,
        size: int,
        k: int,
        most: int,
        stop: threading.Event,
        expect: int = 0,
        sample: int = SAMPLE,
    ) -> None:
        self.order = order
        self.sample_size = sample
        self.expect = expect  # final answers the round before had: about as many this one
        self.phase = _SCAN
        self.sample: list[int] = []  # positions
        self.sampled = np.zeros(len(order), dtype=bool)
        self.sample_next = self.sample_heard = self.sample_final = 0
        self.position = np.full(size, -1, dtype=np.int64)
        self.position[order] = np.arange(len(order))
        self.answers = np.zeros(len(order), dtype=np.int8)
        self.k, self.most, self.stop = k, most, stop
        self.cond = threading.Condition(threading.Lock())
        self.next = 0  # the next position to hand out
        self.front = 0  # positions before this are answered
        self.run = 0  # pending answers in a row at the front
        self.streak = 0  # final answers since the last pending one, at the front
        self.finals = 0
        self.inversions = 0
        self.width = 0  # the widest inversion, in positions
        self.done = False

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        with self.cond:
            while True:
                if self.stop.is_set():
                    raise StopIteration
                if self.phase == _SCAN:
                    if self.done or self.next >= len(self.order):
                        self._choose_sample()
                        continue
                    # Ahead of the answers by a few (``k``), more while they say final and
                    # the round before says more are to come: near the queue's front, every
                    # request handed out beyond it is spent for nothing.
                    ahead = min(self.streak, max(0, self.expect - self.finals))
                    if self.next - self.front < min(self.most, self.k + ahead):
                        return self._hand_out()
                elif self.phase == _SAMPLE:
                    if self.sample_next < len(self.sample):
                        self.sample_next += 1
                        return int(self.order[self.sample[self.sample_next - 1]])
                    if self.sample_heard >= len(self.sample):
                        if not self.sample_final:
                            raise StopIteration
                        self.phase = _REST  # a job far behind the front was final: ask all
                        continue
                else:
                    while self.next < len(self.order) and self.sampled[self.next]:
                        self.next += 1
                    if self.next >= len(self.order):
                        raise StopIteration
                    return self._hand_out()
                self.cond.wait(WAIT_ANSWER)

    def _hand_out(self) -> int:
        item = int(self.order[self.next])
        self.next += 1
        return item

    def _choose_sample(self) -> None:
        """A sample (`SAMPLE` or `WIDE_SAMPLE` items) among those at least twice the disorder
        behind where the scan stopped: in a queue they are pending; one final says the order is
        not there."""
        start = self.next + 2 * max(self.k, RUN + self.width)
        behind = len(self.order) - start
        if behind > 0:
            rng = np.random.default_rng(len(self.order))
            size = min(self.sample_size, max(1, behind // 4))  # a small part of them
            picked = rng.choice(behind, size=size, replace=False) + start
            self.sample = sorted(int(p) for p in picked)
            self.sampled[self.sample] = True
        self.phase = _SAMPLE

    def heard(self, index: int, row: Any) -> None:
        with self.cond:
            p = int(self.position[index]) if 0 <= index < len(self.position) else -1
            if p < 0:
                return
            status = getattr(row, "status", None)
            self.answers[p] = (
                _FINAL if row.final else (_PENDING if status is not None else _NEITHER)
            )
            if self.sampled[p] and self.phase != _REST:
                self.sample_heard += 1
                self.sample_final += bool(row.final)
            answers = self.answers
            while self.front < len(answers) and answers[self.front] != _UNKNOWN:
                seen = answers[self.front]
                if seen == _PENDING:
                    self.run += 1
                    self.streak = 0
                elif seen == _FINAL:
                    if self.run:  # pending answers in a row, and then a final one
                        self.inversions += 1
                        self.width = max(self.width, self.run)
                    self.run = 0
                    self.streak += 1
                    self.finals += 1
                self.front += 1
            if self.run >= self.k:
                self.done = True
            self.cond.notify_all()


class AdaptiveSchedule(Schedule):
    """Rounds that scan each lane's queue up to its front (see the module's docstring).

    Args:
        ranks: each item's rank in the queue (`order_of`).
        lanes: each item's lane (None: one lane).
        most: requests handed out ahead of the answers at most (the run's ``max_workers``).
    """

    def __init__(self, ranks: np.ndarray, lanes: Any = None, most: int = 32) -> None:
        self.ranks = ranks
        self.lanes = lanes
        self.most = max(1, most)
        self.k: dict[str | None, int] = {}
        self.expect: dict[str | None, int] = {}
        self.shown: set[str | None] = set()  # lanes a round has shown to be a queue
        self.fixed: set[str | None] = set()  # lanes whose order was not there
        self.scans: dict[str | None, _Scan] = {}

    def round(self, lane: str | None, todo: np.ndarray, stop: threading.Event) -> Iterator[int]:
        order = todo[np.argsort(self.ranks[todo], kind="stable")]
        if lane in self.fixed:
            return map(int, order)
        sample = SAMPLE if lane in self.shown else WIDE_SAMPLE
        k = self.k.get(lane, RUN)
        scan = _Scan(order, len(self.ranks), k, self.most, stop, self.expect.get(lane, 0), sample)
        self.scans[lane] = scan
        return scan

    def heard(self, index: int, row: Any) -> None:
        scans = self.scans
        if not scans:
            return
        lane = None if self.lanes is None else self.lanes[index]
        scan = scans.get(lane)
        if scan is not None:
            scan.heard(index, row)

    def ended(self) -> None:
        for lane, scan in self.scans.items():
            if scan.sample_final:
                self.fixed.add(lane)
            else:
                self.k[lane] = max(self.k.get(lane, RUN), RUN + scan.width)
                self.expect[lane] = scan.finals
                if scan.finals >= 2 * scan.k and 4 * scan.inversions <= scan.finals:
                    self.shown.add(lane)  # a run of final answers, then pending: a queue
        self.scans = {}


def make_schedule(
    name: ScheduleName, extra: pd.DataFrame | None, size: int, lanes: Any, most: int
) -> Schedule:
    """The schedule ``name`` for a run of ``size`` items (``extra``: the user's columns)."""
    if name == "fixed":
        return FixedSchedule()
    return AdaptiveSchedule(order_of(extra, size), lanes, most)
