"""Rate limits: one gate paces every worker from Intercom's headers, with a skewed clock too.

The windows pass on a `FakeClock` that the sandbox and the run share (over real loopback
sockets): a test of three windows takes milliseconds. One test waits windows out on the real
clock, the one users run on.
"""

from __future__ import annotations

import email.utils
import threading

import pytest
from clocked import fetch_jobs_on

import intercom_jobs_nb as ij
from intercom_jobs_nb._clock import SYSTEM, FakeClock
from intercom_jobs_nb._pacing import (
    BLOCKED,
    GO,
    STOPPED,
    RateGate,
    parse_http_date,
    parse_reset,
    parse_uint,
    shared_gate,
)
from intercom_jobs_nb.sandbox import Sandbox


def served_429(sb) -> int:
    return sb.stats["by_status"].get(429, 0)


@pytest.fixture
def clock():
    """The fake time of the test's sandbox and run."""
    return FakeClock()


def test_paced_run_stays_inside_a_small_budget_without_429(opts, clock):
    with Sandbox(jobs=90, pending_share=0.0, rate_limit=30, window=1, clock=clock) as sb:
        df = fetch_jobs_on(clock, sb.job_ids, **opts(sb, max_workers=16))
        stats = sb.stats
    assert df["error_code"].isna().all()
    assert served_429(sb) == 0
    assert all(w["served"] <= 30 for w in stats["windows"])


def test_a_spent_window_is_waited_out_not_hammered(opts):
    # On the real clock: the gate's waits as users meet them.
    with Sandbox(jobs=50, pending_share=0.0, rate_limit=20, window=1) as sb:
        ij.fetch_jobs(sb.job_ids, **opts(sb))
        windows = sb.stats["windows"]
    # 50 requests at 20 a window need at least three windows, and no window was overrun.
    assert len([w for w in windows if w["served"]]) >= 3
    assert sum(w["rejected"] for w in windows) == 0


def test_a_429_waits_for_the_reset_before_the_retry(opts, clock):
    with Sandbox(jobs=3, pending_share=0.0, rate_limit=1000, window=1, clock=clock) as sb:
        job_id = sb.job_ids[0]
        sb.inject(job_id, "rate_limit")
        row = fetch_jobs_on(clock, [job_id], **opts(sb)).iloc[0]
        windows = sb.stats["windows"]
    assert row["status"] in ("success", "failed") and row["attempts"] == 2
    rejected_at = [w["start"] for w in windows if w["rejected"]]
    served_at = [w["start"] for w in windows if w["served"]]
    assert len(rejected_at) == 1 and served_at and min(served_at) > rejected_at[0]


def test_429_after_retries_is_a_rate_limit_exceeded_row(opts, clock):
    with Sandbox(jobs=3, pending_share=0.0, rate_limit=1000, window=1, clock=clock) as sb:
        job_id = sb.job_ids[0]
        sb.inject(job_id, "rate_limit", "rate_limit")
        row = fetch_jobs_on(clock, [job_id], **opts(sb, retries=1)).iloc[0]
    assert row["error_code"] == "rate_limit_exceeded" and row["http_status"] == 429
    assert row["attempts"] == 2


@pytest.mark.parametrize("skew", [-30.0, 30.0])
def test_a_skewed_server_clock_is_corrected_with_the_date_header(opts, clock, skew):
    # Server 30 s behind: its Reset looks past, a naive client bursts into 429s.
    # Server 30 s ahead: its Reset looks 30 s away, a naive client idles (up to MAX_WAIT, 15 s)
    # per window.
    with Sandbox(
        jobs=60, pending_share=0.0, rate_limit=20, window=1, clock_skew=skew, clock=clock
    ) as sb:
        started = clock.monotonic()
        df = fetch_jobs_on(clock, sb.job_ids, **opts(sb))
        took = clock.monotonic() - started
    assert df["error_code"].isna().all() and served_429(sb) == 0
    # Three windows of 1 s (and a little), not two waits of 15 s or more.
    assert took < 20, f"{took:.1f} s"


def test_max_rps_caps_the_request_rate(opts, clock):
    with Sandbox(jobs=21, pending_share=0.0, clock=clock) as sb:
        started = clock.monotonic()
        fetch_jobs_on(clock, sb.job_ids, **opts(sb, max_rps=20))
        elapsed = clock.monotonic() - started
    assert elapsed >= 0.95  # 21 requests at 20 per second: the last one leaves after 1 s


def test_a_bad_token_is_found_with_one_request_not_one_per_worker(final_sandbox, opts):
    with pytest.raises(ij.AuthenticationError) as caught:
        ij.fetch_jobs(final_sandbox.job_ids, **opts(final_sandbox, token="nope", max_workers=32))
    assert final_sandbox.stats["requests"] == 1
    assert "INTERCOM_TOKEN" in str(caught.value)
    assert caught.value.df is not None and len(caught.value.df) == 0


def _headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


def test_the_gate_holds_requests_beyond_what_the_window_has_left(clock):
    gate = RateGate(clock=clock)
    assert gate.acquire() == GO
    gate.release(_headers(3, 2, int(clock.time()) + 3))
    assert gate.acquire() == GO and gate.acquire() == GO
    assert gate.budget == 0
    gate.stop.set()  # a third would wait for the reset; stopping releases it
    assert gate.acquire() == STOPPED


def test_requests_in_flight_count_against_the_budget_until_answered(clock):
    gate = RateGate(clock=clock)
    reset = int(clock.time()) + 5
    assert gate.acquire() == GO
    gate.release(_headers(100, 50, reset))
    for _ in range(10):
        assert gate.acquire() == GO
    assert gate.budget == 40
    # An answer saying 45 left: the other nine in flight may not be counted yet.
    gate.release(_headers(100, 45, reset))
    assert gate.budget == 45 - 9
    # An older answer saying more is left changes nothing: the lowest count stands.
    gate.release(_headers(100, 48, reset))
    assert gate.budget == 45 - 8


def test_the_gate_opens_again_after_the_reset(clock):
    gate = RateGate(clock=clock)
    assert gate.acquire() == GO
    reset = int(clock.time()) + 2
    gate.release(_headers(2, 0, reset))
    assert gate.acquire() == GO  # waits for the reset, then assumes the full limit again
    assert clock.time() >= reset
    assert gate.budget == 1


def test_date_header_parsing_matches_the_stdlib():
    from email.utils import parsedate_to_datetime

    value = "Sun, 29 Nov 2026 16:45:07 GMT"
    assert parse_http_date(value) == parsedate_to_datetime(value).timestamp()
    assert parse_http_date("not a date") is None
    assert parse_http_date("Sun, 29 Nov 99999 16:45:07 GMT") is None


@pytest.mark.parametrize(
    "value", ["inf", "1e400", "-1", "\u0663", "12\u0663", "0x10", "", " ", "1" * 40, "NaN"]
)
def test_rate_limit_numbers_are_ascii_digits_or_no_information(value):
    assert parse_uint(value) is None
    assert parse_reset(value) is None


def test_rate_limit_numbers_parse_plain_digits():
    assert parse_uint(" 42 ") == 42
    assert parse_reset("1700000000") == 1700000000
    assert parse_reset("1700000000.75") == 1700000000


def test_a_window_that_allows_nothing_blocks_the_gate_instead_of_waiting_for_ever(clock):
    gate = RateGate(clock=clock)
    assert gate.acquire() == GO
    gate.release(_headers(0, 0, int(clock.time()) + 1), status=200)
    assert gate.acquire() == BLOCKED  # after the reset the window still allows nothing


def test_windows_of_nothing_but_429s_block_the_gate(clock):
    gate = RateGate(clock=clock)
    for _ in range(4):
        if gate.acquire() != GO:
            break
        gate.release({"Retry-After": "0"}, status=429)
    assert gate.acquire() == BLOCKED


def test_an_answer_other_than_429_keeps_the_gate_open(clock):
    gate = RateGate(clock=clock)
    for k in range(6):
        assert gate.acquire() == GO
        gate.release({"Retry-After": "0"}, status=429 if k % 2 == 0 else 200)
    assert not gate.blocked


def test_one_absurd_date_does_not_move_the_clock_offset(clock):
    gate = RateGate(clock=clock)
    now = clock.time()
    dates = [now - 3, now - 2, 4070908800.0, now - 1, now]  # 4070908800: 2099
    for stamp in dates:
        assert gate.acquire() == GO
        gate.release({"Date": email.utils.formatdate(stamp, usegmt=True)}, received_at=stamp)
    assert abs(gate.skew) < 2


def test_an_absurd_first_date_does_not_move_the_clock_offset_but_two_that_agree_do(clock):
    gate = RateGate(clock=clock)
    now = clock.time()
    for stamp, received in [(4070908800.0, now), (now + 1, now + 1), (now + 2, now + 2)]:
        assert gate.acquire() == GO
        gate.release({"Date": email.utils.formatdate(stamp, usegmt=True)}, received_at=received)
        assert abs(gate.skew) < 2
    late = RateGate(clock=clock)  # a server clock an hour ahead, said twice: believed
    for k in range(2):
        assert late.acquire() == GO
        late.release(
            {"Date": email.utils.formatdate(now + 3600 + k, usegmt=True)}, received_at=now + k
        )
    assert abs(late.skew - 3600) < 2


def test_two_runs_at_once_with_one_token_share_the_window(clock):
    # The panel refreshing while a cell runs: each alone would spend the whole window.
    with Sandbox(jobs=120, rate_limit=20, window=1, pending_share=0.0, clock=clock) as sb:
        halves = [sb.job_ids[:60], sb.job_ids[60:]]
        frames: list = [None, None]

        def fetch(k: int) -> None:
            frames[k] = fetch_jobs_on(
                clock, halves[k], token=sb.token, base_url=sb.base_url, retries=0
            )

        threads = [threading.Thread(target=fetch, args=(k,)) for k in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        rejected = sum(window["rejected"] for window in sb.stats["windows"])
    assert rejected == 0
    assert all(frame["status"].notna().all() for frame in frames)


def test_runs_with_the_same_token_and_host_share_one_gate_and_others_do_not(clock):
    assert shared_gate("tok", "http://127.0.0.1:1") is shared_gate("tok", "http://127.0.0.1:1")
    assert shared_gate("tok", "http://127.0.0.1:1") is not shared_gate("tok", "http://127.0.0.1:2")
    assert shared_gate("tok", "http://127.0.0.1:1") is not shared_gate(
        "other", "http://127.0.0.1:1"
    )
    # A test's fake time is its own: a gate on it is not the process's.
    assert shared_gate("tok", "http://127.0.0.1:1", clock=clock) is not shared_gate(
        "tok", "http://127.0.0.1:1", clock=SYSTEM
    )
    assert shared_gate("tok", "http://127.0.0.1:1", clock=SYSTEM) is shared_gate(
        "tok", "http://127.0.0.1:1"
    )


def full_windows(sb) -> list[int]:
    """Requests served in each window but the first and the last (partial ones)."""
    return [w["served"] for w in sb.stats["windows"]][1:-1]


def test_a_budget_share_caps_each_window_at_its_share_of_the_limit(opts, clock):
    with Sandbox(jobs=300, pending_share=0.0, rate_limit=20, window=1, clock=clock) as sb:
        df = fetch_jobs_on(clock, sb.job_ids, **opts(sb, budget_share=0.5))
        served = full_windows(sb)
    assert df["error_code"].isna().all() and served_429(sb) == 0
    assert served and max(served) <= 10  # half of 20, whatever Remaining said
    assert max(served) == 10  # and the half is used


def test_a_budget_share_holds_for_runs_at_once_with_one_token(clock):
    with Sandbox(jobs=240, rate_limit=20, window=1, pending_share=0.0, clock=clock) as sb:
        halves = [sb.job_ids[:120], sb.job_ids[120:]]
        frames: list = [None, None]

        def fetch(k: int) -> None:
            frames[k] = fetch_jobs_on(
                clock, halves[k], token=sb.token, base_url=sb.base_url, budget_share=0.25
            )

        threads = [threading.Thread(target=fetch, args=(k,)) for k in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        served = full_windows(sb)
    assert all(frame["status"].notna().all() for frame in frames)
    assert served and max(served) <= 5  # a quarter of 20 for both runs together


def test_the_budget_share_counts_the_requests_in_flight(clock):
    gate = RateGate(budget_share=0.5, clock=clock)
    now = clock.time()
    headers = {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9",
               "X-RateLimit-Reset": str(int(now) + 5)}  # fmt: skip
    assert gate.acquire() == GO
    gate.release(headers, received_at=now)
    for _ in range(4):  # in flight, unanswered: they count as sent
        assert gate.acquire() == GO
    assert gate.status().remaining == 0 and gate.status().waiting > 0
    assert gate.budget == 0


def test_a_budget_share_must_be_a_share():
    for share in (0, -0.5, 1.01, True, "half"):
        with pytest.raises(ValueError, match="budget_share"):
            RateGate(budget_share=share)  # type: ignore[arg-type]
