"""Counts by status: finished records from ``record_counts`` (migration 0008), the
others from the status index -- when the counters can be trusted.

The table is kept by triggers on ``records`` (SQLite) for the terminal statuses:
reading it costs the same whatever the number of finished records, where a
``GROUP BY`` over ``records`` grows with them. The records still in play are
counted with a range of the ``(status, next_attempt_at)`` index (they are few). The
table is trusted only while all three triggers exist (a later rebuild of
``records`` would drop them silently); otherwise, and on other databases, the
caller counts the rows.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatch.store.models import ACTIVE_STATUSES

__all__ = ["TRIGGERS", "counted_by_status"]

#: the triggers of migration 0008 that keep ``record_counts`` exact
TRIGGERS = ("record_counts_insert", "record_counts_update", "record_counts_delete")

_TRIGGERS_PRESENT = text(
    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'records'"
    f" AND name IN ({', '.join(repr(name) for name in TRIGGERS)})"
)
_FINISHED = text(
    "SELECT status, sum(n) FROM record_counts GROUP BY status HAVING sum(n) > 0"
)
_IN_PLAY = text(
    "SELECT status, count(*) FROM records"
    f" WHERE status IN ({', '.join(repr(s) for s in sorted(ACTIVE_STATUSES))})"
    " GROUP BY status"
)


async def counted_by_status(conn: AsyncConnection) -> dict[str, int] | None:
    """Records by status from the counters, or ``None`` when they are not kept here."""
    if conn.dialect.name != "sqlite":
        return None
    present = (await conn.execute(_TRIGGERS_PRESENT)).scalar()
    if present != len(TRIGGERS):
        return None
    counted: dict[str, int] = {}
    for query in (_FINISHED, _IN_PLAY):
        counted.update((str(status), int(n)) for status, n in (await conn.execute(query)).all())
    return counted
