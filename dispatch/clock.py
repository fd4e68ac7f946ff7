"""Time as a parameter.

Everything that depends on time (sliding windows, retry delays, dial timeouts in
the hub) reads an injected :class:`Clock`. Production uses :class:`SystemClock`;
tests use :class:`dispatch.testing.FakeClock`, which only moves when told to, and
:class:`ScaledClock` (real time running N times faster) where a hub meets a real
voice server whose simulated time is compressed too (the sandbox's ``speed``).
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "RealRateClock", "ScaledClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Wall-clock time in epoch seconds and a way to sleep on it."""

    def now(self) -> float:
        """Current time, epoch seconds (fractional)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of this clock's time (returns at once when <= 0)."""
        ...


@runtime_checkable
class RealRateClock(Protocol):
    """A clock that runs at a fixed rate against real time (optional capability).

    ``real_seconds(s)`` is how many real seconds ``s`` of this clock last. The hub
    then waits for a deadline on this clock with a cancel scope on the event loop's
    own timer instead of a timer task per wait; a clock that only moves when told
    to (:class:`dispatch.testing.FakeClock`) must not offer it.
    """

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    def real_seconds(self, seconds: float) -> float: ...


class SystemClock:
    """The real clock: ``time.time()`` and ``anyio.sleep``."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))


class ScaledClock:
    """Wall-clock time running ``speed`` times faster from ``origin`` (default: now).

    ``now()`` is ``origin + (time.time() - origin) * speed``; ``sleep(s)`` sleeps
    ``s / speed`` real seconds. :meth:`scale` maps any ``time.time()`` stamp (e.g. a
    sandbox dial log's ``received_at``) onto this clock, so the two can be compared.
    """

    def __init__(self, speed: float, origin: float | None = None) -> None:
        if not 0 < speed < float("inf"):
            raise ValueError(f"speed must be > 0 and finite, got {speed}")
        self.speed = speed
        self.origin = time.time() if origin is None else origin

    def scale(self, wall_s: float) -> float:
        """This clock's reading at the real epoch time ``wall_s``."""
        return self.origin + (wall_s - self.origin) * self.speed

    def now(self) -> float:
        return self.scale(time.time())

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds) / self.speed)

    def real_seconds(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of this clock last (see :class:`RealRateClock`)."""
        return seconds / self.speed
