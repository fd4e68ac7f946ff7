"""The pace as the voice server sees it: DispatchHub -> real SDK -> WebSocket -> sandbox.

Time is compressed 60x on both sides (the sandbox's ``speed`` and a hub ``ScaledClock``),
so the few milliseconds between a claim's commit and its frame leaving are seconds of
campaign time. The windows are counted from the sandbox's own dial log (``received_at``,
the moment the server got each ``call.dial``), scaled onto the hub's clock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.clock import ScaledClock
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox
from dispatch.sdk import Pinecall
from dispatch.testing import MemoryStrategy

pytestmark = pytest.mark.anyio

SPEED = 60.0


def worst_window(starts: list[float], window_s: float) -> int:
    """The most starts in any half-open window ``[t, t + window_s)``."""
    ordered = sorted(starts)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while not t < ordered[lo] + window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def campaign(tmp_path: Path, n: int, **limits: Any) -> list[float]:
    """Run ``n`` short answered calls; return the sandbox's dial receipts on the hub clock."""
    clock = ScaledClock(SPEED)
    # last two digits < 60: answered, a short talk, the callee hangs up
    recs = [Record(id=f"r{i}", phone=f"+1555{i:05d}{i % 60:02d}") for i in range(n)]
    async with Sandbox(speed=SPEED, seed=4) as sandbox, Pinecall(url=sandbox.url) as pc:
        agent = pc.agent("pace", phone_number=SANDBOX_NUMBER)
        await agent.ready()
        hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=SANDBOX_NUMBER,
                          db=tmp_path / "pace.db", clock=clock, poll_interval_s=600.0,
                          **limits)
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
        stats = hub.statistics()
        receipts = [clock.scale(dial.received_at) for dial in sandbox.dials]
    assert stats.completed == n and stats.dials_total == n == len(receipts)
    return receipts


async def test_per_minute_cap_holds_where_the_dials_arrive(tmp_path: Path) -> None:
    receipts = await campaign(tmp_path, 70, max_calls_per_minute=30)
    # reached (the campaign is rate-bound: 70 dials need 3 windows), never exceeded
    assert worst_window(receipts, 60.0) == 30
    assert max(receipts) - min(receipts) >= 120.0


async def test_per_second_and_per_minute_caps_hold_together(tmp_path: Path) -> None:
    receipts = await campaign(tmp_path, 50, max_calls_per_minute=20, max_calls_per_second=4)
    assert worst_window(receipts, 60.0) == 20
    assert worst_window(receipts, 1.0) == 4
    # the first 20 dials are spread by the per-second cap: 4 per second over 5 s
    first = sorted(receipts)[:20]
    assert first[-1] - first[0] >= 4.0
