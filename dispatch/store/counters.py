"""Counts by status from ``record_counts`` (migration 0008), when it can be trusted.

The table is kept by triggers on ``records`` (SQLite): reading it costs the same
whatever the number of finished records, where a ``GROUP BY`` over ``records``
grows with them. It is trusted only while all three triggers exist (a later
rebuild of ``records`` would drop them silently); otherwise, and on other
databases, the caller counts the rows.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["TRIGGERS", "counted_by_status"]

#: the triggers of migration 0008 that keep ``record_counts`` exact
TRIGGERS = ("record_counts_insert", "record_counts_update", "record_counts_delete")

_TRIGGERS_PRESENT = text(
    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'records'"
    f" AND name IN ({', '.join(repr(name) for name in TRIGGERS)})"
)
_BY_STATUS = text(
    "SELECT status, sum(n) FROM record_counts GROUP BY status HAVING sum(n) > 0"
)


async def counted_by_status(conn: AsyncConnection) -> dict[str, int] | None:
    """Records by status from the counters, or ``None`` when they are not kept here."""
    if conn.dialect.name != "sqlite":
        return None
    present = (await conn.execute(_TRIGGERS_PRESENT)).scalar()
    if present != len(TRIGGERS):
        return None
    return {str(status): int(n) for status, n in (await conn.execute(_BY_STATUS)).all()}
