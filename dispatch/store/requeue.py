"""Putting finished records back to ``pending``: :func:`requeue`.

An operator recovers from a campaign-wide mistake (a typo in the greeting, a
missing ``--region``) without losing duplicate-call protection: the records keep
their ids (still known to the hub), their attempts stay in ``attempts`` and only
terminal records (``completed``, ``failed``, ``skipped``) are touched -- never one
that is ``dialing``/``in_call``. A requeued record starts a new *round*:
``requeue_count`` + 1, ``attempts`` back to 0 (so the retry budget and the lifetime
cap apply afresh), last reason, error, disposition and next attempt time cleared
(``last_call_id`` stays: it names the newest call, as the report's ``last_*`` columns).
Every requeue is audited: one ``requeues`` row (time, ``user@host``, pid, filter,
count) and one ``requeue_items`` row per record with the state it had before.
The caller holds the run lock (no campaign may run meanwhile).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, insert, select, true, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatch.store.errors import StoreError
from dispatch.store.models import (
    TERMINAL_STATUSES,
    RecordRow,
    RequeueItemRow,
    RequeueRow,
)

__all__ = ["RequeueFilter", "RequeueResult", "requeue"]

_records = cast(Table, RecordRow.__table__)
_requeues = cast(Table, RequeueRow.__table__)
_items = cast(Table, RequeueItemRow.__table__)

#: how many ids :class:`RequeueResult` lists
SAMPLE_IDS = 10


@dataclasses.dataclass(frozen=True, slots=True)
class RequeueFilter:
    """Which terminal records to requeue: every given kind must match (AND), any
    value within a kind may (OR). ``everything`` selects every terminal record.
    ``ids`` match record ids in every source unless ``sources`` (strategy keys, as in
    the report's ``source`` column) narrows them."""

    statuses: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    everything: bool = False
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        bad = sorted(set(self.statuses) - TERMINAL_STATUSES)
        if bad:
            allowed = ", ".join(sorted(TERMINAL_STATUSES))
            raise ValueError(f"status {bad[0]!r} cannot be requeued (only {allowed})")
        if self.everything == bool(self.statuses or self.reasons or self.ids or self.sources):
            raise ValueError("give at least one filter (status, reason, id, source), "
                             "or 'all' alone")

    def as_dict(self) -> dict[str, Any]:
        """The filter as stored in the audit row."""
        if self.everything:
            return {"all": True}
        return {"status": list(self.statuses), "reason": list(self.reasons), "id": list(self.ids),
                "source": list(self.sources)}

    def condition(self) -> ColumnElement[bool]:
        parts: list[ColumnElement[bool]] = [_records.c.status.in_(sorted(TERMINAL_STATUSES))]
        if self.statuses:
            parts.append(_records.c.status.in_(self.statuses))
        if self.reasons:
            parts.append(_records.c.last_reason.in_(self.reasons))
        if self.ids:
            parts.append(_records.c.id.in_(self.ids))
        if self.sources:
            parts.append(_records.c.source.in_(self.sources))
        return and_(true(), *parts)


@dataclasses.dataclass(frozen=True, slots=True)
class RequeueResult:
    """What a requeue changed (or, with ``dry_run``, would change)."""

    count: int
    by_status_reason: dict[tuple[str, str | None], int]
    first_ids: list[str]
    dry_run: bool
    requeue_id: int | None  # the audit row; None for a dry run or nothing matched


async def requeue(
    engine: AsyncEngine, selection: RequeueFilter, *, now: float, user: str, pid: int,
    dry_run: bool = False,
) -> RequeueResult:
    """Requeue the terminal records ``selection`` matches, in one transaction."""
    try:
        async with engine.begin() as conn:
            rows = await _matching(conn, selection)
            requeue_id = None
            if rows and not dry_run:
                requeue_id = await _apply(conn, selection, rows, now=now, user=user, pid=pid)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"requeue failed: {exc}") from exc
    by = Counter((str(r["status"]), r["last_reason"]) for r in rows)
    return RequeueResult(
        count=len(rows), by_status_reason=dict(by),
        first_ids=[str(r["id"]) for r in rows[:SAMPLE_IDS]], dry_run=dry_run,
        requeue_id=requeue_id,
    )


async def _matching(conn: AsyncConnection, selection: RequeueFilter) -> list[Any]:
    cols = (_records.c.pk, _records.c.source, _records.c.id, _records.c.status,
            _records.c.last_reason, _records.c.attempts, _records.c.error)
    query = select(*cols).where(selection.condition()).order_by(_records.c.seq, _records.c.pk)
    return list((await conn.execute(query)).mappings().all())


async def _apply(
    conn: AsyncConnection, selection: RequeueFilter, rows: list[Any], *, now: float,
    user: str, pid: int,
) -> int:
    result = await conn.execute(
        insert(_requeues).values(at=now, user=user, pid=pid, filter=selection.as_dict(),
                                 count=len(rows))
    )
    key = result.inserted_primary_key
    if key is None:
        raise StoreError("requeue failed: no audit id returned")
    requeue_id = int(key[0])
    await conn.execute(insert(_items), [
        {"requeue_id": requeue_id, "record_pk": r["pk"], "prev_status": r["status"],
         "prev_reason": r["last_reason"], "prev_attempts": r["attempts"], "prev_error": r["error"]}
        for r in rows
    ])
    # the same condition, in the same transaction: exactly the rows read above
    await conn.execute(
        update(_records)
        .where(selection.condition())
        .values(status="pending", attempts=0, last_reason=None, next_attempt_at=None,
                disposition=None, error=None, updated_at=now,
                requeued_at=now, requeue_count=_records.c.requeue_count + 1)
    )
    return requeue_id
