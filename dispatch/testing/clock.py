"""FakeClock: a controllable clock for the hub (advance, autojump)."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio
from anyio import lowlevel

__all__ = ["FakeClock"]


class FakeClock:
    """A controllable :class:`~dispatch.clock.Clock` (epoch seconds)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until :meth:`advance` moves the clock ``seconds`` ahead."""
        if seconds <= 0:
            await lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), event))
        try:
            await event.wait()
        finally:
            event.set()  # a cancelled sleep leaves no stale deadline for autojump

    def next_deadline(self) -> float | None:
        """The earliest time a sleeper waits for (``None`` when nobody sleeps)."""
        self._drop_woken()
        return self._sleepers[0][0] if self._sleepers else None

    def sleepers_due_by(self, deadline: float) -> int:
        """How many tasks sleep until ``deadline`` or earlier: a test stepping the clock
        with :meth:`advance` waits for the tasks it expects before moving time on."""
        return sum(1 for at, _seq, event in self._sleepers if at <= deadline and not event.is_set())

    def _drop_woken(self) -> None:
        while self._sleepers and self._sleepers[0][2].is_set():
            heapq.heappop(self._sleepers)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()

    def jump_to_next(self) -> bool:
        """Advance to the earliest sleeper's deadline; False when nobody sleeps."""
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self.advance(max(0.0, deadline - self._now))
        return True

    @contextlib.asynccontextmanager
    async def autojump(self, *, settle_s: float = 0.005) -> AsyncIterator[FakeClock]:
        """While inside, jump to the next deadline whenever all tasks are blocked.

        A task waiting on a thread (a database write) looks blocked, so all tasks must
        stay blocked for ``settle_s`` of real time first; under heavy load time may
        still jump during I/O, so assert invariants rather than exact times here and
        use :meth:`advance` for exact timing.
        """
        async with anyio.create_task_group() as tg:

            async def _jumper() -> None:
                while True:
                    await _wait_all_tasks_blocked(settle_s)
                    if not self.jump_to_next():
                        await anyio.sleep(settle_s)

            tg.start_soon(_jumper)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()


def _others_blocked(this: asyncio.Task[Any] | None) -> bool:
    for task in asyncio.all_tasks():
        if task is this:
            continue
        waiter = getattr(task, "_fut_waiter", None)
        if waiter is None or waiter.done():
            return False
    return True


async def _wait_all_tasks_blocked(settle_s: float) -> None:
    """Like :func:`anyio.wait_all_tasks_blocked`, without its 0.1 s polling on asyncio.

    Blocked twice, ``settle_s`` apart, so that a thread finishing I/O (a database
    write) gets to wake its task before time jumps.
    """
    try:
        this = asyncio.current_task()
    except RuntimeError:  # not asyncio (trio)
        await anyio.wait_all_tasks_blocked()
        return
    while True:
        await asyncio.sleep(0)
        if _others_blocked(this):
            await asyncio.sleep(settle_s)
            if _others_blocked(this):
                return


# -- scripted outcomes ------------------------------------------------------------------
