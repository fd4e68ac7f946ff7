"""Child process for the intake crash test: a DispatchHub fed by a WebhookStrategy.

Usage: python intake_child.py DB PORT DIAL_LOG RATE|none
Every dial appends its record id to DIAL_LOG. With a RATE the hub runs until killed;
with ``none`` it runs until idle (every record terminal) and exits 0.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio

from dispatch.clock import SystemClock
from dispatch.hub import DispatchHub
from dispatch.strategies import WebhookStrategy
from dispatch.testing import Answer, MemoryCall, MemoryDialer
from dispatch.webhooks import parse_secret

SECRET = os.environ["DISPATCH_WEBHOOK_SECRET"]  # never on a command line


class LoggedDialer(MemoryDialer):
    def __init__(self, log: str) -> None:
        super().__init__(SystemClock(), default=Answer(duration_s=0.01))
        self.log = log

    async def dial(self, to: str, **kwargs: Any) -> MemoryCall:
        with open(self.log, "a", encoding="utf-8") as fh:  # noqa: ASYNC230 - test child
            fh.write(f"{kwargs['metadata']['dispatch_record_id']}\n")
        return await super().dial(to, **kwargs)


async def main(db: str, port: int, dial_log: str, rate: str) -> None:
    intake = WebhookStrategy(port=port, secrets=[parse_secret(SECRET)], name="pushed")
    hub = DispatchHub(LoggedDialer(dial_log), [intake], db=db, poll_interval_s=30.0,
                      max_calls_per_minute=None if rate == "none" else int(rate),
                      max_concurrent=10)
    await hub.run(until_idle=rate == "none")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
