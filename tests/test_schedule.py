"""The wait's schedule (``_schedule.py``): its promises, on sandboxes whose jobs finish as a
queue or independently, against the fixed schedule of old.

Every run here is on a `FakeClock` shared with the sandbox (jobs finish, and rounds pass, in
fake seconds over real loopback sockets): a minute of waiting takes a second or two.
"""

from __future__ import annotations

import statistics

import pandas as pd
import pytest
from clocked import fetch_jobs_on, wait_for_jobs_on

import intercom_jobs_nb as ij
from intercom_jobs_nb._clock import FakeClock
from intercom_jobs_nb.sandbox import Independent, Queue, Sandbox

POLL = 5.0  # fake seconds between two rounds: the bound on a finished job's unnoticed time
QUEUE = Queue(rate=60, jitter=0.25)  # 1,200 jobs: 20 s, 300 a round (bench_wait.py's pace)
INDEPENDENT = Independent(median=20.0, sigma=0.5)


def waited(completion, schedule: str, jobs: int, **extra):
    """Wait for ``jobs`` jobs of a fresh sandbox: (frame, requests per job, unnoticed times)."""
    clock = FakeClock()
    with Sandbox(jobs=jobs, seed=4, completion=completion, clock=clock) as sb:
        df = wait_for_jobs_on(
            clock,
            sb.job_ids,
            poll_interval=POLL,
            schedule=schedule,
            token=sb.token,
            base_url=sb.base_url,
            **extra,
        )
        return df, sb.stats["requests"] / jobs, sorted(sb.unnoticed().values())


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


@pytest.fixture(scope="module")
def queue_runs():
    return {schedule: waited(QUEUE, schedule, 1200) for schedule in ("fixed", "adaptive")}


@pytest.fixture(scope="module")
def independent_runs():
    return {schedule: waited(INDEPENDENT, schedule, 300) for schedule in ("fixed", "adaptive")}


def test_a_queue_costs_about_one_request_per_job(queue_runs):
    df, per_job, _ = queue_runs["adaptive"]
    assert df["final"].all() and len(df) == 1200
    assert per_job <= 1.3
    assert queue_runs["fixed"][1] >= 3  # what the fixed schedule spends on the same queue


def test_no_finished_job_of_a_queue_goes_unnoticed_longer_than_the_poll_interval(queue_runs):
    _, _, unnoticed = queue_runs["adaptive"]
    assert len(unnoticed) == 1200
    assert max(unnoticed) <= POLL + 0.5  # give or take a round's length


def test_independent_jobs_fall_back_to_no_more_requests_than_fixed(independent_runs):
    df, per_job, _ = independent_runs["adaptive"]
    assert df["final"].all()
    assert per_job <= independent_runs["fixed"][1]


def test_independent_jobs_are_noticed_within_the_poll_interval(independent_runs):
    _, _, unnoticed = independent_runs["adaptive"]
    assert len(unnoticed) == 300
    assert p95(unnoticed) <= POLL
    assert max(unnoticed) <= 2 * POLL  # those done before the order was found missing


def test_the_fixed_schedule_asks_every_pending_job_each_round(queue_runs, independent_runs):
    for runs in (queue_runs, independent_runs):
        _, per_job, unnoticed = runs["fixed"]
        assert max(unnoticed) <= POLL + 0.5
        assert per_job >= runs["adaptive"][1]


def test_the_order_comes_from_enqueued_at_when_the_frame_has_it():
    # The ids given last-first: their enqueued_at still says which the queue takes first.
    clock = FakeClock()
    with Sandbox(jobs=300, seed=4, completion=QUEUE, clock=clock) as sb:
        stamps = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(range(300), unit="ms")
        frame = pd.DataFrame({"job_id": sb.job_ids, "enqueued_at": stamps}).iloc[::-1]
        df = wait_for_jobs_on(
            clock, frame, poll_interval=POLL, token=sb.token, base_url=sb.base_url
        )
        asked = sb.stats["requests"]
    assert df["final"].all() and df["job_id"].tolist() == frame["job_id"].tolist()
    assert asked <= 1.3 * 300


def test_jobs_not_asked_when_the_wait_times_out_have_a_row_each():
    clock = FakeClock()
    with Sandbox(jobs=200, seed=4, completion=Queue(rate=10, jitter=0.0), clock=clock) as sb:
        df = wait_for_jobs_on(
            clock, sb.job_ids, poll_interval=POLL, timeout=3.0, token=sb.token,
            base_url=sb.base_url,
        )  # fmt: skip
        asked = set(sb.stats["per_job"])
    assert df.attrs["timed_out"] is True and len(df) == 200
    unasked = df[~df["job_id"].isin(asked)]
    assert len(unasked) > 100  # the queue had not got there: they were not asked
    assert unasked["status"].isna().all() and (unasked["attempts"] == 0).all()
    assert not unasked["final"].any()


def test_a_wait_given_rows_fetched_a_moment_ago_asks_them_a_poll_interval_later(opts):
    # The CLI's --wait after its first pass: no round before the poll interval is over.
    with Sandbox(jobs=20, seed=4, pending_share=1.0, pending_seconds=(1e9, 1e9)) as sb:
        first = ij.fetch_jobs(sb.job_ids, **opts(sb))
        sb.reset_stats()
        df = ij.wait_for_jobs(first, poll_interval=30, timeout=0.5, **opts(sb))
        assert sb.stats["requests"] == 0
    assert df.attrs["timed_out"] is True and (df["status"] == "pending").all()


def test_an_unknown_schedule_is_refused_before_anything_is_sent(final_sandbox, opts):
    with pytest.raises(ij.ConfigurationError, match="adaptive, fixed"):
        ij.wait_for_jobs(final_sandbox.job_ids, schedule="smart", **opts(final_sandbox))
    assert final_sandbox.stats["requests"] == 0


def test_a_fetch_is_one_pass_whatever_the_schedule():
    clock = FakeClock()
    with Sandbox(jobs=100, seed=4, completion=QUEUE, clock=clock) as sb:
        fetch_jobs_on(clock, sb.job_ids, token=sb.token, base_url=sb.base_url)
        assert sb.stats["requests"] == 100
