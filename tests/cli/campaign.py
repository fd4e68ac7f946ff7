"""A small finished campaign in a real SQLite file, for report/requeue tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

#: ids sort differently from the source order, so creation-time-then-id ordering shows
SOURCE = [
    Record(id="c", phone="+15550000003",
           metadata={"name": "=HYPERLINK(\"http://x\",\"click\")", "appointment": "June 12"}),
    Record(id="a", phone="555-12", metadata={"name": "Priya", "appointment": "June 13"}),
    Record(id="d", phone="+15550000004",
           metadata={"name": "Omar", "appointment": "=2+3",
                     "_invalid": "row 4: field 'first_name' is empty"}),
    Record(id="b", phone="+15550000002", metadata={"name": "Lena", "appointment": "June 15"}),
]


def script(clock: FakeClock) -> MemoryDialer:
    return MemoryDialer(clock, script={"+15550000002": ["busy", Answer(12.5)]},
                        default=Answer(30.0))


async def run_campaign(db: Path, recs: list[Any] | None = None, *,
                       dialer: MemoryDialer | None = None, clock: FakeClock | None = None,
                       retry_attempts: int = 1) -> MemoryDialer:
    """Run ``recs`` (default :data:`SOURCE`) until idle; return the dialer."""
    clock = clock or FakeClock()
    dialer = dialer or script(clock)
    strategy = MemoryStrategy(SOURCE if recs is None else recs)
    hub = DispatchHub(dialer, [strategy], clock=clock, db=db, retry_attempts=retry_attempts,
                      poll_interval_s=1000, drain_timeout_s=None)
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    return dialer
