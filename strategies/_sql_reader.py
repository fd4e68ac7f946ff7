"""Incremental, keyset-paged reads of a table or of a user's SELECT.

Each page is one short read (``SELECT ... WHERE <after the cursor> ORDER BY
cursor, id LIMIT n`` on a connection that is given back at once): no row is
locked (no ``FOR UPDATE``; PostgreSQL and InnoDB plain reads take no row locks),
so the application that owns the table is never held up.

The cursor is the pair *(cursor column, id)* of the last row read. With an
``updated_at`` cursor, rows sharing one timestamp are ordered by id, so a page
that ends in the middle of such a group resumes after the last id read and
never skips the rest; a row that the application changes later gets a newer
``updated_at`` and is read again by the next poll. Rows whose cursor or id is
NULL cannot be ordered and are not read (``preflight`` counts and reports them).

A user query is wrapped as a subquery (``SELECT * FROM (<query>) AS src WHERE
...``), so it may join and filter freely but must return the id and cursor
columns.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.strategies._sql_config import SqlMapping, split_table

__all__ = ["Page", "PageReader", "source_selectable"]


def source_selectable(
    table: str | None, query: str | None, mapping: SqlMapping
) -> sa.FromClause:
    """The table (with the columns we order by) or the query as a subquery ``src``."""
    keys = [mapping.cursor] + ([mapping.id_column] if mapping.cursor != mapping.id_column
                               else [])
    if query is not None:
        text = query.strip().rstrip(";")
        return sa.text(text).columns(*(sa.column(k) for k in keys)).subquery("src")
    assert table is not None
    schema, name = split_table(table)
    return sa.table(name, *(sa.column(k) for k in keys), schema=schema)


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """Rows read by one call, and whether the page was full (more may follow)."""

    rows: list[Mapping[str, Any]]
    full: bool
    elapsed_s: float


class PageReader:
    """Reads pages after a moving ``(cursor, id)`` position; see the module docstring."""

    def __init__(self, engine: AsyncEngine, mapping: SqlMapping, *, table: str | None,
                 query: str | None, page_size: int) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        self._engine = engine
        self._mapping = mapping
        self._src = source_selectable(table, query, mapping)
        self.page_size = page_size
        self.position: tuple[Any, Any] | None = None
        self.rows_read = 0
        self.pages_read = 0

    def statement(self, position: tuple[Any, Any] | None, limit: int) -> sa.Select[Any]:
        """The SELECT for the page after ``position`` (``None``: from the start)."""
        cursor = self._src.c[self._mapping.cursor]
        ident = self._src.c[self._mapping.id_column]
        stmt: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(self._src)
        same = cursor is ident
        if position is None:
            stmt = stmt.where(cursor.is_not(None))
        elif same:
            stmt = stmt.where(cursor > position[0])
        else:
            value, last_id = position
            # index-friendly on every engine: a range on the cursor, then the tie-breaker
            stmt = stmt.where(cursor >= value, sa.or_(cursor > value, ident > last_id))
        if not same:
            stmt = stmt.where(ident.is_not(None)).order_by(cursor, ident)
        else:
            stmt = stmt.order_by(cursor)
        return stmt.limit(limit)

    async def read_page(self) -> Page:
        """The next page; advances the position past it. Raises SQLAlchemy errors."""
        stmt = self.statement(self.position, self.page_size)
        started = time.perf_counter()
        async with self._engine.connect() as conn:
            result = await conn.execute(stmt)
            rows: list[Mapping[str, Any]] = [dict(r) for r in result.mappings().all()]
        self.pages_read += 1
        if rows:
            last = rows[-1]
            self.position = (last[self._mapping.cursor], last[self._mapping.id_column])
            self.rows_read += len(rows)
        return Page(rows, full=len(rows) >= self.page_size,
                    elapsed_s=time.perf_counter() - started)
