"""The group writer's fast path for a SQLite file: one thread hop per batch.

Through SQLAlchemy and aiosqlite, a batch costs a round trip between the event loop
and the driver's thread for every cursor, statement, commit and pool reset, plus
SQLAlchemy's per-row parameter processing -- most of the hub's CPU per dial and
the latency a claim waits before its dial may leave. Here the writer owns one
plain :mod:`sqlite3` connection and runs the whole batch (``BEGIN IMMEDIATE``,
one ``executemany`` per op kind, ``COMMIT``) in a single worker-thread call.

The SQL is not written twice: each op kind's statement is the one
:func:`dispatch.store.ops.build_statements` builds, compiled once for SQLite with
named parameters (the op's own param names), so both paths write the same rows;
JSON columns are serialised here with :func:`json.dumps`, as SQLAlchemy's ``JSON``
type does (``None`` becomes JSON ``null``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, cast

import anyio
import anyio.to_thread
from sqlalchemy import JSON, Executable, Table
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.compiler import Compiled
from sqlalchemy.sql.elements import ClauseElement

from dispatch.store.engine import BUSY_TIMEOUT_MS
from dispatch.store.errors import StoreError
from dispatch.store.ops import KIND_ORDER, OpKind, build_statements

__all__ = ["SqliteBatchWriter", "compile_named", "is_data_error"]

_NAMED = sqlite.dialect(paramstyle="named")

#: errors about the rows written (worth isolating), not about the database
_DATA_ERRORS = (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
                sqlite3.DataError, TypeError, ValueError, OverflowError)


def compile_named(statement: ClauseElement) -> str:
    """``statement`` as SQLite SQL with named parameters (``:name``)."""
    return str(statement.compile(dialect=_NAMED))


def is_data_error(exc: BaseException | None) -> bool:
    """Whether a fast-path failure is caused by the data (see ``caused_by_data``)."""
    return isinstance(exc, _DATA_ERRORS)


class _Compiled:
    """One op kind's statement as SQLite SQL for one set of param names."""

    __slots__ = ("json_names", "sql", "static")

    def __init__(self, statement: Executable, names: Sequence[str]) -> None:
        clause = cast(ClauseElement, statement)  # Insert/Update: compilable clauses
        compiled: Compiled = clause.compile(dialect=_NAMED, column_keys=list(names))
        self.sql = str(compiled)
        table = cast(Table, getattr(statement, "table"))  # noqa: B009 - Insert/Update
        json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
        self.json_names = tuple(n for n in names if n in json_columns)
        # literal values of the statement itself (e.g. ``status = 'pending'``)
        self.static = {k: v for k, v in compiled.params.items() if k not in names}

    def rows(self, params: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        if not self.json_names and not self.static:
            return list(params)
        out: list[Mapping[str, Any]] = []
        for row in params:
            fixed = {**self.static, **row}
            for name in self.json_names:
                fixed[name] = json.dumps(fixed[name])
            out.append(fixed)
        return out


class SqliteBatchWriter:
    """Runs grouped ops on a SQLite file in one worker-thread call per batch.

    Only the group writer uses it, one batch at a time (a capacity limiter of one
    serialises the thread calls, so the connection is never used concurrently).
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._statements = build_statements("sqlite")
        self._compiled: dict[tuple[OpKind, tuple[str, ...]], _Compiled] = {}
        self._conn: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)

    async def execute(self, grouped: Mapping[OpKind, Sequence[Mapping[str, Any]]]) -> None:
        """Execute ``grouped`` in one transaction (kinds in ``KIND_ORDER``).

        Raises :class:`StoreError` chained from the :mod:`sqlite3` (or serialisation)
        error; the transaction is rolled back then.
        """
        try:
            await anyio.to_thread.run_sync(self._execute, grouped, limiter=self._limiter)
        except (sqlite3.Error, *_DATA_ERRORS) as exc:
            raise StoreError(f"database write failed: {exc}") from exc

    async def fetch_one(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """One row of a read on this connection (one thread hop, serialised with the
        batches), as a column-name mapping; ``None`` when there is none."""
        try:
            return await anyio.to_thread.run_sync(self._fetch_one, sql, params,
                                                  limiter=self._limiter)
        except sqlite3.Error as exc:
            raise StoreError(f"database read failed: {exc}") from exc

    def _fetch_one(self, sql: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        cursor = self._connection().execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return {column[0]: value for column, value in zip(cursor.description, row,
                                                          strict=True)}

    async def aclose(self) -> None:
        """Close the connection (a later batch opens a new one)."""
        await anyio.to_thread.run_sync(self.close, limiter=self._limiter)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._conn = conn
        return self._conn

    def _statement(self, kind: OpKind, names: tuple[str, ...]) -> _Compiled:
        key = (kind, names)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = _Compiled(self._statements[kind], names)
        return found

    def _execute(self, grouped: Mapping[OpKind, Sequence[Mapping[str, Any]]]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for kind in KIND_ORDER:
                params = grouped.get(kind)
                if not params:
                    continue
                if kind is OpKind.INSERT_RECORD:
                    top = conn.execute("SELECT max(seq) FROM records").fetchone()[0]
                    base = int(top or 0) + 1
                    params = [{**row, "seq": base + i} for i, row in enumerate(params)]
                for names, run in _runs_of_same_names(params):
                    statement = self._statement(kind, names)
                    conn.executemany(statement.sql, statement.rows(run))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _runs_of_same_names(
    params: Sequence[Mapping[str, Any]],
) -> list[tuple[tuple[str, ...], Sequence[Mapping[str, Any]]]]:
    """``params`` cut into consecutive runs with the same param names (one
    ``executemany`` each; the ops of one kind normally all share them)."""
    runs: list[tuple[tuple[str, ...], Sequence[Mapping[str, Any]]]] = []
    start = 0
    names = tuple(params[0])
    for i in range(1, len(params)):
        other = tuple(params[i])
        if other != names:
            runs.append((names, params[start:i]))
            start, names = i, other
    runs.append((names, params[start:]))
    return runs
