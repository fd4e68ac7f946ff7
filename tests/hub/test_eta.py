"""The campaign ETA and the next-dial time of ``statistics()`` on the hub's clock."""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path

import anyio
import pytest

from dispatch.hub import DispatchHub, HubStatistics
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

from .helpers import eventually, records

pytestmark = pytest.mark.anyio


async def stepped_run(
    tmp_path: Path, n: int, *, rate: int, concurrency: int, call_s: float,
    starts: list[float], step_s: float,
) -> list[tuple[float, HubStatistics]]:
    """Drive the clock by hand, ``step_s`` at a time: at each step wait until the hub
    has made the dials and ended the calls the ideal schedule ``starts`` (offsets of
    the dial starts) says, then sample ``statistics()``. Times are exact."""
    clock = FakeClock()
    t0 = clock.now()
    dialer = MemoryDialer(clock, default=Answer(call_s))
    hub = DispatchHub(dialer, [MemoryStrategy(records(n))], db=tmp_path / "hub.db", clock=clock,
                      max_calls_per_minute=rate, max_concurrent=concurrency,
                      poll_interval_s=10_000)
    samples: list[tuple[float, HubStatistics]] = []

    def settled(offset: float) -> bool:
        stats = hub.statistics()
        dialled = sum(1 for s in starts if s <= offset)
        ended = sum(1 for s in starts if s + call_s <= offset)
        # ... and every live call is waiting for its end (before time moves on)
        live_waiting = clock.sleepers_due_by(t0 + offset + call_s) >= dialled - ended
        return (stats.dials_total, stats.completed) == (dialled, ended) and live_waiting

    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(hub.run, until_idle=True))
        offset = 0.0
        while offset < max(starts) + call_s:
            await eventually(partial(settled, offset))
            samples.append((offset, hub.statistics()))
            clock.advance(step_s)
            offset = clock.now() - t0
        await eventually(lambda: not hub.running)
    return samples


async def test_the_eta_counts_down_and_is_right_for_a_rate_bound_campaign(tmp_path: Path):
    # 30 records at 6 a minute, 5 s calls: 6 dials at 0, 60, 120, 180 and 240 s
    starts = [60.0 * (i // 6) for i in range(30)]
    samples = await stepped_run(tmp_path, 30, rate=6, concurrency=10, call_s=5,
                                starts=starts, step_s=5)
    finished = max(starts) + 5
    # from the first call's end the call time is known (before it, a lower bound)
    known = [(t, s.campaign_eta_s) for t, s in samples if t >= 5]
    etas = [eta for _, eta in known]
    assert len(etas) == 48 and all(eta is not None for eta in etas)
    assert all(b < a for a, b in itertools.pairwise(etas))  # it never climbs
    for t, eta in known:
        assert eta == pytest.approx(finished - t, rel=0.03), t
    at_start = samples[0][1].campaign_eta_s
    assert at_start is not None and at_start >= 240  # before any call ended: a lower bound


async def test_the_next_dial_is_reported_while_waiting_on_the_rate_with_slots_full(
    tmp_path: Path,
):
    # 4 dials a minute, 2 slots, 20 s calls: dials at 0, 0, 20, 20, 60, 60, 80, 80. From
    # 20 s to 40 s both slots are taken and the window is used up until 60 s
    starts = [0.0, 0.0, 20.0, 20.0, 60.0, 60.0, 80.0, 80.0]
    samples = await stepped_run(tmp_path, 8, rate=4, concurrency=2, call_s=20,
                                starts=starts, step_s=5)
    by_t = dict(samples)
    assert (by_t[30].live_calls, by_t[30].dials_last_60s) == (2, 4)
    assert (by_t[30].next_dial_eta_s, by_t[30].waiting_on) == (30.0, "rate")
    assert (by_t[45].next_dial_eta_s, by_t[45].waiting_on) == (15.0, "rate")
    # slots full and the window open before the calls end: the estimated slot time
    assert (by_t[90].next_dial_eta_s, by_t[90].waiting_on) == (None, None)
    assert [by_t[t].campaign_eta_s for t in (20, 30, 45, 90)] == [80.0, 70.0, 55.0, 10.0]


def test_the_eta_counts_the_per_second_cap() -> None:
    from dispatch.hub.eta import campaign_eta_s
    from dispatch.hub.limiter import ConcurrencyGate, SlidingWindowLimiter
    from dispatch.hub.scheduling import DialQueue

    queue = DialQueue()
    for i in range(10):
        queue.add_ready(f"r{i}")
    per_minute, gate = SlidingWindowLimiter(None), ConcurrencyGate(None)
    # 10 dials at 2 per second leave at 0, 0, 1, 1, ... 4 s; then one 1 s call
    per_second = SlidingWindowLimiter(2, 1.0)
    assert campaign_eta_s(queue, per_minute, gate, [], 1.0, 100.0, per_second) == 5.0
    # positive control: without the per-second window the same work looks instant
    assert campaign_eta_s(queue, per_minute, gate, [], 1.0, 100.0) == 1.0
