"""Read queries: resuming a campaign, recovery after a crash, dedup lookups, counts
(the report rows are in :mod:`dispatch.store.reports`)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Collection, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.store.counters import counted_by_status
from dispatch.store.errors import StoreError
from dispatch.store.models import (
    ACTIVE_STATUSES,
    ATTEMPT_START,
    LIVE_STATUSES,
    AttemptRow,
    RecordRow,
    RunRow,
)

__all__ = [
    "LOOKUP_CHUNK",
    "RecordKey",
    "StoredAttempt",
    "StoredRecord",
    "attempt_rows",
    "counts",
    "existing_keys",
    "has_source",
    "latest_attempts",
    "load_active",
    "reason_counts",
    "recent_dial_starts",
    "requeued_pending_keys",
    "run_rows",
]

_records = cast(Table, RecordRow.__table__)
_attempts = cast(Table, AttemptRow.__table__)
_runs = cast(Table, RunRow.__table__)

#: a record's identity: ``(source, record id)``
RecordKey = tuple[str, str]
#: record ids per ``IN`` query of :func:`existing_keys` (well under SQLite's limit)
LOOKUP_CHUNK = 500

@dataclasses.dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record row as the hub needs it to resume."""

    source: str
    id: str
    phone: str
    strategy: str
    status: str
    attempts: int
    last_reason: str | None
    last_call_id: str | None
    next_attempt_at: float | None
    payload: dict[str, Any]
    disposition: str | None
    error: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class StoredAttempt:
    """An attempt row (all columns but the surrogate keys), with its record's identity."""

    source: str
    record_id: str
    attempt_no: int
    run_id: int | None
    phone: str
    call_id: str | None
    claimed_at: float
    dialed_at: float | None
    dialing_at: float | None
    answered_at: float | None
    ended_at: float | None
    reason: str | None
    raw_reason: str | None
    duration_s: float | None
    error: str | None
    tool_results: list[Any] | None
    disposition: str | None


async def all_rows(engine: AsyncEngine, query: Select[Any]) -> list[Any]:
    try:
        async with engine.connect() as conn:
            result = await conn.execute(query)
            return list(result.mappings().all())
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database read failed: {exc}") from exc


def _record_columns() -> list[Any]:
    names = [f.name for f in dataclasses.fields(StoredRecord)]
    return [_records.c[name] for name in names]


async def load_active(engine: AsyncEngine) -> list[StoredRecord]:
    """Records that still need work (pending, scheduled, dialing, in_call)."""
    query = select(*_record_columns()).where(_records.c.status.in_(sorted(ACTIVE_STATUSES)))
    return [StoredRecord(**row) for row in await all_rows(engine, query)]


async def existing_keys(
    engine: AsyncEngine, sources: Collection[str], ids: Iterable[str]
) -> set[RecordKey]:
    """Which of ``ids`` are stored under one of ``sources``: indexed lookups on the
    unique ``(source, id)`` key, :data:`LOOKUP_CHUNK` ids per query, so the cost is
    that of the ids asked about, not of the records stored."""
    wanted = sorted(set(ids))
    if not wanted or not sources:
        return set()
    kinds = sorted(sources)
    found: set[RecordKey] = set()
    try:
        async with engine.connect() as conn:
            for start in range(0, len(wanted), LOOKUP_CHUNK):
                chunk = wanted[start:start + LOOKUP_CHUNK]
                if conn.dialect.paramstyle == "qmark":  # SQLite: skip SQL compilation
                    rows: Sequence[Any] = (await conn.exec_driver_sql(
                        _lookup_sql(len(kinds), len(chunk)), (*kinds, *chunk))).all()
                else:
                    rows = (await conn.execute(select(_records.c.source, _records.c.id).where(
                        _records.c.source.in_(kinds) & _records.c.id.in_(chunk)))).all()
                found.update((str(row[0]), str(row[1])) for row in rows)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database read failed: {exc}") from exc
    return found


@functools.lru_cache(maxsize=16)
def _lookup_sql(sources: int, ids: int) -> str:
    return (f"SELECT source, id FROM records WHERE source IN ({', '.join('?' * sources)})"
            f" AND id IN ({', '.join('?' * ids)})")


async def has_source(engine: AsyncEngine, source: str) -> bool:
    """Whether any record is stored under ``source`` (one probe of the unique index)."""
    query = select(_records.c.pk).where(_records.c.source == source).limit(1)
    return bool(await all_rows(engine, query))


#: attempt rows that never count: campaign-wide errors, the platform's refusals
UNCOUNTED_RAW_REASONS = ("campaign_error", "platform_refusal")


async def uncounted_attempts(engine: AsyncEngine) -> dict[RecordKey, int]:
    """Per active record, its dials of the current round stopped by a campaign-wide
    error (``raw_reason = 'campaign_error'``): they never count toward retries."""
    query = (
        select(_records.c.source, _records.c.id, func.count().label("n"))
        .join(_attempts, _records.c.pk == _attempts.c.record_pk)
        .where(and_(_records.c.status.in_(sorted(ACTIVE_STATUSES)),
                    _attempts.c.raw_reason.in_(UNCOUNTED_RAW_REASONS),
                    _attempts.c.requeue_round == _records.c.requeue_count))
        .group_by(_records.c.source, _records.c.id)
    )
    return {(row["source"], row["id"]): int(row["n"]) for row in await all_rows(engine, query)}


async def requeued_pending_keys(engine: AsyncEngine) -> set[RecordKey]:
    """Requeued records not dialled yet in their new round (see ``refresh_record``)."""
    query = select(_records.c.source, _records.c.id).where(
        and_(_records.c.status == "pending", _records.c.attempts == 0,
             _records.c.requeue_count > 0)
    )
    return {(row["source"], row["id"]) for row in await all_rows(engine, query)}


def _attempt_columns() -> list[Any]:
    """The columns of :class:`StoredAttempt` (the record's identity from ``records``)."""
    names = [f.name for f in dataclasses.fields(StoredAttempt)]
    own = {"source": _records.c.source, "record_id": _records.c.id.label("record_id")}
    return [own[name] if name in own else _attempts.c[name] for name in names]


async def latest_attempts(
    engine: AsyncEngine, keys: Iterable[RecordKey]
) -> list[StoredAttempt]:
    """The newest attempt of each record left ``dialing``/``in_call`` among ``keys``."""
    wanted = set(keys)
    if not wanted:
        return []
    query = (
        select(*_attempt_columns())
        .join(_records, _records.c.pk == _attempts.c.record_pk)
        .where(
            and_(
                _records.c.status.in_(sorted(LIVE_STATUSES)),
                _attempts.c.attempt_no == _records.c.attempts,
                _attempts.c.requeue_round == _records.c.requeue_count,
            )
        )
    )
    # the live records are few (at most the concurrency of the crashed run)
    rows = [StoredAttempt(**row) for row in await all_rows(engine, query)]
    return [row for row in rows if (row.source, row.record_id) in wanted]


async def recent_dial_starts(engine: AsyncEngine, since: float) -> list[float]:
    """Start times of dials at or after ``since``, oldest first (any run).

    A dial's start is ``dialed_at``; a claim whose ``dialed_at`` was never written (the
    process died right after committing it) may have left too, so it counts at
    ``claimed_at``.
    """
    start = ATTEMPT_START  # indexed (ix_attempts_start): a range scan of the last minute
    query = select(start.label("start")).where(start >= since).order_by(start)
    return [float(row["start"]) for row in await all_rows(engine, query)]


async def counts(engine: AsyncEngine) -> dict[str, int]:
    """Number of records by status (statuses with no record are absent).

    From the counters the database keeps (:mod:`dispatch.store.counters`: flat in the
    number of records) where it keeps them, else one ``GROUP BY``."""
    try:
        async with engine.connect() as conn:
            counted = await counted_by_status(conn)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database read failed: {exc}") from exc
    if counted is not None:
        return counted
    return await _count_by(engine, _records.c.status)


async def reason_counts(engine: AsyncEngine) -> dict[str, int]:
    """Number of records by last reason (records without one are not counted)."""
    return await _count_by(engine, _records.c.last_reason)


async def _count_by(engine: AsyncEngine, column: Any) -> dict[str, int]:
    query = select(column, func.count()).where(column.is_not(None)).group_by(column)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(query)
            return {str(value): int(n) for value, n in result.all()}
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database read failed: {exc}") from exc


async def attempt_rows(
    engine: AsyncEngine, *, record_id: str | None = None, source: str | None = None
) -> list[StoredAttempt]:
    """Attempts, oldest claim first (optionally of records with ``record_id``, in every
    source unless ``source`` is given)."""
    query = (
        select(*_attempt_columns())
        .join(_records, _records.c.pk == _attempts.c.record_pk)
        .order_by(_attempts.c.claimed_at, _attempts.c.id)
    )
    if record_id is not None:
        query = query.where(_records.c.id == record_id)
    if source is not None:
        query = query.where(_records.c.source == source)
    return [StoredAttempt(**row) for row in await all_rows(engine, query)]


async def run_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every hub run, oldest first."""
    return [dict(row) for row in await all_rows(engine, select(_runs).order_by(_runs.c.id))]
