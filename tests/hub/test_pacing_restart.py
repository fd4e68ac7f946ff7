"""The rate window across restarts, and statistics() that must not disturb it."""

from __future__ import annotations

import datetime as dt
from functools import partial
from pathlib import Path

import anyio
import pytest

from dispatch.hub import DispatchHub, SlidingWindowLimiter
from dispatch.records import Record
from dispatch.store import Store, insert_attempt, insert_record
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

from .helpers import eventually, max_in_window, records

pytestmark = pytest.mark.anyio


def test_window_queries_about_the_future_forget_nothing():
    window = SlidingWindowLimiter(1)
    window.record(0.0)
    assert window.next_allowed_at(100.0) == 100.0  # an ETA question about t=100...
    assert window.available(10.0) == 0  # ...must not free the token of the dial at 0
    assert window.count(10.0) == 1
    window.preload([5.0])
    assert window.count(10.0) == 2 and window.count(65.0) == 0
    assert window.total == 1  # preloaded starts belong to an earlier run


async def test_dials_of_the_previous_run_count_after_a_restart(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(1))
    recs = records(6)
    db = tmp_path / "hub.db"
    # no drain deadline: autojump would leap to it while a store write is in flight
    first = DispatchHub(dialer, [MemoryStrategy(recs)], db=db, clock=clock,
                        max_calls_per_minute=3, drain_timeout_s=None)
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(first.run)
        await eventually(lambda: len(dialer.dials) == 3)
        await first.stop()
    assert clock.now() - dialer.dials[0].at < 60  # the restart is inside the window
    second = DispatchHub(dialer, [MemoryStrategy(recs)], db=db, clock=clock,
                         max_calls_per_minute=3, poll_interval_s=1000)
    async with anyio.create_task_group() as tg:
        tg.start_soon(second.run)
        await eventually(lambda: second.statistics().waiting_on == "rate")
        stats = second.statistics()
        assert stats.dials_last_60s == 3
        assert stats.next_dial_eta_s == pytest.approx(dialer.dials[2].at + 60 - clock.now())
        assert len(dialer.dials) == 3
        await second.stop(drain=False)
    async with clock.autojump():
        with anyio.fail_after(30):
            await second.run(until_idle=True)
    assert len(dialer.dials) == 6
    assert max_in_window([d.at for d in dialer.dials]) <= 3


async def test_a_claim_without_dial_time_counts_at_its_claim_time(tmp_path: Path):
    """After a kill between the claim commit and the next write only claimed_at is known."""
    db = tmp_path / "hub.db"
    clock = FakeClock()
    t0 = clock.now()
    store = await Store.open(db)
    await store.write_now([
        insert_record(id="old", phone="+15550000001", strategy="memory", status="completed",
                      payload={}, now=t0 - 30),
        insert_attempt(source="memory",
                       record_id="old", attempt_no=1, run_id=None, phone="+15550000001",
                       claimed_at=t0 - 30),
    ])
    assert await store.recent_dial_starts(t0 - 60) == [t0 - 30]
    assert await store.recent_dial_starts(t0 - 20) == []
    await store.close()
    dialer = MemoryDialer(clock, default=Answer(1))
    hub = DispatchHub(dialer, [MemoryStrategy(records(1))], db=db, clock=clock,
                      max_calls_per_minute=1)
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    assert dialer.dials[0].at >= t0 - 30 + 60


async def test_statistics_about_a_later_retry_do_not_free_rate_tokens(tmp_path: Path):
    clock = FakeClock()
    t0 = clock.now()
    dialer = MemoryDialer(clock, default=Answer(1))
    later = dt.datetime.fromtimestamp(t0 + 100, tz=dt.UTC)
    strategy = MemoryStrategy([*records(1), Record(id="late", phone="+15550000099",
                                                   not_before=later)])
    hub = DispatchHub(dialer, [strategy], db=tmp_path / "hub.db", clock=clock,
                      max_calls_per_minute=1, poll_interval_s=10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: len(dialer.dials) == 1)
        await eventually(lambda: hub.statistics().waiting_on == "schedule")
        stats = hub.statistics()  # the ready queue is empty; the next due is at t0 + 100
        assert stats.next_dial_eta_s == pytest.approx(100.0)
        assert stats.dials_last_60s == 1
        strategy.add(Record(id="new", phone="+15550000042"))
        clock.advance(10)  # the next poll admits it while the first dial still counts
        await eventually(lambda: hub.statistics().waiting_on == "rate" or len(dialer.dials) > 1)
        assert len(dialer.dials) == 1
        assert hub.statistics().next_dial_eta_s == pytest.approx(50.0)
        clock.advance(50)
        await eventually(lambda: len(dialer.dials) == 2)
        assert dialer.dials[1].at == t0 + 60
        await hub.stop(drain=False)


async def test_eta_is_none_when_slots_are_full_even_for_a_due_retry(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(500))
    later = dt.datetime.fromtimestamp(clock.now() + 100, tz=dt.UTC)
    strategy = MemoryStrategy([*records(1), Record(id="late", phone="+15550000099",
                                                   not_before=later)])
    hub = DispatchHub(dialer, [strategy], db=tmp_path / "hub.db", clock=clock,
                      max_concurrent=1, poll_interval_s=1000)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: len(dialer.dials) == 1)
        await eventually(lambda: hub.statistics().waiting_on is not None)
        stats = hub.statistics()
        assert (stats.next_dial_eta_s, stats.waiting_on) == (None, "concurrency")
        await hub.stop(drain=False)
    stats = hub.statistics()
    assert (stats.next_dial_eta_s, stats.waiting_on) == (None, "stopped")


async def test_stale_deadlines_of_cancelled_sleeps_are_not_jumped_to():
    clock = FakeClock()
    with anyio.move_on_after(0.01):
        await clock.sleep(1000)
    assert clock.next_deadline() is None
    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(clock.sleep, 5))
        await eventually(lambda: clock.next_deadline() is not None)
        assert clock.jump_to_next()
    assert clock.now() == 1_700_000_005.0
