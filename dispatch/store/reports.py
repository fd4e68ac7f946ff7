"""Report queries: one row per record, or per attempt, in source row order."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.store.models import AttemptRow, RecordRow
from dispatch.store.queries import all_rows

__all__ = [
    "ATTEMPT_REPORT_COLUMNS",
    "REPORT_COLUMNS",
    "attempt_report_rows",
    "lead_columns",
    "report_rows",
]

_records = cast(Table, RecordRow.__table__)
_attempts = cast(Table, AttemptRow.__table__)

#: the keys of every dict returned by :func:`report_rows`, in display order; the
#: ``last_*`` call columns come from the record's newest attempt
REPORT_COLUMNS = (
    "id",
    "phone",
    "source",
    "status",
    "attempts",
    "last_reason",
    "last_raw_reason",
    "last_call_id",
    "last_answered_at",
    "last_duration_s",
    "updated_at",
    "disposition",
    "next_attempt_at",
    "strategy",
    "campaign_id",
    "requeue_count",
    "error",
    # the record's last admission decision (allow / defer / skip)
    "decision",
    "decision_reason",
    "decision_until",
)
_RECORD_REPORT_COLUMNS = (
    "id",
    "source", "phone", "status", "attempts", "last_reason", "last_call_id", "updated_at",
    "disposition", "next_attempt_at", "strategy", "campaign_id", "requeue_count", "error",
    "decision", "decision_reason", "decision_until",
)
#: the keys of every dict returned by :func:`attempt_report_rows`
ATTEMPT_REPORT_COLUMNS = (
    "record_id",
    "source",
    "phone",
    "requeue_round",
    "attempt_no",
    "claimed_at",
    "dialed_at",
    "answered_at",
    "ended_at",
    "reason",
    "raw_reason",
    "duration_s",
    "call_id",
    "disposition",
    "error",
)



def lead_columns(payload: dict[str, Any] | None) -> dict[str, Any]:
    """The lead's own columns of a stored payload: its metadata minus internal
    keys (those starting with ``_``, e.g. ``_invalid``)."""
    metadata = (payload or {}).get("metadata") or {}
    if not isinstance(metadata, dict):
        return {}
    return {str(k): v for k, v in metadata.items() if not str(k).startswith("_")}


def _invalid_text(payload: dict[str, Any] | None) -> str | None:
    metadata = (payload or {}).get("metadata") or {}
    detail = metadata.get("_invalid") if isinstance(metadata, dict) else None
    return str(detail) if detail else None


async def report_rows(engine: AsyncEngine, *, status: str | None = None) -> list[dict[str, Any]]:
    """One dict per record, in insertion (source row) order: :data:`REPORT_COLUMNS`,
    plus ``lead`` (see :func:`lead_columns`). ``error`` falls back to the strategy's
    ``_invalid`` text."""
    newest = (
        select(_attempts.c.record_pk, func.max(_attempts.c.id).label("attempt_id"))
        .group_by(_attempts.c.record_pk)
        .subquery()
    )
    last = _attempts.alias("last")
    query = (
        select(
            *[_records.c[name] for name in _RECORD_REPORT_COLUMNS],
            _records.c.payload,
            last.c.raw_reason.label("last_raw_reason"),
            last.c.answered_at.label("last_answered_at"),
            last.c.duration_s.label("last_duration_s"),
        )
        .select_from(_records)
        .outerjoin(newest, newest.c.record_pk == _records.c.pk)
        .outerjoin(last, last.c.id == newest.c.attempt_id)
        .order_by(_records.c.seq, _records.c.pk)
    )
    if status is not None:
        query = query.where(_records.c.status == status)
    out: list[dict[str, Any]] = []
    for row in await all_rows(engine, query):
        payload = row["payload"]
        item = {name: row[name] for name in REPORT_COLUMNS}
        item["error"] = item["error"] or _invalid_text(payload)
        item["lead"] = lead_columns(payload)
        out.append(item)
    return out


async def attempt_report_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    """One dict per attempt (:data:`ATTEMPT_REPORT_COLUMNS`): records in source row
    order, then each record's attempts in the order they were claimed."""
    own = {"source": _records.c.source, "record_id": _records.c.id.label("record_id")}
    columns = [own[name] if name in own else _attempts.c[name]
               for name in ATTEMPT_REPORT_COLUMNS]
    query = (
        select(*columns)
        .join(_records, _records.c.pk == _attempts.c.record_pk)
        .order_by(_records.c.seq, _records.c.pk, _attempts.c.id)
    )
    return [dict(row) for row in await all_rows(engine, query)]
