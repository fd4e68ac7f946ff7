"""One migration at a time on a shared PostgreSQL database.

The SQLite run lock (an ``flock`` beside the file) does not exist for a server
database, and three dispatchers started together would all run alembic at once
(two then fail creating ``alembic_version``). :func:`pg_migration_lock` holds a
PostgreSQL advisory lock on a connection of its own while the block runs: the
first process migrates, the others wait, then find the schema at head.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["MIGRATION_LOCK_KEY", "pg_migration_lock"]

#: the advisory lock key ("dispatch" in ASCII, as a bigint)
MIGRATION_LOCK_KEY = 0x6469737061746368


@contextlib.asynccontextmanager
async def pg_migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the migration lock while the block runs (no-op unless PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        await conn.commit()
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            await conn.commit()
