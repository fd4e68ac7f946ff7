"""The intake's reads of the store: idempotency answers, backlog, accepted records.

Writes go through the store's group-commit writer (:mod:`dispatch.webhooks.ops`);
these are plain indexed reads, each translated to :class:`StoreError`.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.store import StoreError
from dispatch.store.models import RecordRow
from dispatch.store.webhook_tables import IdempotencyRow, IntakeRow

__all__ = ["lookup_answer", "pending_count", "prune_answers", "read_intake"]

_intake = cast(Table, IntakeRow.__table__)
_keys = cast(Table, IdempotencyRow.__table__)
_records = cast(Table, RecordRow.__table__)


async def lookup_answer(engine: AsyncEngine, source: str, key: str
                        ) -> tuple[int, dict[str, Any]] | None:
    """The first answer given to ``key`` of ``source``, if any."""
    query = select(_keys.c.status_code, _keys.c.body).where(
        (_keys.c.source == source) & (_keys.c.key == key))
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(query)).first()
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot read idempotency keys: {exc}") from exc
    return None if row is None else (int(row[0]), dict(row[1]))


async def pending_count(engine: AsyncEngine, source: str) -> int:
    """Records of ``source`` waiting to be dialled: accepted but not yet stored by the
    hub, plus stored ``pending``/``scheduled`` ones."""
    inbox = select(func.count()).select_from(_intake).where(_intake.c.source == source)
    queued = select(func.count()).select_from(_records).where(
        (_records.c.source == source) & _records.c.status.in_(("pending", "scheduled")))
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(inbox)).scalar() or 0
            second = (await conn.execute(queued)).scalar() or 0
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot count the intake backlog: {exc}") from exc
    return int(first) + int(second)


async def read_intake(engine: AsyncEngine, source: str, *, after_seq: int, limit: int
                      ) -> list[tuple[int, dict[str, Any]]]:
    """Accepted records of ``source`` after ``after_seq``, oldest first."""
    query = (select(_intake.c.seq, _intake.c.record)
             .where((_intake.c.source == source) & (_intake.c.seq > after_seq))
             .order_by(_intake.c.seq).limit(limit))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot read the webhook intake: {exc}") from exc
    return [(int(seq), dict(record)) for seq, record in rows]


async def prune_answers(engine: AsyncEngine, source: str, *, before: float) -> int:
    """Forget idempotency answers of ``source`` given before ``before``."""
    query = delete(_keys).where((_keys.c.source == source) & (_keys.c.created_at < before))
    try:
        async with engine.begin() as conn:
            result = await conn.execute(query)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot prune idempotency keys: {exc}") from exc
    return int(result.rowcount or 0)
