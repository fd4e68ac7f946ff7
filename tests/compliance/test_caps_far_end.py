"""The rolling per-phone cap, seen from the sandbox's dial log (real loopback socket).

A dial claimed ahead of its rate token leaves up to a minute after its claim; the cap
must count it from when it left, as the carrier does, or the next dial to that phone
is let through before the 24 h window has really freed.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from dispatch.clock import ScaledClock
from dispatch.compliance import ComplianceSettings
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox
from dispatch.sdk import Pinecall
from dispatch.testing import MemoryStrategy

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SPEED = 3600.0  # a simulated hour per real second: the 24 h window lasts 24 s
DAY_S = 86_400.0


async def test_the_phone_cap_counts_a_dial_from_when_it_reached_the_server(
        tmp_path: Path) -> None:
    clock = ScaledClock(SPEED)
    capped = "+12125550001"  # New York; ...01 answers and hangs up
    recs = [Record(id="other", phone="+12125550002"),
            *(Record(id=f"p{i}", phone=capped) for i in range(1, 5))]
    async with Sandbox(speed=SPEED, seed=3) as sandbox, \
            Pinecall("pk_sandbox", sandbox.url) as pc:
        agent = pc.agent("caps", phone_number=SANDBOX_NUMBER)
        # 1 dial per minute binds: each next dial is claimed ahead of its token and
        # leaves up to 60 s (simulated) after its claim
        hub = DispatchHub(agent, [MemoryStrategy(recs)], clock=clock, db=tmp_path / "c.db",
                          max_calls_per_minute=1, poll_interval_s=3600.0,
                          drain_timeout_s=None, compliance=ComplianceSettings(phone_cap=3))
        with anyio.fail_after(120):
            await hub.run(until_idle=True)
        placed = sorted(clock.scale(d.received_at) for d in sandbox.dials
                        if d.to == capped and d.call_id is not None)
    assert len(placed) == 4
    assert placed[2] - placed[0] < DAY_S / 2  # three went the first day...
    # ...and the fourth only once the first had left the server's 24 h window (a few
    # simulated seconds of slack: one real millisecond is 3.6 of them)
    assert placed[3] - placed[0] >= DAY_S - 5.0
