"""The durable state of a campaign: :class:`Store`."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from types import TracebackType
from typing import Any, cast

import anyio
from anyio.abc import TaskStatus
from sqlalchemy import Table, insert, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.cluster.migrate_lock import pg_migration_lock
from dispatch.store import campaigns, queries, reports, schema
from dispatch.store.engine import create_engine, resolve_url, sqlite_file
from dispatch.store.errors import StoreError
from dispatch.store.models import RunRow
from dispatch.store.ops import KIND_ORDER, OpKind, WriteOp, build_statements
from dispatch.store.requeue import RequeueFilter, RequeueResult, requeue
from dispatch.store.sqlite_batch import compile_named
from dispatch.store.writer import GroupWriter, Ticket, execute_grouped

__all__ = ["Store", "open_store"]

_runs = cast(Table, RunRow.__table__)


@functools.cache
def _select_campaign_sql() -> str:
    return compile_named(campaigns.SELECT_ONE)


class Store:
    """Records, attempts and runs in SQLite (WAL) or another async SQLAlchemy database.

    Open with :meth:`open` (applies migrations unless ``read_only``). Writes go through
    a single group-commit writer: run :meth:`run_writer` in a task group, then
    :meth:`submit` ops (fire-and-forget) or :meth:`write` them (await the commit).
    Every database error surfaces as :class:`~dispatch.store.errors.StoreError`.
    """

    def __init__(self, engine: AsyncEngine, *, url: str, read_only: bool = False) -> None:
        self.engine = engine
        self.url = url
        self.read_only = read_only
        # a SQLite file gets the writer's one-hop fast path (not ``:memory:``, whose
        # only connection is the engine's own)
        self._writer = GroupWriter(engine, sqlite_path=None if read_only else sqlite_file(url))

    @classmethod
    async def open(
        cls,
        db: str | os.PathLike[str],
        *,
        migrate: bool = True,
        read_only: bool = False,
        lock_wait_s: float = 0.0,
    ) -> Store:
        """Open ``db`` (a path, ``:memory:`` or an async URL).

        Migrating (when the schema is behind) holds the run lock, waiting up to
        ``lock_wait_s`` for another process's migration; the lock is released before
        this returns (the hub takes it next). ``read_only=True`` is for reports: no
        migration, ``PRAGMA query_only``; the database must exist at this release's
        schema. Raises :class:`StoreError`: :class:`NotADatabase` for a file that is
        not SQLite, :class:`SchemaTooNew` for a database written by a newer release,
        :class:`SchemaTooOld` (read-only only), :class:`StoreLocked` while a campaign
        holds the lock of a database that needs migrating.
        """
        url = resolve_url(db)
        file = sqlite_file(url)
        if file is not None:
            if read_only and not await anyio.Path(file).exists():
                raise StoreError(f"database {file!r} does not exist")
            await schema.check_sqlite_file(file)
        try:
            engine = create_engine(url, read_only=read_only)
        except (SQLAlchemyError, ValueError) as exc:
            raise StoreError(f"cannot open database {db!r}: {exc}") from exc
        store = cls(engine, url=url, read_only=read_only)
        try:
            if read_only:
                await schema.check_readable(engine, schema.display_name(url))
            elif migrate:
                async with pg_migration_lock(engine):  # cluster: one migrating process
                    await schema.migrate_locked(
                        engine, url, schema.display_name(url), wait_s=lock_wait_s
                    )
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        """Stop the writer (if running) and release connections."""
        self._writer.close()
        await self.engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- writes -----------------------------------------------------------------------

    @property
    def writer(self) -> GroupWriter:
        """The group-commit writer (its ``batches``/``ops_written`` are statistics)."""
        return self._writer

    async def run_writer(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the group-commit writer until :meth:`close_writer` (start with ``tg.start``)."""
        await self._writer.run(task_status=task_status)

    def close_writer(self) -> None:
        """Let the writer commit what is queued and return."""
        self._writer.close()

    def submit(self, ops: Sequence[WriteOp], *, defer_s: float | None = None) -> Ticket:
        """Queue ops for the next batch; they commit together. Never blocks.
        ``defer_s``: they may wait that long for another commit to ride with."""
        return self._writer.submit(ops, defer_s=defer_s)

    async def write(self, ops: Sequence[WriteOp]) -> None:
        """Queue ops and wait for their batch to commit."""
        await self._writer.submit(ops).wait()

    async def read_campaign(self, campaign_id: str) -> campaigns.Campaign | None:
        """The campaign row, or ``None``. On a SQLite file this process writes, read on
        the writer's own connection (one thread hop: the hub reads it twice a second)."""
        fast = self._writer.fast
        if fast is not None and self._writer.running:
            row = await fast.fetch_one(_select_campaign_sql(), {"id": campaign_id})
            return None if row is None else campaigns.from_mapping(row)
        return await campaigns.get(self.engine, campaign_id)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        await self.write(())

    async def write_now(self, ops: Sequence[WriteOp]) -> None:
        """Write ops in their own transaction, bypassing the writer.

        For shutdown paths where the writer task may already be cancelled.
        """
        grouped: dict[OpKind, list[dict[str, object]]] = {kind: [] for kind in KIND_ORDER}
        for op in ops:
            grouped[op.kind].append(op.params)
        await execute_grouped(self.engine, build_statements(self.engine.dialect.name), grouped)

    # -- runs -------------------------------------------------------------------------

    async def start_run(self, *, started_at: float, pid: int, config: dict[str, Any],
                        mark_crashed: bool = True) -> int:
        """Insert a ``running`` run row; mark earlier ``running`` rows ``crashed``
        (``mark_crashed=False`` in cluster mode: other nodes' runs are running)."""
        try:
            async with self.engine.begin() as conn:
                if mark_crashed:
                    await conn.execute(
                        update(_runs).where(_runs.c.status == "running")
                        .values(status="crashed")
                    )
                result = await conn.execute(
                    insert(_runs).values(
                        started_at=started_at, pid=pid, config=config, status="running"
                    )
                )
                key = result.inserted_primary_key
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot record the run: {exc}") from exc
        if key is None:
            raise StoreError("cannot record the run: no id returned")
        return int(key[0])

    async def end_run(self, run_id: int, *, ended_at: float, status: str) -> None:
        """Close a run row with its final status."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(_runs)
                    .where(_runs.c.id == run_id)
                    .values(ended_at=ended_at, status=status)
                )
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot close run {run_id}: {exc}") from exc

    # -- reads ------------------------------------------------------------------------

    async def load_active(self) -> list[queries.StoredRecord]:
        """Records still needing work (pending, scheduled, dialing, in_call)."""
        return await queries.load_active(self.engine)

    async def existing_keys(
        self, sources: Collection[str], ids: Iterable[str]
    ) -> set[queries.RecordKey]:
        """The ``(source, id)`` of those ``ids`` stored under one of ``sources``
        (chunked indexed lookups: the cost of the ids asked about, not of the store)."""
        return await queries.existing_keys(self.engine, sources, ids)

    async def has_source(self, source: str) -> bool:
        """Whether any record is stored under ``source`` (one index probe)."""
        return await queries.has_source(self.engine, source)

    async def uncounted_attempts(self) -> dict[queries.RecordKey, int]:
        """Active records' dials stopped by a campaign-wide error (not counted)."""
        return await queries.uncounted_attempts(self.engine)

    async def requeued_pending_keys(self) -> set[queries.RecordKey]:
        """Requeued records not yet dialled in their new round: those a poll may
        refresh with ``refresh_record`` (their source row may have been fixed)."""
        return await queries.requeued_pending_keys(self.engine)

    async def latest_attempts(
        self, keys: Iterable[queries.RecordKey]
    ) -> list[queries.StoredAttempt]:
        """The current attempt of records left ``dialing``/``in_call``."""
        return await queries.latest_attempts(self.engine, keys)

    async def recent_dial_starts(self, since: float) -> list[float]:
        """Dial start times at or after ``since`` (to seed the rate window on restart)."""
        return await queries.recent_dial_starts(self.engine, since)

    async def report_rows(self, *, status: str | None = None) -> list[dict[str, Any]]:
        """One dict per record in source row order: ``REPORT_COLUMNS`` plus ``lead``
        (the lead's own columns from the stored metadata)."""
        return await reports.report_rows(self.engine, status=status)

    async def reason_counts(self) -> dict[str, int]:
        """Records by last reason (one GROUP BY; cheaper than :meth:`report_rows`)."""
        return await queries.reason_counts(self.engine)

    async def attempt_report_rows(self) -> list[dict[str, Any]]:
        """One dict per attempt (``ATTEMPT_REPORT_COLUMNS``), in source row order."""
        return await reports.attempt_report_rows(self.engine)

    async def requeue(
        self, selection: RequeueFilter, *, now: float, user: str, pid: int, dry_run: bool = False
    ) -> RequeueResult:
        """Put the terminal records ``selection`` matches back to ``pending`` (audited).

        The caller must hold the :class:`~dispatch.store.RunLock` (see
        :mod:`dispatch.store.requeue` for what is reset and what is kept).
        """
        if self.read_only:
            raise StoreError("requeue needs a writable store")
        return await requeue(self.engine, selection, now=now, user=user, pid=pid,
                             dry_run=dry_run)

    async def counts(self) -> dict[str, int]:
        """Records by status."""
        return await queries.counts(self.engine)

    async def attempts(
        self, *, record_id: str | None = None, source: str | None = None
    ) -> list[queries.StoredAttempt]:
        """Attempt rows, oldest claim first (of ``record_id`` in every source, unless
        ``source`` is given)."""
        return await queries.attempt_rows(self.engine, record_id=record_id, source=source)

    async def runs(self) -> list[dict[str, Any]]:
        """Run rows, oldest first."""
        return await queries.run_rows(self.engine)


@contextlib.asynccontextmanager
async def open_store(
    db: str | os.PathLike[str], *, migrate: bool = True, read_only: bool = False,
    lock_wait_s: float = 0.0,
) -> AsyncIterator[Store]:
    """``async with open_store(path) as store:`` -- :meth:`Store.open` then :meth:`Store.close`.

    Reports should pass ``read_only=True`` (no migration, ``PRAGMA query_only``),
    which is safe while a campaign runs (WAL readers never block the writer).
    """
    store = await Store.open(db, migrate=migrate, read_only=read_only, lock_wait_s=lock_wait_s)
    try:
        yield store
    finally:
        await store.close()
