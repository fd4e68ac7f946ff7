"""The pace as the voice server sees it: DispatchHub -> real SDK -> WebSocket -> sandbox.

Time is compressed on both sides (the sandbox's ``speed`` and a hub ``ScaledClock``),
so the few milliseconds between a claim's commit and its frame leaving are seconds of
campaign time. The windows are counted from the sandbox's own dial log (``received_at``,
the moment the server got each ``call.dial``), scaled onto the hub's clock.

The hub is exact at the instant it writes each frame (``test_pace_send_time`` proves
that on a fake clock). The sandbox sees each frame one trip later, and that trip
varies: sharing one event loop with the hub and its live calls on a loaded 2-core
machine, we measured one-way delays from 0.1 ms to 60 ms, and a dial sent late in one
burst then arrives later than the dial sent exactly a window after it. So the hub runs
with ``pace_margin_s`` = 300 ms of real time (runs with 100 ms still saw 31/30 under
full-suite load), the setting meant for a carrier that
counts at its edge; nothing else is loosened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.clock import ScaledClock
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox, Scenario
from dispatch.sdk import Pinecall
from dispatch.testing import MemoryStrategy, worst_window

pytestmark = pytest.mark.anyio

#: short calls (simulated seconds): the campaign is bound by the rate, not by calls
SHORT_CALLS = Scenario.from_toml("[defaults]\nring_s = 0.2\ntalk_s = 0.5\n")
#: one-way delay variation the sandbox's count must absorb, in real seconds
LINK_JITTER_S = 0.3




async def warm_up(agent: Any) -> None:
    """One call before the campaign: the first dial of a process pays one-off costs
    (lazy imports, first use of the call simulator) inside the event loop the embedded
    sandbox shares, which would show up as one-way latency of the first dials."""
    call = await agent.dial("+15559999900", from_=SANDBOX_NUMBER)
    with anyio.fail_after(10):
        await call.wait_ended()


async def campaign(tmp_path: Path, n: int, speed: float, **limits: Any) -> list[float]:
    """Run ``n`` short answered calls; return the sandbox's dial receipts on the hub clock."""
    clock = ScaledClock(speed)
    # last two digits < 60: answered, a short talk, the callee hangs up
    recs = [Record(id=f"r{i}", phone=f"+1555{i:05d}{i % 60:02d}") for i in range(n)]
    async with Sandbox(speed=speed, seed=4, scenario=SHORT_CALLS) as sandbox, \
            Pinecall(url=sandbox.url) as pc:
        agent = pc.agent("pace", phone_number=SANDBOX_NUMBER)
        await agent.ready()
        await warm_up(agent)
        warm = len(sandbox.dials)
        hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=SANDBOX_NUMBER,
                          db=tmp_path / "pace.db", clock=clock, poll_interval_s=600.0,
                          pace_margin_s=LINK_JITTER_S * speed, **limits)
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
        stats = hub.statistics()
        receipts = [clock.scale(dial.received_at) for dial in sandbox.dials[warm:]]
    assert stats.completed == n and stats.dials_total == n == len(receipts)
    return receipts


async def test_per_minute_cap_holds_where_the_dials_arrive(tmp_path: Path) -> None:
    receipts = await campaign(tmp_path, 120, 60.0, max_calls_per_minute=30)
    # reached (the campaign is rate-bound: 120 dials need 4 windows), never exceeded
    assert worst_window(receipts, 60.0) == 30
    assert max(receipts) - min(receipts) >= 180.0


async def test_per_second_cap_holds_where_the_dials_arrive(tmp_path: Path) -> None:
    # 1 s of campaign time is 0.5 s of real time here: the link's jitter stays a fraction
    receipts = await campaign(tmp_path, 16, 2.0, max_calls_per_second=4,
                              max_calls_per_minute=120)
    assert worst_window(receipts, 1.0) == 4  # reached, never exceeded
    assert worst_window(receipts, 60.0) <= 120
    assert max(receipts) - min(receipts) >= 3.0  # 16 dials at 4 per second
