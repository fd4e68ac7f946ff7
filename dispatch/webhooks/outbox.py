"""Reads and updates of the result-webhook outbox (``webhook_outbox``).

Deliveries update their own row directly (one small transaction each, outside the
hub's group writer: they are few, and must not wait behind a dial batch).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.store import StoreError
from dispatch.store.webhook_tables import OUTBOX_STATES, EndpointRow, OutboxRow

__all__ = ["Due", "disable_endpoint", "disabled_urls", "due_rows", "outbox_counts",
           "status_line", "update_row"]

_outbox = cast(Table, OutboxRow.__table__)
_endpoints = cast(Table, EndpointRow.__table__)


@dataclasses.dataclass(frozen=True, slots=True)
class Due:
    """A pending delivery whose time has come."""

    id: str
    url: str
    body: str
    attempts: int
    created_at: float


def _fail(what: str, exc: Exception) -> StoreError:
    return StoreError(f"webhook outbox: cannot {what}: {exc}")


async def due_rows(engine: AsyncEngine, *, now: float, limit: int,
                   exclude: Collection[str] = ()) -> list[Due]:
    """Pending rows due at ``now``, oldest first (``exclude``: being delivered)."""
    query = (select(_outbox.c.id, _outbox.c.url, _outbox.c.body, _outbox.c.attempts,
                    _outbox.c.created_at)
             .where((_outbox.c.status == "pending") & (_outbox.c.next_attempt_at <= now))
             .order_by(_outbox.c.next_attempt_at).limit(limit + len(exclude)))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    except (SQLAlchemyError, OSError) as exc:
        raise _fail("read due deliveries", exc) from exc
    due = [Due(str(r[0]), str(r[1]), str(r[2]), int(r[3]), float(r[4])) for r in rows
           if r[0] not in exclude]
    return due[:limit]


async def next_due_at(engine: AsyncEngine) -> float | None:
    """When the next pending delivery is due."""
    query = select(func.min(_outbox.c.next_attempt_at)).where(_outbox.c.status == "pending")
    try:
        async with engine.connect() as conn:
            value = (await conn.execute(query)).scalar()
    except (SQLAlchemyError, OSError) as exc:
        raise _fail("read the next delivery time", exc) from exc
    return None if value is None else float(value)


async def update_row(engine: AsyncEngine, row_id: str, **values: Any) -> None:
    """Overwrite columns of one outbox row."""
    try:
        async with engine.begin() as conn:
            await conn.execute(update(_outbox).where(_outbox.c.id == row_id).values(**values))
    except (SQLAlchemyError, OSError) as exc:
        raise _fail("update a delivery", exc) from exc


async def disable_endpoint(engine: AsyncEngine, url: str, *, now: float, reason: str) -> int:
    """Mark ``url`` disabled and its pending rows ``disabled``; return how many rows."""
    try:
        async with engine.begin() as conn:
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(_endpoints).values(url=url, disabled_at=now,
                                                                 reason=reason))
            except IntegrityError:
                pass  # already disabled
            result = await conn.execute(
                update(_outbox).where((_outbox.c.url == url) & (_outbox.c.status == "pending"))
                .values(status="disabled", last_error=reason))
    except (SQLAlchemyError, OSError) as exc:
        raise _fail("disable an endpoint", exc) from exc
    return int(result.rowcount or 0)


async def disabled_urls(engine: AsyncEngine) -> set[str]:
    """Endpoints disabled by a ``410`` (in this run or an earlier one)."""
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(_endpoints.c.url))).all()
    except (SQLAlchemyError, OSError) as exc:
        raise _fail("read disabled endpoints", exc) from exc
    return {str(r[0]) for r in rows}


async def outbox_counts(engine: AsyncEngine) -> dict[str, int]:
    """Outbox rows by state (every state present, zeros included)."""
    query = select(_outbox.c.status, func.count()).group_by(_outbox.c.status)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    except (SQLAlchemyError, OSError) as exc:
        raise _fail("count deliveries", exc) from exc
    counts = dict.fromkeys(OUTBOX_STATES, 0)
    counts.update({str(status): int(n) for status, n in rows})
    return counts


async def status_line(engine: AsyncEngine) -> str | None:
    """``result webhooks: 2 pending, 40 delivered, 0 failed, 1 disabled`` (``dispatch
    status``), or ``None`` when the outbox is empty."""
    counts = await outbox_counts(engine)
    if not any(counts.values()):
        return None
    return "result webhooks: " + ", ".join(f"{n} {state}" for state, n in counts.items())
