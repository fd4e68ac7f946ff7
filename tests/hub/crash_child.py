"""Child process for the crash test: one DispatchHub run against a sandbox URL.

Usage: python crash_child.py URL DB N
Exits 0 when the campaign is idle (every record terminal).
"""

from __future__ import annotations

import sys

import anyio

from dispatch.hub import DispatchHub, RetryPolicy
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER
from dispatch.sdk import Pinecall
from dispatch.testing import MemoryStrategy

POLICY = RetryPolicy(
    delays_s={Reason.BUSY: 0.5, Reason.NO_ANSWER: 0.5, Reason.FAILED: 0.5,
              Reason.INTERRUPTED: 1.0, Reason.DISCONNECTED: 1.0},
    max_attempts=4,
)


async def main(url: str, db: str, n: int) -> None:
    recs = [Record(id=f"r{i}", phone=f"+1555{i % 97:05d}{i % 100:02d}") for i in range(n)]
    async with Pinecall(url=url) as pc:
        agent = pc.agent("crash", phone_number=SANDBOX_NUMBER)
        await agent.ready()
        hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=SANDBOX_NUMBER, db=db,
                          max_concurrent=12, retry_attempts=1, retry_policy=POLICY,
                          poll_interval_s=0.5, dial_timeout_s=30.0)
        await hub.run(until_idle=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
