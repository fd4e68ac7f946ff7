"""The checks ``SqlStrategy.preflight`` makes before anyone is dialled.

Raised with one line naming the (password-less) URL and the option at fault:

* :class:`~dispatch.errors.SourceUnusable` -- the database cannot be reached, the
  table does not exist, the query fails, or the id / phone / cursor column (or
  another mapped column) is missing;
* :class:`~dispatch.errors.PreflightError` -- the greeting names a column the
  source lacks (``--greeting``); the write-back table or one of its columns does
  not exist (``--sql-writeback``); most sampled phones lack a country code and no
  default region is set (``--region``).

Rows that can never be read because their cursor or id is NULL are counted and
logged as a warning (they are not an error: the rest of the table is fine).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatch.errors import PreflightError, SourceUnusable
from dispatch.log import get_logger
from dispatch.phone import check_region_sample
from dispatch.strategies._csv_mapping import greeting_problem
from dispatch.strategies._sql_config import (
    SqlMapping,
    WriteBackColumns,
    safe_url,
    scrub,
    split_table,
)
from dispatch.strategies._sql_reader import source_selectable

__all__ = ["SAMPLE_ROWS", "SqlChecks", "run_checks"]

log = get_logger("dispatch.strategies.sql")

SAMPLE_ROWS = 200

_DB_ERRORS = (sa.exc.SQLAlchemyError, OSError, TimeoutError)


@dataclasses.dataclass(frozen=True, slots=True)
class SqlChecks:
    url: URL
    key: str
    table: str | None
    query: str | None
    mapping: SqlMapping
    write_back: WriteBackColumns | None
    default_region: str | None
    connect_timeout_s: float = 15.0


def _why(exc: BaseException, url: URL) -> str:
    text = str(getattr(exc, "orig", None) or exc) or type(exc).__name__
    return scrub(text.splitlines()[0], url)


async def run_checks(engine: AsyncEngine, checks: SqlChecks) -> None:
    """Run every check (see the module docstring); raises on the first refusal."""
    where = safe_url(checks.url)
    conn = engine.connect()
    try:
        with anyio.fail_after(checks.connect_timeout_s):
            await conn.start()
    except _DB_ERRORS as exc:
        raise SourceUnusable(f"cannot connect to {where}: {_why(exc, checks.url)}",
                             source=checks.key, option="--sql") from None
    try:
        columns = await _source_columns(conn, checks, where)
        _check_mapping(checks, columns, where)
        if checks.write_back is not None:
            await _check_write_back(conn, checks, where)
        await _sample(conn, checks, where)
    finally:
        with anyio.CancelScope(shield=True):
            await conn.close()


async def _source_columns(conn: AsyncConnection, checks: SqlChecks, where: str) -> list[str]:
    if checks.table is not None:
        columns = await _table_columns(conn, checks.table)
        if columns is None:
            raise SourceUnusable(f"{where}: table {checks.table!r} does not exist",
                                 source=checks.key, option="--table")
        return columns
    assert checks.query is not None
    text = checks.query.strip().rstrip(";")
    stmt: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(
        sa.text(text).columns().subquery("src")).limit(0)
    try:
        result = await conn.execute(stmt)
        keys = list(result.keys())
        result.close()
    except _DB_ERRORS as exc:
        await conn.rollback()
        raise SourceUnusable(f"{where}: --sql-query cannot be run: {_why(exc, checks.url)}",
                             source=checks.key, option="--sql-query") from None
    return keys


async def _table_columns(conn: AsyncConnection, table: str) -> list[str] | None:
    schema, name = split_table(table)

    def inspect(sync_conn: sa.Connection) -> list[str] | None:
        inspector = sa.inspect(sync_conn)
        if not inspector.has_table(name, schema=schema):
            return None
        return [str(c["name"]) for c in inspector.get_columns(name, schema=schema)]

    return await conn.run_sync(inspect)


_OPTIONS = {"id_column": "--sql-id-column", "phone_column": "--sql-phone-column",
            "cursor_column": "--sql-cursor"}


def _check_mapping(checks: SqlChecks, columns: list[str], where: str) -> None:
    mapping = checks.mapping
    source = f"{where} ({checks.table or 'query'})"
    listed = ", ".join(columns) or "(none)"
    for name in mapping.required():
        if name not in columns:
            field = next((f.name for f in dataclasses.fields(mapping)
                          if getattr(mapping, f.name) == name), "metadata_columns")
            raise SourceUnusable(f"{source} has no column {name!r} (the {field}); its columns "
                                 f"are: {listed}", source=checks.key,
                                 option=_OPTIONS.get(field, "--table"))
    if mapping.greeting:
        problem = greeting_problem(mapping.greeting, columns, source)
        if problem:
            raise PreflightError(problem, option="--greeting")


async def _check_write_back(conn: AsyncConnection, checks: SqlChecks, where: str) -> None:
    assert checks.write_back is not None
    table = checks.write_back.table or checks.table
    if table is None:
        raise PreflightError("write-back needs a table: pass --table (the table to update "
                             "by id) together with --sql-query", option="--sql-writeback")
    columns = await _table_columns(conn, table)
    if columns is None:
        raise PreflightError(f"{where}: write-back table {table!r} does not exist",
                             option="--sql-writeback")
    wanted = [checks.mapping.id_column, *checks.write_back.columns.values()]
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise PreflightError(f"{where}: write-back table {table!r} has no column "
                             f"{missing[0]!r}; create it or map the outcome to an existing "
                             f"column (its columns are: {', '.join(columns)})",
                             option="--sql-writeback")


async def _sample(conn: AsyncConnection, checks: SqlChecks, where: str) -> None:
    mapping = checks.mapping
    src = source_selectable(checks.table, checks.query, mapping)
    cursor, ident = src.c[mapping.cursor], src.c[mapping.id_column]
    phone: sa.ColumnClause[Any] = sa.literal_column(_quoted(conn, mapping.phone_column))
    try:
        rows = (await conn.execute(sa.select(phone).select_from(src).limit(SAMPLE_ROWS))).all()
        unread = (await conn.execute(sa.select(sa.func.count()).select_from(src).where(
            sa.or_(cursor.is_(None), ident.is_(None))))).scalar_one()
    except _DB_ERRORS as exc:
        raise SourceUnusable(f"{where}: cannot read the source: {_why(exc, checks.url)}",
                             source=checks.key) from None
    if unread:
        log.warning("sql rows with a NULL cursor or id are never read", url=where,
                    rows=int(unread), cursor=mapping.cursor, id=mapping.id_column)
    if not checks.default_region:
        check_region_sample([str(r[0]) for r in rows if r[0] not in (None, "")], where)


def _quoted(conn: AsyncConnection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))

