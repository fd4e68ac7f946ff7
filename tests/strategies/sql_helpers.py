"""Real databases for the SqlStrategy tests: SQLite files, PostgreSQL and MariaDB.

Each test gets its own schema (PostgreSQL) or database (MariaDB), named with a
random suffix and dropped afterwards; a server that does not answer skips the
test with the reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
MARIA_ADMIN = "mysql+asyncmy://root@127.0.0.1:3306/test"
BACKENDS = ("sqlite", "postgresql", "mariadb")
T0 = dt.datetime(2026, 1, 5, 9, 0, 0)
LEAD_COLUMNS = ("id", "phone", "name", "service", "tz", "not_before", "updated_at", "status",
                "reason", "attempts", "call_id", "outcome_at")


@dataclasses.dataclass
class Db:
    """One test database: the URL a strategy uses, the qualified table name, an engine."""

    kind: str
    url: str
    schema: str | None
    engine: AsyncEngine

    def name(self, table: str) -> str:
        return f"{self.schema}.{table}" if self.schema else table

    def leads_table(self, name: str = "leads", *, id_type: Any = None) -> sa.Table:
        return sa.Table(
            name, sa.MetaData(),
            sa.Column("id", id_type or sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("phone", sa.String(40)),
            sa.Column("name", sa.String(100)),
            sa.Column("service", sa.String(100)),
            sa.Column("tz", sa.String(64)),
            sa.Column("not_before", sa.DateTime),
            sa.Column("updated_at", sa.DateTime),
            sa.Column("status", sa.String(40)),
            sa.Column("reason", sa.String(40)),
            sa.Column("attempts", sa.Integer),
            sa.Column("call_id", sa.String(100)),
            sa.Column("outcome_at", sa.DateTime),
            schema=self.schema,
        )

    async def create(self, table: sa.Table, rows: Sequence[dict[str, Any]] = ()) -> sa.Table:
        async with self.engine.begin() as conn:
            await conn.run_sync(table.metadata.create_all)
            if rows:
                await conn.execute(sa.insert(table), list(rows))
        return table

    async def insert(self, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(table), list(rows))

    async def execute(self, stmt: Any, params: Any = None) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(stmt, params)

    async def rows(self, table: sa.Table) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            result = await conn.execute(sa.select(table).order_by(table.c.id))
            return [dict(r) for r in result.mappings()]


def lead(i: int, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(LEAD_COLUMNS)
    row.update({"id": i, "phone": f"+1415555{3000 + i:04d}", "name": f"Person {i}",
                "service": "Eye Exam", "updated_at": T0})
    row.update(extra)
    return row


async def _reachable(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return None
    except (OSError, sa.exc.SQLAlchemyError) as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    finally:
        await engine.dispose()


async def open_db(kind: str, tmp_path: Path) -> AsyncIterator[Db]:
    """Yield a fresh :class:`Db` of ``kind``; drop it afterwards."""
    suffix = uuid.uuid4().hex[:10]
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'source.db'}"
        engine = create_async_engine(url)
        try:
            yield Db(kind, url, None, engine)
        finally:
            await engine.dispose()
        return
    admin_url = PG_ADMIN if kind == "postgresql" else MARIA_ADMIN
    why = await _reachable(admin_url)
    if why is not None:
        pytest.skip(f"no {kind} server answers at {admin_url} ({why})")
    name = f"dsql_{suffix}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        if kind == "postgresql":
            async with admin.connect() as conn:
                await conn.execute(sa.text(f"CREATE SCHEMA {name}"))
            url, schema = PG_ADMIN, name
        else:
            async with admin.connect() as conn:
                await conn.execute(sa.text(f"CREATE DATABASE {name}"))
            url, schema = f"mysql+asyncmy://root@127.0.0.1:3306/{name}", None
        engine = create_async_engine(url)
        try:
            yield Db(kind, url, schema, engine)
        finally:
            await engine.dispose()
    finally:
        async with admin.connect() as conn:
            drop = (f"DROP SCHEMA IF EXISTS {name} CASCADE" if kind == "postgresql"
                    else f"DROP DATABASE IF EXISTS {name}")
            await conn.execute(sa.text(drop))
        await admin.dispose()
