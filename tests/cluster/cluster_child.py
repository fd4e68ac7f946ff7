"""One dispatcher of the cluster test: a DispatchHub on a shared PostgreSQL database.

Usage: python cluster_child.py SANDBOX_URL DB_URL N SPEED ORIGIN
Exits 0 once the campaign is idle in the database (every record terminal).
"""

from __future__ import annotations

import os
import sys

import anyio

from dispatch.clock import ScaledClock
from dispatch.cluster.options import ClusterOptions
from dispatch.hub import DispatchHub, RetryPolicy
from dispatch.log import configure_logging
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.sdk import Pinecall
from dispatch.testing import MemoryStrategy

CAP_PER_MINUTE = 120
MAX_CONCURRENT = 24
CAMPAIGN = "cluster-test"
POLICY = RetryPolicy(
    delays_s={Reason.BUSY: 5.0, Reason.NO_ANSWER: 5.0, Reason.FAILED: 5.0,
              Reason.INTERRUPTED: 10.0, Reason.DISCONNECTED: 10.0},
    max_attempts=2,
)


def phone(i: int) -> str:
    """Records ``i`` and ``i + 1900`` share a phone; the last two digits (the
    sandbox's callee rule) avoid 95-99, callees that never hang up."""
    k = i % 1900
    return f"+1555{k:05d}{k % 95:02d}"


def records(n: int) -> list[Record]:
    return [Record(id=f"r{i}", phone=phone(i)) for i in range(n)]


async def main(url: str, db: str, n: int, speed: float, origin: float) -> None:
    configure_logging(level="info", stream=sys.stderr)
    clock = ScaledClock(speed, origin)
    async with Pinecall(url=url) as pc:
        # one agent and caller id per process: the server admits one socket per agent
        # id and per phone number
        number = f"+1500555{os.getpid() % 10000:04d}"
        agent = pc.agent(f"cluster-{os.getpid()}", phone_number=number)
        await agent.ready()
        hub = DispatchHub(
            agent, [MemoryStrategy(records(n))], from_=number, db=db, clock=clock,
            campaign=CAMPAIGN, max_calls_per_minute=CAP_PER_MINUTE,
            max_concurrent=MAX_CONCURRENT, retry_policy=POLICY, poll_interval_s=30.0,
            dial_timeout_s=70.0,
            cluster=ClusterOptions(lease_ttl_s=2.0, send_margin_hub_s=12.0, time_scale=speed,
                                   poll_floor_s=0.2, sweep_interval_s=0.3,
                                   reconcile_wait_hub_s=120.0),
        )
        await hub.run(until_idle=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
              float(sys.argv[5]))
