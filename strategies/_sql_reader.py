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

A cursor only moves forward, so a row that becomes visible *after* rows with a
larger cursor value were read (an ``updated_at`` stamped when a long transaction
began, committed later; a serial id taken by a transaction that commits after a
later one) would be missed. ``overlap`` (``SqlStrategy(cursor_overlap=...)``)
covers that: once caught up, the next poll starts again ``overlap`` before the
newest cursor value read (seconds for times, units for numbers) and only rows not
already read with the same cursor value are returned.

A user query is wrapped as a subquery (``SELECT * FROM (<query>) AS src WHERE
...``), so it may join and filter freely but must return the id and cursor
columns.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import math
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
                 query: str | None, page_size: int, overlap: float | None = None) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        if overlap is not None and not overlap > 0:
            raise ValueError("cursor_overlap must be > 0")
        self._engine = engine
        self._mapping = mapping
        self._src = source_selectable(table, query, mapping)
        self.page_size = page_size
        self.position: tuple[Any, Any] | None = None
        self.rows_read = 0
        self.pages_read = 0
        self._overlap = overlap
        self._newest: Any = None
        self._rewind = False
        self._seen: dict[Any, Any] = {}  # id -> cursor value, rows within the overlap

    def statement(self, position: tuple[Any, Any] | None, limit: int, *,
                  start_at: Any = None) -> sa.Select[Any]:
        """The SELECT for the page after ``position`` (``None``: from the start), or from
        ``start_at`` (inclusive) when given."""
        cursor = self._src.c[self._mapping.cursor]
        ident = self._src.c[self._mapping.id_column]
        stmt: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(self._src)
        same = cursor is ident
        if start_at is not None:
            stmt = stmt.where(cursor >= start_at)
        elif position is None:
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
        start_at = self._bound() if self._rewind else None
        stmt = self.statement(self.position, self.page_size, start_at=start_at)
        started = time.perf_counter()
        async with self._engine.connect() as conn:
            result = await conn.execute(stmt)
            rows: list[Mapping[str, Any]] = [dict(r) for r in result.mappings().all()]
        elapsed_s = time.perf_counter() - started
        self.pages_read += 1
        full = len(rows) >= self.page_size
        if rows:
            last = rows[-1]
            self.position = (last[self._mapping.cursor], last[self._mapping.id_column])
            self.rows_read += len(rows)
        if self._overlap is not None:
            rows = self._unseen(rows)
            self._rewind = not full  # caught up: the next poll re-reads the overlap
        return Page(rows, full=full, elapsed_s=elapsed_s)

    def _bound(self) -> Any:
        return None if self._newest is None else minus(self._newest, self._overlap or 0.0)

    def _unseen(self, rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Rows not already read with the same cursor value; remembers the new ones."""
        cursor, ident = self._mapping.cursor, self._mapping.id_column
        fresh = []
        for row in rows:
            key, value = row[ident], row[cursor]
            if key in self._seen and self._seen[key] == value:
                continue
            fresh.append(row)
            self._seen[key] = value
            try:
                if self._newest is None or value > self._newest:
                    self._newest = value
            except TypeError:
                continue
        bound = self._bound()
        if bound is not None:
            try:
                self._seen = {k: v for k, v in self._seen.items() if v >= bound}
            except TypeError:
                self._seen.clear()
        return fresh


def minus(value: Any, overlap: float) -> Any:
    """``value`` moved back by ``overlap`` (seconds for times, units for numbers), in the
    value's own type and text format; ``None`` when the type has no distance."""
    if isinstance(value, dt.datetime):
        return value - dt.timedelta(seconds=overlap)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value - math.ceil(overlap)
    if isinstance(value, float):
        return value - overlap
    if isinstance(value, decimal.Decimal):
        return value - decimal.Decimal(str(overlap))
    if isinstance(value, str) and len(value) >= 19:  # SQLite keeps times as ISO text
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        spec = "microseconds" if "." in value[19:] else "seconds"
        return (when - dt.timedelta(seconds=overlap)).isoformat(sep=value[10], timespec=spec)
    return None
