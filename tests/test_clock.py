"""The clock the gate and the engine wait through: the real one, and the fake one of tests."""

from __future__ import annotations

import threading

from intercom_jobs_nb._clock import SYSTEM, FakeClock


def test_a_fake_wait_ends_at_its_deadline_without_sleeping_it():
    clock = FakeClock(start=1_000.0)
    assert clock.wait(threading.Event(), 3600.0) is False
    assert clock.time() == 1_000.0 + 3600.0
    assert clock.monotonic() == 3600.0


def test_a_fake_wait_ends_at_once_when_its_event_is_set():
    clock = FakeClock(idle=60.0)  # the time never jumps by itself here
    stop = threading.Event()
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(clock.wait(stop, 10.0)))
    waiter.start()
    stop.set()
    waiter.join(5)
    assert got == [True] and clock.monotonic() == 0.0


def test_a_fake_wait_on_a_condition_ends_when_notified():
    clock = FakeClock(idle=60.0)
    cond = threading.Condition()
    got: list = []

    def wait() -> None:
        with cond:
            got.append(clock.wait(cond, 10.0))

    waiter = threading.Thread(target=wait)
    waiter.start()
    while waiter.is_alive():  # a notify reaches the waiter once it is in its wait
        with cond:
            cond.notify_all()
        waiter.join(0.01)
    assert got == [True] and clock.monotonic() == 0.0


def test_advance_ends_the_waits_whose_deadline_it_passes():
    clock = FakeClock(idle=60.0)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(clock.wait(threading.Event(), 5.0)))
    waiter.start()
    clock.advance(4.0)
    waiter.join(0.2)
    assert waiter.is_alive()  # 4 of its 5 seconds
    clock.advance(1.0)
    waiter.join(5)
    assert got == [False]


def test_threads_waiting_on_a_fake_clock_each_wake_at_their_own_deadline():
    clock = FakeClock()
    deadlines: dict[float, float] = {}
    woke: dict[float, float] = {}

    def wait(seconds: float) -> None:
        deadlines[seconds] = clock.monotonic() + seconds
        clock.wait(threading.Event(), seconds)
        woke[seconds] = clock.monotonic()

    threads = [threading.Thread(target=wait, args=(s,)) for s in (3.0, 1.0, 2.0, 10.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(woke) == [1.0, 2.0, 3.0, 10.0]
    # The time jumped from deadline to deadline: none woke early, and it went no further.
    assert all(woke[s] >= deadlines[s] for s in woke)
    assert clock.monotonic() == max(deadlines.values())


def test_a_stop_interrupts_a_long_wait_on_the_real_clock():
    stop = threading.Event()
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(SYSTEM.wait(stop, 3600.0)))
    waiter.start()
    stop.set()
    waiter.join(5)
    assert got == [True]
