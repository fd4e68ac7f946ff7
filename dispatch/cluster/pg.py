"""Cluster mode on PostgreSQL: :class:`PgCoordinator` (see ``docs/cluster.md``)."""

from __future__ import annotations

import os
import socket
import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from dispatch.cluster import sql
from dispatch.cluster.claims import Stamps, claim_batch, take_tokens
from dispatch.cluster.options import ClusterOptions
from dispatch.cluster.settler import Settler
from dispatch.cluster.sweeper import sweep_once
from dispatch.log import get_logger
from dispatch.store import Store
from dispatch.store.ops import build_statements

if TYPE_CHECKING:
    from dispatch.hub.core import HubCore
    from dispatch.hub.state import AttemptState, RecordEntry
    from dispatch.store import WriteOp

__all__ = ["CHANNEL", "PgCoordinator"]

log = get_logger("dispatch.cluster")

#: the LISTEN/NOTIFY channel (payload: the campaign id); a wake-up, never the queue
CHANNEL = "dispatch_wake"


class PgCoordinator:
    """One dispatcher process of a cluster sharing one PostgreSQL database."""

    shared = True

    def __init__(self, store: Store, campaign_id: str, options: ClusterOptions) -> None:
        self.store = store
        self.engine = store.engine
        self.campaign = campaign_id
        self.options = options
        self.node_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stamps = Stamps()
        self.statements = build_statements("postgresql")
        self.settler = Settler(self)
        self._scope: anyio.CancelScope | None = None
        self._sources: list[str] = []
        self._active: int | None = None
        self._dry = False
        self._core: HubCore | None = None
        self._next_claim_real_s = options.poll_floor_s
        #: the last claim found nothing due: the hub-clock instant the campaign's next
        #: waiting record comes due (a deferral's opening, a retry), else None
        self.next_due_hub: float | None = None
        #: a wake-up (NOTIFY, the watch loop) came since the last claim
        self._woken = False
        #: statistics
        self.claims = 0
        self.refreshed_tokens = 0
        self.swept = 0

    # -- life -------------------------------------------------------------------------

    async def run(self, core: HubCore, *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._core = core
        self._sources = [s.key for s in core.strategies]
        await self._join(core)
        with anyio.CancelScope() as scope:
            self._scope = scope
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeat_loop, name="cluster heartbeat")
                tg.start_soon(self._watch_loop, core, name="cluster watch")
                tg.start_soon(self._sweep_loop, core, name="cluster sweeper")
                tg.start_soon(self._listen, core, name="cluster listen")
                await tg.start(self.settler.run, core, name="cluster settler")
                task_status.started()

    async def close(self) -> None:
        if self._scope is not None:
            self._scope.cancel()
        with anyio.CancelScope(shield=True), anyio.move_on_after(10.0):
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(sql.LEAVE_LEASES, {"node": self.node_id})
                    await conn.execute(sql.LEAVE_NODE, {"node": self.node_id})
            except (SQLAlchemyError, OSError) as exc:
                log.warning("cannot leave the cluster cleanly", error=str(exc))

    async def _join(self, core: HubCore) -> None:
        """Register this node; size the campaign's tokens and slots to its limits."""
        limits = core.options
        params = {"campaign": self.campaign}
        async with self.engine.begin() as conn:
            await conn.execute(sql.REGISTER_NODE, {
                "node": self.node_id, "host": socket.gethostname(), "pid": os.getpid(),
                "campaign": self.campaign})
            await conn.execute(sql.LOCK_CAMPAIGN, params)  # resizing is serialised
            for kind, n in (("m", limits.max_calls_per_minute),
                            ("s", limits.max_calls_per_second)):
                await conn.execute(sql.TRIM_TOKENS, {**params, "kind": kind, "n": n or 0})
                if n:
                    await conn.execute(sql.ADD_TOKENS, {**params, "kind": kind, "n": n})
            n = limits.max_concurrent
            await conn.execute(sql.TRIM_SLOTS, {**params, "n": n or 0})
            if n:
                await conn.execute(sql.ADD_SLOTS, {**params, "n": n})
        log.info("joined the cluster", node=self.node_id, campaign=self.campaign)

    # -- background duties ------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        ttl = self.options.lease_ttl_s
        params = {"node": self.node_id, "ttl": ttl}
        while True:
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(sql.HEARTBEAT_NODE, params)
                    await conn.execute(sql.RENEW_RECORDS, params)
                    await conn.execute(sql.RENEW_SLOTS, params)
                    await conn.execute(sql.RENEW_LEASES, params)
            except (SQLAlchemyError, OSError) as exc:
                log.error("heartbeat failed", error=str(exc))
            await anyio.sleep(ttl / 3)

    async def _watch_loop(self, core: HubCore) -> None:
        """Re-read what every node shares (the poll floor): active records, dry marks."""
        prefix = f"poll:{self.campaign}:%"
        while True:
            try:
                async with self.engine.connect() as conn:
                    active = (await conn.execute(sql.ACTIVE_COUNT,
                                                 {"campaign": self.campaign})).scalar_one()
                    rows = (await conn.execute(sql.POLL_LEASES, {"prefix": prefix})).all()
                    sleeping_until = self.next_due_hub
                    due = None if sleeping_until is None else (await conn.execute(
                        sql.NEXT_DUE, {"campaign": self.campaign,
                                       "now": core.clock.now()})).scalar()
                leases: dict[str, bool] = {str(name): bool(dry) for name, dry in rows}
                self._active = int(active)
                self._dry = all(leases.get(self._lease_name(k)) for k in self._sources)
                if not _still_asleep(sleeping_until, due, core.clock.now()):
                    self._wake(core)  # a wake-up that may have been lost
                core.check_idle()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("cluster watch failed", error=str(exc))
            await anyio.sleep(self.options.poll_floor_s)

    async def _sweep_loop(self, core: HubCore) -> None:
        name = f"sweep:{self.campaign}"
        while True:
            try:
                if await self._take_lease(name):
                    self.swept += await sweep_once(self, core)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("sweep failed", error=str(exc))
            await anyio.sleep(self.options.sweep_interval_s)

    async def _listen(self, core: HubCore) -> None:
        """LISTEN for wake-ups on a connection of its own (lost ones cost a poll floor)."""
        import asyncpg  # type: ignore[import-untyped]

        dsn = make_url(self.store.url).set(drivername="postgresql").render_as_string(
            hide_password=False)

        def wake(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            if payload == self.campaign:
                self._wake(core)

        while True:
            conn = None
            try:
                closed = anyio.Event()
                conn = await asyncpg.connect(dsn)
                conn.add_termination_listener(lambda _conn, ev=closed: ev.set())
                await conn.add_listener(CHANNEL, wake)
                await closed.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cluster listen failed", error=str(exc))
            finally:
                if conn is not None:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                        await conn.close()
            await anyio.sleep(self.options.poll_floor_s)

    # -- leadership -------------------------------------------------------------------

    def _lease_name(self, source_key: str) -> str:
        return f"poll:{self.campaign}:{source_key}"

    async def _take_lease(self, name: str) -> bool:
        async with self.engine.begin() as conn:
            row = (await conn.execute(sql.TAKE_LEASE, {
                "name": name, "node": self.node_id, "ttl": self.options.lease_ttl_s})).first()
        return row is not None

    async def may_poll(self, source_key: str) -> bool:
        try:
            return await self._take_lease(self._lease_name(source_key))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("poll lease not taken", source=source_key, error=str(exc))
            return False

    async def polled(self, source_key: str, changed: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sql.MARK_DRY, {"name": self._lease_name(source_key),
                                              "node": self.node_id, "dry": changed == 0})
            if changed:
                await self._notify(conn)

    async def _notify(self, conn: Any) -> None:
        await conn.execute(sql.NOTIFY, {"channel": CHANNEL, "campaign": self.campaign})

    def idle(self) -> bool:
        return self._active == 0 and self._dry

    # -- claims -----------------------------------------------------------------------

    def _wake(self, core: HubCore) -> None:
        self._woken = True
        core.dispatch_signal.set()

    async def claim(self, core: HubCore, room: int) -> list[tuple[RecordEntry, AttemptState]]:
        if (self.next_due_hub is not None and not self._woken
                and core.clock.now() < self.next_due_hub):
            return []  # nothing is due before then and nothing changed: no transaction
        self._woken = False
        grants, retry_real_s = await claim_batch(self, core, room)
        self._next_claim_real_s = retry_real_s
        self.claims += len(grants)
        return grants

    def claim_retry_s(self) -> float:
        floor = 0.005 * self.options.time_scale
        if self.next_due_hub is not None and self._core is not None:
            # nothing is due before then: sleep (a wake-up or the watch loop seeing
            # something due earlier ends the sleep)
            return max(floor, self.next_due_hub - self._core.clock.now())
        wait = min(self._next_claim_real_s, self.options.poll_floor_s)
        return max(wait, 0.005) * self.options.time_scale

    async def before_send(self, attempt: AttemptState) -> None:
        """A token stamped more than the margin ago is replaced by a fresh one, so the
        frame leaves within ``send_margin_hub_s`` of its token's stamp."""
        key = (attempt.source, attempt.record_id, attempt.attempt_no)
        stamped = self.stamps.pop(key)
        if stamped is None:
            return
        margin = self.options.real_s(self.options.send_margin_hub_s)
        while time.monotonic() - stamped > margin:
            self.refreshed_tokens += 1
            stamped = time.monotonic()
            async with self.engine.begin() as conn:
                got, wait_s = await take_tokens(self, conn, 1)
            if got:
                stamped = min(stamped, got)
                break
            await anyio.sleep(max(0.002, wait_s))

    # -- settling ---------------------------------------------------------------------

    async def settle(self, core: HubCore, entry: RecordEntry, attempt: AttemptState,
                     ops: list[WriteOp]) -> None:
        """The attempt's writes, its slot freed and its claim dropped, in one transaction
        with the other settles waiting (only while the record is still ours: a sweeper
        may have taken it over)."""
        await self.settler.settle(entry, attempt, ops)


def _still_asleep(until: float | None, due: Any, hub_now: float) -> bool:
    """The dispatch loop sleeps until ``until`` (nothing was due) and the database's
    next due time is still in the future and no earlier: waking it would only find
    nothing again (an all-deferred campaign costs no claim per poll floor)."""
    if until is None or due is None:
        return False
    return hub_now < float(due) and float(due) >= until - 1e-6
