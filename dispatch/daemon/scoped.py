"""One database, several campaigns: a :class:`~dispatch.store.Store` seen by one hub.

A daemon opens the store once, runs its group-commit writer and holds the run lock;
each campaign's hub gets a :class:`CampaignStore`, a view sharing the engine and the
writer whose start-up reads (active records, counts) cover that campaign's records
only (``records.campaign_id``). ``shared_by_daemon`` tells the hub not to start the
writer, not to take the run lock and not to adopt other campaigns' records.

The rate window a hub seeds at start-up still counts every campaign's dials of the
last minute (conservative: a restart can only be slower, never burst).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.exc import SQLAlchemyError

from dispatch.store import Store, StoreError
from dispatch.store.models import ACTIVE_STATUSES, RecordRow
from dispatch.store.queries import RecordKey, StoredRecord

__all__ = ["CampaignStore"]

_records: Table = RecordRow.__table__  # type: ignore[assignment]


class CampaignStore(Store):
    """A view of ``base`` for the hub of ``campaign`` (never closed by that hub)."""

    shared_by_daemon = True

    def __init__(self, base: Store, campaign: str) -> None:  # no super(): a view, not a store
        self.engine = base.engine
        self.url = base.url
        self.read_only = base.read_only
        self._writer = base.writer
        self.campaign = campaign

    async def close(self) -> None:
        """A view owns nothing: the daemon closes the base store."""

    async def _active_keys(self) -> set[RecordKey]:
        query = select(_records.c.source, _records.c.id).where(
            (_records.c.campaign_id == self.campaign)
            & _records.c.status.in_(sorted(ACTIVE_STATUSES)))
        return {(row[0], row[1]) for row in await self._rows(query)}

    async def _rows(self, query: Any) -> list[Any]:
        try:
            async with self.engine.connect() as conn:
                return list(await conn.execute(query))
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot read campaign {self.campaign!r}: {exc}") from exc

    async def load_active(self) -> list[StoredRecord]:
        keys = await self._active_keys()
        return [row for row in await super().load_active() if (row.source, row.id) in keys]

    async def uncounted_attempts(self) -> dict[RecordKey, int]:
        keys = await self._active_keys()
        return {k: n for k, n in (await super().uncounted_attempts()).items() if k in keys}

    async def requeued_pending_keys(self) -> set[RecordKey]:
        return await super().requeued_pending_keys() & await self._active_keys()

    async def counts(self) -> dict[str, int]:
        return await self._count_by(_records.c.status)

    async def reason_counts(self) -> dict[str, int]:
        return await self._count_by(_records.c.last_reason)

    async def _count_by(self, column: Any) -> dict[str, int]:
        query = (select(column, func.count())
                 .where((_records.c.campaign_id == self.campaign) & column.is_not(None))
                 .group_by(column))
        return {row[0]: int(row[1]) for row in await self._rows(query)}
