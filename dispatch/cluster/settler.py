"""Group commit for settles in cluster mode: many attempts, one transaction.

A settle writes the attempt's final rows, frees its slot and drops its claim, only
while the record is still ours (a sweeper may have taken it over). Committing each
alone costs a transaction and a WAL flush per dial; :class:`Settler` gathers what
is waiting (a bounded queue) and commits it together, then wakes every waiter.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectSendStream
from sqlalchemy.exc import SQLAlchemyError

from dispatch.cluster import sql
from dispatch.log import get_logger
from dispatch.store import TERMINAL_STATUSES, StoreClosed
from dispatch.store.ops import KIND_ORDER

if TYPE_CHECKING:
    from dispatch.cluster.pg import PgCoordinator
    from dispatch.hub.core import HubCore
    from dispatch.hub.state import AttemptState, RecordEntry
    from dispatch.store import WriteOp

__all__ = ["Settler"]

log = get_logger("dispatch.cluster")

_MAX_BATCH = 256


@dataclasses.dataclass(eq=False)
class _Item:
    entry: RecordEntry
    attempt: AttemptState
    ops: list[WriteOp]
    done: anyio.Event = dataclasses.field(default_factory=anyio.Event)


class Settler:
    """``await settle(...)`` returns once the settle is committed (or refused)."""

    def __init__(self, coord: PgCoordinator) -> None:
        self.coord = coord
        self._send: MemoryObjectSendStream[_Item] | None = None
        self.batches = 0

    async def settle(self, entry: RecordEntry, attempt: AttemptState,
                     ops: list[WriteOp]) -> None:
        if self._send is None:
            raise RuntimeError("the settler is not running")
        item = _Item(entry, attempt, ops)
        await self._send.send(item)  # bounded: a slow database holds the callers back
        await item.done.wait()

    async def run(self, core: HubCore, *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        send, receive = anyio.create_memory_object_stream[_Item](_MAX_BATCH * 4)
        self._send = send
        task_status.started()
        async with send, receive:
            async for first in receive:
                items = [first]
                while len(items) < _MAX_BATCH:
                    try:
                        items.append(receive.receive_nowait())
                    except anyio.WouldBlock:
                        break
                with anyio.CancelScope(shield=True):
                    try:
                        await self._commit(core, items)
                    except (SQLAlchemyError, OSError) as exc:
                        log.error("settle failed; the claims stay leased", count=len(items),
                                  error=str(exc))
                    finally:
                        for item in items:
                            item.done.set()

    async def _commit(self, core: HubCore, items: list[_Item]) -> None:
        coord = self.coord
        try:
            await core.store.flush()  # earlier writes of these attempts commit first
        except StoreClosed:
            pass  # hard shutdown: the writer has stopped
        async with coord.engine.begin() as conn:
            owned = {(str(r.source), str(r.id)): int(r.pk) for r in (await conn.execute(
                sql.OWN_RECORDS, {"sources": [i.entry.source for i in items],
                                  "ids": [i.entry.id for i in items],
                                  "node": coord.node_id})).all()}
            grouped: dict[Any, list[dict[str, object]]] = {kind: [] for kind in KIND_ORDER}
            pks = []
            for item in items:
                pk = owned.get((item.entry.source, item.entry.id))
                if pk is None:
                    log.warning("settle skipped: the claim was taken over",
                                record_id=item.entry.id, attempt_no=item.attempt.attempt_no)
                    continue
                pks.append(pk)
                for op in item.ops:
                    grouped[op.kind].append(op.params)
            for kind in KIND_ORDER:
                if grouped[kind]:
                    await conn.execute(coord.statements[kind], grouped[kind])
            if pks:
                await conn.execute(sql.FREE_SLOT, [{"campaign": coord.campaign, "pk": pk}
                                                   for pk in pks])
                await conn.execute(sql.DROP_LEASE, [{"pk": pk} for pk in pks])
                await coord._notify(conn)  # slots are free (and maybe retries are due)
        self.batches += 1
        for item in items:
            if item.entry.status not in TERMINAL_STATUSES:  # the database holds it now
                core.book.entries.pop(item.entry.key, None)
