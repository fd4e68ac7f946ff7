"""Waiting on the hub's clock (real or fake): an event with a deadline, a call with one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

import anyio

from dispatch.clock import Clock, RealRateClock, SystemClock

__all__ = ["DeadlinePassed", "call_before", "clock_seconds_per_real_s", "wait_event_until"]


class DeadlinePassed(Exception):
    """:func:`call_before`: the clock reached the deadline before the call returned."""


async def wait_event_until(event: anyio.Event, clock: Clock, deadline: float | None) -> None:
    """Return when ``event`` is set or ``clock`` reaches ``deadline`` (``None``: no deadline)."""
    if event.is_set():
        return
    if deadline is None:
        await event.wait()
        return
    real_s = _real_delay_s(clock, deadline)
    if real_s is not None:
        with anyio.move_on_after(real_s):
            await event.wait()
        return
    async with anyio.create_task_group() as tg:

        async def _timer() -> None:
            await clock.sleep(deadline - clock.now())
            tg.cancel_scope.cancel()

        tg.start_soon(_timer)
        await event.wait()
        tg.cancel_scope.cancel()


def clock_seconds_per_real_s(clock: Clock) -> float | None:
    """How many of ``clock``'s seconds pass in a real second; ``None`` when the clock
    does not run at a fixed rate against real time (a test's manual clock)."""
    if type(clock) is SystemClock:
        return 1.0
    real_seconds = getattr(clock, "real_seconds", None)
    if real_seconds is not None:
        one = float(cast(RealRateClock, clock).real_seconds(1.0))
        return 1.0 / one if one > 0 else None
    return None


def _real_delay_s(clock: Clock, deadline: float) -> float | None:
    """Real seconds until ``clock`` reaches ``deadline``, when the clock runs at a fixed
    rate against real time; ``None`` when it must be slept on explicitly.

    The real clock's time is the event loop's, and a clock with ``real_seconds``
    (:class:`~dispatch.clock.RealRateClock`, e.g. a ``ScaledClock``) maps onto it:
    a cancel-scope deadline does the job without a timer task (this runs several
    times per dial). Any other clock (a FakeClock, a subclass of SystemClock) may
    move differently.
    """
    if type(clock) is SystemClock:
        return deadline - clock.now()
    real_seconds = getattr(clock, "real_seconds", None)  # cheaper than a Protocol check
    if real_seconds is not None:
        return float(cast(RealRateClock, clock).real_seconds(deadline - clock.now()))
    return None


async def call_before(clock: Clock, deadline: float, fn: Callable[[], Awaitable[Any]]) -> Any:
    """Return ``await fn()``, cancelling it when ``clock`` reaches ``deadline``.

    Raises :class:`DeadlinePassed` then; an exception of ``fn`` is re-raised as is
    (not wrapped in an exception group).
    """
    real_s = _real_delay_s(clock, deadline)
    if real_s is not None:
        with anyio.move_on_after(real_s):
            return await fn()
        raise DeadlinePassed(f"no answer before the deadline {deadline}")
    result: dict[str, Any] = {}

    async with anyio.create_task_group() as tg:

        async def _call() -> None:
            try:
                result["value"] = await fn()
            except Exception as exc:
                result["error"] = exc
            tg.cancel_scope.cancel()

        async def _timer() -> None:
            await clock.sleep(deadline - clock.now())
            tg.cancel_scope.cancel()

        tg.start_soon(_call)
        tg.start_soon(_timer)
    if "error" in result:
        raise result["error"]
    if "value" not in result:
        raise DeadlinePassed(f"no answer before the deadline {deadline}")
    return result["value"]
