"""Group commit: one writer task drains a queue into one transaction per batch.

Callers :meth:`GroupWriter.submit` a list of ops and get a :class:`Ticket`;
awaiting the ticket waits until the batch holding those ops is committed (or
raises :class:`StoreError`). Ops of one submission always land in the same
transaction. Fire-and-forget callers simply do not await the ticket.

One bad submission never fails the others: when a batch's transaction fails
because of its data (a constraint, a value the driver cannot bind or serialise),
it is retried in order, split in halves down to single submissions, so only the
submission that cannot be written gets the error (its own ops stay atomic; the
write order of the others is kept, so the last update of a row still wins). A
failure of the database itself (locked, disk full, I/O) fails the whole batch at
once: retrying each submission would only repeat it.

Within a batch, record and attempt updates of the same row are coalesced: every
update carries the row's full mutable state, so only the last one queued is
executed (a dial's "dialing", "in call" and "ended" states often share a batch).
Submissions marked deferrable (``defer_s``) wait for the next one that is not, so
they cost no transaction of their own.
On a SQLite file the batch runs on the writer's own connection in one thread hop
(:mod:`dispatch.store.sqlite_batch`); other databases go through SQLAlchemy.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import cast

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from sqlalchemy import Executable, Table, func, select
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    ProgrammingError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.log import get_logger
from dispatch.store.errors import StoreClosed, StoreError
from dispatch.store.models import RecordRow
from dispatch.store.ops import KIND_ORDER, OpKind, WriteOp, build_statements
from dispatch.store.sqlite_batch import SqliteBatchWriter, is_data_error

__all__ = ["GroupWriter", "Ticket"]

log = get_logger("dispatch.store")

_records = cast(Table, RecordRow.__table__)

#: how long a cancelled writer keeps committing what was already queued
_FINAL_DRAIN_S = 10.0


class Ticket:
    """Completion of one submission: ``await ticket.wait()`` until committed.

    The event is made only when someone waits (most submissions are fire-and-forget).
    """

    __slots__ = ("_done", "_due", "_error", "_event")

    def __init__(self, due: float | None = None) -> None:
        #: a deferred submission: commit by this event-loop time at the latest
        self._due = due
        self._done = False
        self._event: anyio.Event | None = None
        self._error: StoreError | None = None

    def _finish(self, error: StoreError | None) -> None:
        self._error = error
        self._done = True
        if self._event is not None:
            self._event.set()

    @property
    def done(self) -> bool:
        return self._done

    async def wait(self) -> None:
        """Return once committed; raise :class:`StoreError` if the batch failed."""
        if not self._done:
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()
        else:
            await anyio.lowlevel.checkpoint()  # a wait is always a checkpoint
        if self._error is not None:
            raise self._error


_Item = tuple[Sequence[WriteOp], Ticket]


class GroupWriter:
    """The single writer of a store. Run :meth:`run` in a task group."""

    def __init__(self, engine: AsyncEngine, *, max_batch_ops: int = 5000,
                 sqlite_path: str | None = None) -> None:
        self._engine = engine
        self._statements: dict[OpKind, Executable] = build_statements(engine.dialect.name)
        #: the fast path (a SQLite file written by this process), else SQLAlchemy
        self._fast = SqliteBatchWriter(sqlite_path) if sqlite_path is not None else None
        self._max_batch_ops = max_batch_ops
        self._send: MemoryObjectSendStream[_Item] | None = None
        #: statistics: transactions tried, ops committed, rows executed (after coalescing)
        self.batches = 0
        self.ops_written = 0
        self.rows_written = 0

    @property
    def running(self) -> bool:
        return self._send is not None

    @property
    def fast(self) -> SqliteBatchWriter | None:
        """The SQLite fast path's connection owner (``None`` for other databases)."""
        return self._fast

    def submit(self, ops: Sequence[WriteOp], *, defer_s: float | None = None) -> Ticket:
        """Queue ``ops`` (never blocks). Raises :class:`StoreClosed` if not running.

        ``defer_s`` (real seconds): the ops need not commit at once; they ride with the
        next submission that must (a claim, a settle), or commit on their own once
        ``defer_s`` has passed. Their order among all submissions is kept."""
        if self._send is None:
            raise StoreClosed("the store writer is not running")
        ticket = Ticket(None if defer_s is None else anyio.current_time() + defer_s)
        self._send.send_nowait((ops, ticket))
        return ticket

    def close(self) -> None:
        """Stop accepting ops; :meth:`run` commits what is queued, then returns."""
        if self._send is not None:
            self._send.close()
            self._send = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Drain the queue until :meth:`close`; one transaction per batch."""
        if self._send is not None:
            raise StoreError("the store writer is already running")
        # bounded by its producers, not by the buffer (submit never blocks): claims,
        # polls and settles wait for their commit, so only the dialing / in-call
        # states of live calls and one step of each loop can be queued at once
        send, receive = anyio.create_memory_object_stream[_Item](math.inf)
        self._send = send
        task_status.started()
        try:
            await self._loop(receive)
        finally:
            self.close()
            if self._fast is not None:
                with anyio.CancelScope(shield=True):
                    await self._fast.aclose()

    async def _loop(self, receive: MemoryObjectReceiveStream[_Item]) -> None:
        held: list[_Item] = []  # deferred submissions waiting for a commit to ride
        async with receive:
            try:
                while True:
                    first, closed = await self._next(receive, held)
                    # a batch once taken is committed even if the writer is cancelled,
                    # so that no submitter waits forever on a rolled-back ticket
                    with anyio.CancelScope(shield=True):
                        items, held = held, []
                        if first is not None:
                            # one turn of the event loop first: what the tasks already
                            # running submit in it joins this batch instead of costing
                            # a transaction of its own
                            await anyio.lowlevel.checkpoint()
                            items = self._gather(receive, [*items, first])
                            if _may_wait(items):
                                held = items
                                continue
                        if items:
                            await self._commit(items)
                    if closed:
                        return
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True), anyio.move_on_after(_FINAL_DRAIN_S):
                    self.close()
                    leftover = self._gather(receive, held)
                    if leftover:
                        await self._commit(leftover)
                raise

    @staticmethod
    async def _next(receive: MemoryObjectReceiveStream[_Item],
                    held: list[_Item]) -> tuple[_Item | None, bool]:
        """The next submission; ``(None, False)`` when the held ones are due,
        ``(None, True)`` once the queue is closed and empty."""
        if not held:
            try:
                return await receive.receive(), False
            except anyio.EndOfStream:
                return None, True
        with anyio.move_on_after(_earliest_due(held) - anyio.current_time()):
            try:
                return await receive.receive(), False
            except anyio.EndOfStream:
                return None, True
        return None, False

    def _gather(self, receive: MemoryObjectReceiveStream[_Item], items: list[_Item]) -> list[_Item]:
        count = sum(len(ops) for ops, _ticket in items)
        while count < self._max_batch_ops:
            try:
                item = receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
            items.append(item)
            count += len(item[0])
        return items

    async def _commit(self, items: list[_Item]) -> None:
        """Commit ``items`` in one transaction; on failure, bisect in order."""
        error = await self._try(items)
        self.batches += 1
        if error is None:
            self.ops_written += sum(len(ops) for ops, _ticket in items)
            for _ops, ticket in items:
                ticket._finish(None)
            return
        if len(items) == 1 or not caused_by_data(error):
            log.error("store write failed", submissions=len(items), error=str(error))
            for _ops, ticket in items:
                ticket._finish(error)
            return
        middle = len(items) // 2
        await self._commit(items[:middle])
        await self._commit(items[middle:])

    async def _try(self, items: list[_Item]) -> StoreError | None:
        grouped = group_ops(items)
        try:
            if self._fast is not None:
                await self._fast.execute(grouped)
            else:
                await execute_grouped(self._engine, self._statements, grouped)
        except StoreError as exc:
            return exc
        self.rows_written += sum(len(rows) for rows in grouped.values())
        return None


def _earliest_due(items: Sequence[_Item]) -> float:
    return min(ticket._due for _ops, ticket in items if ticket._due is not None)


def _may_wait(items: Sequence[_Item]) -> bool:
    """Every submission is deferred and none is due yet."""
    now = anyio.current_time()
    return all(ticket._due is not None and ticket._due > now for _ops, ticket in items)


def caused_by_data(error: StoreError) -> bool:
    """Whether a failed write is about the rows written (worth isolating), not about
    the database (locked, disk full, I/O: the same for every submission)."""
    cause = error.__cause__
    if is_data_error(cause):  # the SQLite fast path
        return True
    if isinstance(cause, IntegrityError | DataError | ProgrammingError | InterfaceError):
        return True
    # parameter processing (e.g. a JSON value that cannot be serialised) fails before
    # the driver is involved: a StatementError that is not a DBAPIError
    return isinstance(cause, StatementError) and not isinstance(cause, DBAPIError)


#: the params that identify the row an update overwrites whole
_ROW_OF = {
    OpKind.UPDATE_RECORD: operator.itemgetter("b_source", "b_id"),
    OpKind.UPDATE_ATTEMPT: operator.itemgetter("b_source", "b_id", "b_no"),
}


def group_ops(items: Sequence[_Item]) -> dict[OpKind, list[dict[str, object]]]:
    """The params of every op, by kind, in submission order; of several updates of
    one row only the last is kept (each carries the row's full state)."""
    grouped: dict[OpKind, list[dict[str, object]]] = {kind: [] for kind in KIND_ORDER}
    latest: dict[OpKind, dict[object, dict[str, object]]] = {
        kind: {} for kind in _ROW_OF}
    for ops, _ticket in items:
        for op in ops:
            row_of = _ROW_OF.get(op.kind)
            if row_of is None:
                grouped[op.kind].append(op.params)
            else:
                row = row_of(op.params)
                by_row = latest[op.kind]
                by_row.pop(row, None)  # re-inserted last: the order of last updates is kept
                by_row[row] = op.params
    for kind, by_row in latest.items():
        grouped[kind] = list(by_row.values())
    return grouped


async def execute_grouped(
    engine: AsyncEngine,
    statements: dict[OpKind, Executable],
    grouped: dict[OpKind, list[dict[str, object]]],
) -> None:
    """Execute grouped ops in one transaction, kinds in :data:`KIND_ORDER`.

    New records get ``seq`` numbers after the largest stored one, in queue order.
    """
    try:
        async with engine.begin() as conn:
            for kind in KIND_ORDER:
                rows = grouped.get(kind)
                if not rows:
                    continue
                if kind is OpKind.INSERT_RECORD:
                    top = (await conn.execute(select(func.max(_records.c.seq)))).scalar()
                    base = int(top or 0) + 1
                    rows = [{**row, "seq": base + i} for i, row in enumerate(rows)]
                await conn.execute(statements[kind], rows)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database write failed: {exc}") from exc
