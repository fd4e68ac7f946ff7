"""``SqlStrategy``: leads from a database table or a SELECT, read incrementally.

::

    sql = SqlStrategy("postgresql+asyncpg://app@db/crm", table="appointments",
                      phone_column="mobile", greeting="Hi {name}, about {service}",
                      cursor_column="updated_at",
                      write_back={"status": "call_status", "reason": "call_reason",
                                  "updated_at": "call_updated_at"})
    async with sql:                      # runs the write-back task
        await DispatchHub(agent, [sql], ...).run()

Any SQLAlchemy async URL works (``postgresql+asyncpg``, ``mysql+asyncmy``,
``sqlite+aiosqlite``). Each poll reads one page of at most ``page_size`` rows
after the cursor (:mod:`strategies._sql_reader`): a large table is read once,
page by page (:attr:`has_more` stays true while pages are full), and later polls
only read rows that are new or changed since. Rows become records with
:mod:`strategies._sql_rows` (bad rows are skipped records naming the field);
rows whose ``skip_column`` is non-empty are not handed out.

Outcomes are written back (optional) by a background task started by ``async
with`` (:mod:`strategies._sql_writeback`): ``record_outcome`` only enqueues.
Without ``async with`` the outbox is written at each poll and at
:meth:`aclose`. The URL's password never appears in :attr:`key`, logs or errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from dispatch.clock import Clock, SystemClock
from dispatch.log import get_logger
from dispatch.records import Record
from dispatch.strategies._sql_config import (
    SqlMapping,
    WriteBackColumns,
    parse_url,
    safe_url,
    scrub,
    source_key,
)
from dispatch.strategies._sql_preflight import SqlChecks, run_checks
from dispatch.strategies._sql_reader import PageReader
from dispatch.strategies._sql_rows import BAD_ID_PREFIX, RowMapper
from dispatch.strategies._sql_writeback import SqlWriteBack, WriteBackStatistics
from dispatch.strategy import Outcome, Strategy

__all__ = ["SqlSourceError", "SqlStatistics", "SqlStrategy"]

log = get_logger("dispatch.strategies.sql")


class SqlSourceError(RuntimeError):
    """A poll could not read the database (message without the password)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SqlStatistics:
    """A snapshot of a :class:`SqlStrategy` (progress display, tests, benchmarks)."""

    polls: int
    pages_read: int
    rows_read: int
    records_emitted: int
    rows_skipped_by_status: int
    #: seconds spent in page queries and in building Records (in a worker thread)
    read_s: float
    map_s: float
    write_back: WriteBackStatistics | None


class SqlStrategy(Strategy):
    """Records from a SQL table or query (see the module docstring).

    Exactly one of ``table`` (``"leads"`` or ``"schema.leads"``) and ``query`` (a
    SELECT returning the mapped columns). Columns: ``id_column``, ``phone_column``,
    ``greeting`` (a ``{column}`` template), ``metadata_columns`` (default: every
    other column), ``not_before_column``, ``timezone_column``, ``cursor_column``
    (default: the id column; use an ``updated_at`` the application bumps so changed
    rows are read again). ``cursor_overlap``: once caught up, each poll re-reads the
    rows whose cursor is within this distance of the newest one read (seconds for a
    time, units for a number) and hands out those not seen with that value: a row
    whose transaction committed late, with a cursor value older than rows already
    read, is then not missed. ``write_back``: outcome field -> column (fields ``status,
    reason, attempts, call_id, disposition, updated_at``), written to
    ``writeback_table`` (default ``table``) by id. ``skip_column``: rows with a
    value there are not handed out (default: the write-back ``status`` column).
    ``engine``: an existing :class:`AsyncEngine` to use instead of creating one
    (it is then not disposed by :meth:`aclose`).
    """

    name = "sql"

    def __init__(
        self,
        url: str | URL,
        *,
        table: str | None = None,
        query: str | None = None,
        id_column: str = "id",
        phone_column: str = "phone",
        greeting: str | None = None,
        metadata_columns: Sequence[str] | None = None,
        not_before_column: str | None = None,
        timezone_column: str | None = None,
        cursor_column: str | None = None,
        skip_column: str | None = None,
        write_back: Mapping[str, str] | str | None = None,
        writeback_table: str | None = None,
        default_region: str | None = None,
        page_size: int = 1000,
        cursor_overlap: float | None = None,
        flush_timeout_s: float = 10.0,
        writeback_retry_initial_s: float = 0.5,
        writeback_retry_max_s: float = 30.0,
        writeback_max_pending: int = 10_000,
        engine: AsyncEngine | None = None,
        clock: Clock | None = None,
    ) -> None:
        if (table is None) == (query is None):
            raise ValueError("SqlStrategy needs exactly one of table= and query=")
        self.url = parse_url(url)
        self.table, self.query = table, query
        wb = _write_back_columns(write_back, writeback_table)
        self.mapping = SqlMapping(
            id_column=id_column, phone_column=phone_column, greeting=greeting,
            metadata_columns=metadata_columns, not_before_column=not_before_column,
            timezone_column=timezone_column, cursor_column=cursor_column,
            skip_column=skip_column or (wb.columns.get("status") if wb else None),
            skip_optional=skip_column is None,
            exclude_columns=tuple(wb.columns.values()) if wb and wb.table in (None, table)
            else (),
        )
        self.key = source_key(self.url, table, query)
        self._clock = clock or SystemClock()
        self._owns_engine = engine is None
        self._engine = engine or self._create_engine()
        self._reader = PageReader(self._engine, self.mapping, table=table, query=query,
                                  page_size=page_size, overlap=cursor_overlap)
        self._rows = RowMapper(self.mapping, default_region=default_region)
        self._checks = SqlChecks(self.url, self.key, table, query, self.mapping, wb,
                                 default_region)
        wb_table = (wb.table or table) if wb else None  # None: preflight refuses it
        self._writeback = SqlWriteBack(
            self._engine, self.url, wb, table=wb_table, id_column=id_column, clock=self._clock,
            retry_initial_s=writeback_retry_initial_s, retry_max_s=writeback_retry_max_s,
            max_pending=writeback_max_pending,
        ) if wb is not None and wb_table is not None else None
        self._init_counters()
        self._flush_timeout_s = flush_timeout_s

    def _init_counters(self) -> None:
        self._more = False
        self._polls = 0
        self._emitted = 0
        self._skipped_by_status = 0
        self._read_s = 0.0
        self._map_s = 0.0
        self._bad_ids: set[str] = set()
        self._lock = anyio.Lock()
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    def _create_engine(self) -> AsyncEngine:
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.url.get_backend_name() != "sqlite":
            options.update(pool_size=2, max_overflow=2)
        try:
            return create_async_engine(self.url, **options)
        except (ImportError, sa.exc.SQLAlchemyError) as exc:
            raise ValueError(f"cannot use {safe_url(self.url)}: {scrub(str(exc), self.url)} "
                             "(is its async driver installed?)") from None

    # -- lifetime ---------------------------------------------------------------------

    async def __aenter__(self) -> SqlStrategy:
        if self._writeback is not None:
            self._tg = anyio.create_task_group()
            await self._tg.__aenter__()
            self._tg.start_soon(self._writeback.run, name="sql write-back")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        try:
            await self.aclose()
        finally:
            if self._tg is not None:
                self._tg.cancel_scope.cancel()
                tg, self._tg = self._tg, None
                await tg.__aexit__(exc_type, exc, tb)
        return None

    async def aclose(self) -> None:
        """Write the queued outcomes (retrying up to ``flush_timeout_s``), release the engine."""
        with anyio.CancelScope(shield=True):
            if self._writeback is not None:
                await self._writeback.flush(self._flush_timeout_s)
            if self._owns_engine and not self._closed:
                self._closed = True
                await self._engine.dispose()

    # -- Strategy interface -----------------------------------------------------------

    async def preflight(self) -> None:
        """Refuse an unreachable database, a missing table or column, a bad greeting or
        write-back column, or phones without a country code (see
        :mod:`strategies._sql_preflight`)."""
        await run_checks(self._engine, self._checks)

    async def poll(self) -> list[Record]:
        """Read the next page after the cursor; raises :class:`SqlSourceError`."""
        async with self._lock:
            self._polls += 1
            if self._writeback is not None and self._tg is None and self._writeback.pending:
                await self._writeback.write_once()
            try:
                page = await self._reader.read_page()
            except (sa.exc.SQLAlchemyError, OSError, TimeoutError) as exc:
                self._more = False
                text = str(getattr(exc, "orig", None) or exc).splitlines()[0:1]
                raise SqlSourceError(
                    f"cannot read {safe_url(self.url)}: "
                    f"{scrub(text[0] if text else type(exc).__name__, self.url)}") from None
            self._more = page.full
            self._read_s += page.elapsed_s
            started = anyio.current_time()
            # pydantic validation and phone parsing cost ~0.1 ms a row: off the event loop
            records = await anyio.to_thread.run_sync(self._records, page.rows)
            self._map_s += anyio.current_time() - started
            return records

    def _records(self, rows: list[Mapping[str, Any]]) -> list[Record]:
        out: list[Record] = []
        skip = self.mapping.skip_column
        for row in rows:
            if skip and row.get(skip) not in (None, ""):
                self._skipped_by_status += 1
                continue
            record = self._rows(row)
            if record.invalid_detail is not None and record.id.startswith(BAD_ID_PREFIX):
                self._bad_ids.add(record.id)
            out.append(record)
        self._emitted += len(out)
        return out

    @property
    def has_more(self) -> bool:
        return self._more

    async def record_outcome(self, outcome: Outcome) -> None:
        """Queue the outcome for write-back (returns at once unless the outbox is full)."""
        if self._writeback is None or outcome.record.id in self._bad_ids:
            return
        await self._writeback.put(outcome, writer_running=self._tg is not None)

    def statistics(self) -> SqlStatistics:
        return SqlStatistics(
            polls=self._polls, pages_read=self._reader.pages_read,
            rows_read=self._reader.rows_read, records_emitted=self._emitted,
            rows_skipped_by_status=self._skipped_by_status,
            read_s=self._read_s, map_s=self._map_s,
            write_back=self._writeback.statistics() if self._writeback else None,
        )


def _write_back_columns(
    write_back: Mapping[str, str] | str | None, table: str | None
) -> WriteBackColumns | None:
    if write_back is None:
        return None
    if isinstance(write_back, str):
        return WriteBackColumns.parse(write_back, table)
    return WriteBackColumns(dict(write_back), table)
