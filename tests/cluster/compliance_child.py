"""One dispatcher of the cluster compliance test: a DispatchHub with the admission step
on a shared PostgreSQL database, on a hub clock that starts at a chosen instant.

Usage: python compliance_child.py SANDBOX_URL DB_URL SPEED GO_FILE BASE DNC_FILE
Once its agent is ready it writes ``GO_FILE.ready.<pid>`` and waits for ``GO_FILE``,
which holds ``T0``: the hub clock reads ``BASE + (time.time() - T0) * SPEED``, the
same in every process, starting when all of them are up (however slow the machine).
Exits 0 once the campaign is idle in the database (every record terminal).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
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


def _start_time(go: Path) -> float:
    """Say this process is up; wait (in a worker thread) for the test's ``T0``."""
    Path(f"{go}.ready.{os.getpid()}").write_text("ready", encoding="utf-8")
    deadline = time.monotonic() + 120.0
    while time.monotonic() < deadline:
        text = go.read_text(encoding="utf-8") if go.exists() else ""
        if text.endswith("\n"):
            return float(text)
        time.sleep(0.02)
    raise TimeoutError(f"{go} was never written")


async def main(url: str, db: str, speed: float, go: str, base: float, dnc: str) -> None:
    configure_logging(level="info", stream=sys.stderr)
    async with Pinecall(url=url) as pc:
        number = f"+1500555{os.getpid() % 10000:04d}"
        agent = pc.agent(f"cadmit-{os.getpid()}", phone_number=number)
        await agent.ready()
        t0 = await anyio.to_thread.run_sync(_start_time, Path(go))
        clock = ShiftedClock(speed, t0, base)
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
    anyio.run(main, sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4],
              float(sys.argv[5]), sys.argv[6])
