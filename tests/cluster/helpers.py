"""A HubCore and a PgCoordinator on a real PostgreSQL database, without a hub run."""

from __future__ import annotations

import time
from typing import Any

from dispatch.cluster.options import ClusterOptions
from dispatch.cluster.pg import PgCoordinator
from dispatch.hub.core import HubCore, HubOptions
from dispatch.hub.notify import Hooks, Notifier
from dispatch.hub.retry import RetryPolicy
from dispatch.hub.state import SourceMap
from dispatch.reasons import Reason
from dispatch.store import Store, insert_record
from dispatch.store.campaigns import ensure
from dispatch.testing import MemoryStrategy

CAMPAIGN = "unit"


def options(**limits: Any) -> HubOptions:
    return HubOptions(
        from_=None, max_calls_per_minute=limits.get("per_minute"),
        max_concurrent=limits.get("concurrent"), retry_attempts=None,
        retry_policy=RetryPolicy(delays_s={Reason.INTERRUPTED: 5.0}, max_attempts=3),
        poll_interval_s=1.0, default_region=None, dial_timeout_s=30.0, detect_turn_end=False,
        claim_batch_size=256, hangup_grace_s=1.0, callback_drain_s=1.0, drain_timeout_s=None,
        max_calls_per_second=limits.get("per_second"))


async def node(store: Store, agent: Any = None, *, cluster: ClusterOptions | None = None,
               events: bool = False, **limits: Any) -> tuple[HubCore, PgCoordinator]:
    """A core (not running) and its joined coordinator."""
    strategy = MemoryStrategy()
    core = HubCore(agent=agent, store=store, clock=_RealClock(), strategies=[strategy],
                   options=options(**limits), notifier=Notifier(Hooks(None, None, None, None)))
    core.book.sources = SourceMap(core.strategies)
    if not events:  # no hub run delivers events here
        core.notifier.close()
        core.notifier._receive.close()
    coord = PgCoordinator(store, CAMPAIGN, cluster or ClusterOptions(lease_ttl_s=30.0))
    coord._core = core
    coord._sources = [strategy.key]
    core.coordinator = coord
    await ensure(store.engine, CAMPAIGN, limits={}, now=time.time(), by="test")
    await coord._join(core)
    return core, coord


async def add_records(store: Store, phones: list[str], source: str = "memory") -> None:
    now = time.time()
    await store.write_now([
        insert_record(source=source, id=f"r{i}", phone=phone, strategy="memory",
                      status="pending", payload={}, now=now, campaign_id=CAMPAIGN)
        for i, phone in enumerate(phones)])


class _RealClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        import anyio

        await anyio.sleep(max(0.0, seconds))
