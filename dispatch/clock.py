"""Time as a parameter.

Everything that depends on time (sliding windows, retry delays, dial timeouts in
the hub) reads an injected :class:`Clock`. Production uses :class:`SystemClock`;
tests use :class:`dispatch.testing.FakeClock`, which only moves when told to.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time in epoch seconds and a way to sleep on it."""

    def now(self) -> float:
        """Current time, epoch seconds (fractional)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time (returns at once when <= 0)."""
        ...


class SystemClock:
    """The real clock: ``time.time()`` and ``anyio.sleep``."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))
