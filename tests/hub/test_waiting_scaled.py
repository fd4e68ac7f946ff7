"""A clock running at a fixed rate against real time (``ScaledClock``) is waited on with
a cancel scope, like the real clock: the deadlines hold, and no timer task is spawned."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest

from dispatch.clock import Clock, RealRateClock, ScaledClock, SystemClock
from dispatch.hub.waiting import DeadlinePassed, call_before, wait_event_until
from dispatch.testing import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # counts asyncio tasks


async def _tasks_while_waiting(clock: Clock, deadline_s: float) -> tuple[int, float]:
    """Tasks alive while ``wait_event_until`` waits, and the real seconds it took."""
    event = anyio.Event()
    seen: list[int] = []

    async def watch() -> None:
        await anyio.sleep(0.01)
        seen.append(len(asyncio.all_tasks()))
        event.set()

    began = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await wait_event_until(event, clock, clock.now() + deadline_s)
    return seen[0], time.monotonic() - began


async def test_a_scaled_clock_is_waited_on_without_a_timer_task() -> None:
    scaled = ScaledClock(100.0)
    assert isinstance(scaled, RealRateClock)
    assert not isinstance(FakeClock(), RealRateClock)
    with anyio.fail_after(10):
        base, _ = await _tasks_while_waiting(SystemClock(), 60.0)
        with_scaled, _ = await _tasks_while_waiting(scaled, 60.0)
        fake = FakeClock()
        with_fake, _ = await _tasks_while_waiting(fake, 60.0)
    # the fake clock needs a timer task; the scaled one waits like the real one
    assert with_scaled == base and with_fake == base + 1


async def test_deadlines_on_a_scaled_clock_are_kept_in_its_own_time() -> None:
    clock = ScaledClock(50.0)  # 5 clock seconds last 0.1 real seconds
    event = anyio.Event()
    with anyio.fail_after(10):
        began = time.monotonic()
        await wait_event_until(event, clock, clock.now() + 5.0)
        waited_s = time.monotonic() - began
        assert not event.is_set() and 0.09 <= waited_s < 3.0

        async def never() -> None:
            await anyio.sleep_forever()

        async def value() -> str:
            return "ok"

        began = time.monotonic()
        with pytest.raises(DeadlinePassed):
            await call_before(clock, clock.now() + 5.0, never)
        assert 0.09 <= time.monotonic() - began < 3.0
        assert await call_before(clock, clock.now() + 5.0, value) == "ok"
