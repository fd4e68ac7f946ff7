"""One dispatcher of the cluster compliance test: a DispatchHub with the admission step
on a shared PostgreSQL database, on a hub clock that starts at a chosen instant.

Usage: python compliance_child.py SANDBOX_URL DB_URL SPEED T0 BASE DNC_FILE
(the hub clock reads ``BASE + (time.time() - T0) * SPEED``: every process the same).
Exits 0 once the campaign is idle in the database (every record terminal).
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import anyio

from dispatch.clock import ScaledClock
from dispatch.cluster.options import ClusterOptions
from dispatch.compliance import ComplianceSettings
from dispatch.hub import DispatchHub
from dispatch.hub.admission import Compliance
from dispatch.log import configure_logging
from dispatch.records import Record
from dispatch.sdk import Pinecall
from dispatch.testing import MemoryStrategy

CAMPAIGN = "cluster-compliance"
PHONE_CAP = 2
PHONE_CAP_WINDOW_S = 600.0
#: the sandbox refuses these numbers ``403 do_not_call``: the node that dials one puts
#: it on the internal list, and its second record must be skipped by whichever node
REFUSED_PATTERN = "+12125554*"
GROUPS = ("open", "la", "dnc", "optout", "cap")


def phones() -> dict[str, list[tuple[str, str]]]:
    """``group -> [(record id, phone)]``; every number ends 00-59 (the sandbox's callee
    answers and hangs up)."""
    out: dict[str, list[tuple[str, str]]] = {g: [] for g in GROUPS}
    out["open"] = [(f"open-{i}", f"+1212555{1000 + i:04d}") for i in range(40)]  # NY
    out["la"] = [(f"la-{i}", f"+1213555{2000 + i:04d}") for i in range(20)]  # Los Angeles
    out["dnc"] = [(f"dnc-{i}", f"+1212555{3000 + i:04d}") for i in range(8)]  # on the file
    out["optout"] = [(f"optout-{i}-{k}", f"+1212555{4000 + i:04d}")
                     for i in range(5) for k in "ab"]
    out["cap"] = [(f"cap-{i}-{k}", f"+1212555{5000 + i:04d}") for i in range(6)
                  for k in range(4)]
    return out


def records() -> list[Record]:
    # interleaved, so every group is in the first claims of every node
    rows = [row for group in itertools.zip_longest(*phones().values()) for row in group
            if row is not None]
    return [Record(id=rid, phone=phone) for rid, phone in rows]


class ShiftedClock(ScaledClock):
    """A :class:`ScaledClock` whose reading at real time ``t0`` is ``base``."""

    def __init__(self, speed: float, t0: float, base: float) -> None:
        super().__init__(speed, t0)
        self.base = base

    def scale(self, wall_s: float) -> float:
        return self.base + (wall_s - self.origin) * self.speed


async def main(url: str, db: str, speed: float, t0: float, base: float, dnc: str) -> None:
    configure_logging(level="info", stream=sys.stderr)
    clock = ShiftedClock(speed, t0, base)
    async with Pinecall(url=url) as pc:
        number = f"+1500555{os.getpid() % 10000:04d}"
        agent = pc.agent(f"cadmit-{os.getpid()}", phone_number=number)
        await agent.ready()
        hub = DispatchHub(
            agent, [MemoryStrategy(records())], from_=number, db=db, clock=clock,
            campaign=CAMPAIGN, max_calls_per_minute=600, max_concurrent=12,
            poll_interval_s=30.0, dial_timeout_s=70.0,
            compliance=Compliance(
                settings=ComplianceSettings(phone_cap=PHONE_CAP,
                                            phone_cap_window_s=PHONE_CAP_WINDOW_S),
                dnc_files=[Path(dnc)]),
            cluster=ClusterOptions(lease_ttl_s=2.0, send_margin_hub_s=12.0, time_scale=speed,
                                   poll_floor_s=0.2, sweep_interval_s=0.3,
                                   reconcile_wait_hub_s=120.0),
        )
        await hub.run(until_idle=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]),
              float(sys.argv[5]), sys.argv[6])
