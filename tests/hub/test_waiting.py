"""Deadlines on the hub's clock: the real clock (cancel scope) and a fake one (timer task)."""

from __future__ import annotations

import anyio
import pytest

from dispatch.clock import Clock, SystemClock
from dispatch.hub.waiting import DeadlinePassed, call_before, wait_event_until
from dispatch.testing import FakeClock

pytestmark = pytest.mark.anyio


async def _value() -> str:
    return "ok"


async def _boom() -> None:
    raise KeyError("boom")


@pytest.mark.parametrize("clock_kind", ["real", "fake"])
async def test_call_before_returns_raises_or_times_out(clock_kind: str) -> None:
    clock: Clock = SystemClock() if clock_kind == "real" else FakeClock()
    assert await call_before(clock, clock.now() + 5, _value) == "ok"
    with pytest.raises(KeyError):
        await call_before(clock, clock.now() + 5, _boom)

    async def never() -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(10):
        if isinstance(clock, FakeClock):
            async with clock.autojump():
                with pytest.raises(DeadlinePassed):
                    await call_before(clock, clock.now() + 30, never)
        else:
            with pytest.raises(DeadlinePassed):
                await call_before(clock, clock.now() + 0.05, never)


async def test_wait_event_until_real_clock() -> None:
    clock = SystemClock()
    event = anyio.Event()
    with anyio.fail_after(5):
        await wait_event_until(event, clock, clock.now() + 0.05)  # deadline passes
        assert not event.is_set()
        event.set()
        await wait_event_until(event, clock, None)  # already set: returns at once
