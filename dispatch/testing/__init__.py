"""Test kit: drive a :class:`~dispatch.hub.DispatchHub` without a network or real time.

- :class:`FakeClock` only moves on :meth:`FakeClock.advance` (or, inside
  :meth:`FakeClock.autojump`, to the next sleeper whenever every task is blocked);
- :class:`MemoryDialer` satisfies the hub's dialer interface with scripted outcomes
  per number (:class:`Answer`, :class:`Fail`, :class:`Hang`, :class:`Raise`);
- :class:`MemoryStrategy` hands out records you feed it from code;
- :func:`worst_window` checks a rate cap from a far-end log of dial times.

They go through the same constructor arguments production uses::

    clock = FakeClock()
    dialer = MemoryDialer(clock, script={"+15550000075": ["busy", Answer(30)]})
    hub = DispatchHub(dialer, [MemoryStrategy(records)], db=tmp_path / "t.db", clock=clock)
    async with clock.autojump():
        await hub.run(until_idle=True)
"""

from dispatch.testing.clock import FakeClock
from dispatch.testing.dialer import (
    Answer,
    DialLog,
    Fail,
    Hang,
    MemoryCall,
    MemoryDialer,
    Raise,
    Step,
)
from dispatch.testing.strategy import MemoryStrategy
from dispatch.testing.windows import worst_window

__all__ = [
    "Answer",
    "DialLog",
    "Fail",
    "FakeClock",
    "Hang",
    "MemoryCall",
    "MemoryDialer",
    "MemoryStrategy",
    "Raise",
    "Step",
    "worst_window",
]

