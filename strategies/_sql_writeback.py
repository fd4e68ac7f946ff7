"""Outcome write-back: ``UPDATE <table> SET <configured columns> WHERE id = :id``, batched.

:meth:`SqlWriteBack.put` is what ``record_outcome`` calls: it only appends to a
bounded in-memory outbox (keyed by record id, so a newer outcome replaces an
older one not yet written) and wakes the writer. :meth:`SqlWriteBack.run` is the
writer task (started by ``SqlStrategy.__aenter__``): it writes up to
``batch_size`` outcomes per transaction (one ``executemany``), at most every
``flush_interval_s``. A failed write keeps its outcomes in the outbox and is
retried with exponential backoff (``retry_initial_s`` doubling to
``retry_max_s``); each failure is logged (without the URL's password) and
counted in :attr:`failures`. The outcome itself is never lost: it is in the
hub's store whatever happens here.

When the outbox is full, :meth:`put` waits for room: that holds up only the
hub's callback task (which runs ``record_outcome``), never a dial.

Only the configured columns are written, and only for rows matched by id.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import anyio
import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.clock import Clock
from dispatch.log import get_logger
from dispatch.strategies._sql_config import WriteBackColumns, safe_url, scrub, split_table
from dispatch.strategy import Outcome

__all__ = ["SqlWriteBack", "WriteBackStatistics"]

log = get_logger("dispatch.strategies.sql")


@dataclasses.dataclass(frozen=True, slots=True)
class WriteBackStatistics:
    """Outcomes waiting, written, failed writes, rows not found (when the driver counts)."""

    pending: int
    written: int
    failures: int
    not_found: int
    last_error: str | None


class SqlWriteBack:
    """The outbox and its writer (see the module docstring)."""

    def __init__(self, engine: AsyncEngine, url: URL, config: WriteBackColumns, *,
                 table: str, id_column: str, clock: Clock, max_pending: int = 10_000,
                 batch_size: int = 500, flush_interval_s: float = 0.2,
                 retry_initial_s: float = 0.5, retry_max_s: float = 30.0) -> None:
        if max_pending < 1 or batch_size < 1:
            raise ValueError("max_pending and batch_size must be >= 1")
        self._engine = engine
        self._url = url
        self.config = config
        self.table_name = table
        self._id_column = id_column
        self._clock = clock
        self._max_pending = max_pending
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._outbox: dict[str, dict[str, Any]] = {}
        self._wake = anyio.Event()
        self._room = anyio.Event()
        self._lock = anyio.Lock()
        self._table: sa.Table | None = None
        self._id_is_int = False
        self.written = 0
        self.not_found = 0
        self.failures = 0
        self.last_error: str | None = None
        self._retry_at = 0.0
        self._delay_s = retry_initial_s

    @property
    def pending(self) -> int:
        return len(self._outbox)

    def statistics(self) -> WriteBackStatistics:
        return WriteBackStatistics(self.pending, self.written, self.failures, self.not_found,
                                   self.last_error)

    async def put(self, outcome: Outcome, *, writer_running: bool = True) -> None:
        """Queue ``outcome``; while the outbox is full, wait for the writer (or, when no
        writer task runs, write one batch here and queue it anyway)."""
        rid = outcome.record.id
        full = rid not in self._outbox and len(self._outbox) >= self._max_pending
        if full and not writer_running:
            await self.write_once()
        while writer_running and rid not in self._outbox and (
                len(self._outbox) >= self._max_pending):
            if self._room.is_set():
                self._room = anyio.Event()
            self._wake.set()
            await self._room.wait()
        self._outbox[rid] = self._values(outcome)
        self._wake.set()

    def _values(self, outcome: Outcome) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "status": outcome.status,
            "reason": outcome.reason.value,
            "attempts": outcome.attempts,
            "call_id": outcome.call_id,
            "disposition": outcome.disposition,
            "updated_at": dt.datetime.fromtimestamp(self._clock.now(), dt.UTC),
        }
        return {column: fields[field] for field, column in self.config.columns.items()}

    async def run(self) -> None:
        """Write batches until cancelled (:meth:`flush` writes what is left)."""
        while True:
            await self._batch_ready()
            await self.write_once()

    async def _batch_ready(self) -> None:
        while not self._outbox:
            await self._wake.wait()
            self._wake = anyio.Event()
        delay_s = self._retry_at - anyio.current_time()
        if delay_s > 0:  # backing off after a failure
            await anyio.sleep(delay_s)
            return
        with anyio.move_on_after(self._flush_interval_s):
            while len(self._outbox) < self._batch_size:  # a full batch goes at once
                await self._wake.wait()
                self._wake = anyio.Event()

    async def write_once(self) -> bool:
        """Write one batch now; on failure schedule the next try. True when written."""
        async with self._lock:
            ids = list(self._outbox)[: self._batch_size]
            if not ids:
                return True
            batch = {rid: self._outbox[rid] for rid in ids}
            try:
                await self._write(batch)
            except (sa.exc.SQLAlchemyError, OSError, ValueError) as exc:
                self._failed(exc, len(batch))
                return False
            for rid in ids:
                if self._outbox.get(rid) is batch[rid]:  # not replaced meanwhile
                    del self._outbox[rid]
            self.written += len(batch)
            self._delay_s = self._retry_initial_s
            self._retry_at = 0.0
            self._room.set()
            return True

    async def flush(self, timeout_s: float) -> None:
        """Write everything queued, retrying for up to ``timeout_s``; log what is left."""
        with anyio.move_on_after(timeout_s):
            while self._outbox:
                if not await self.write_once():
                    await anyio.sleep(max(0.0, self._retry_at - anyio.current_time()))
        if self._outbox:
            log.error("sql write-back gave up at close; the outcomes stay in the dispatch "
                      "store", url=safe_url(self._url), table=self.table_name,
                      unwritten=len(self._outbox), error=self.last_error)

    def _failed(self, exc: BaseException, size: int) -> None:
        self.failures += 1
        self.last_error = scrub(f"{type(exc).__name__}: {_first_line(exc)}", self._url)
        self._retry_at = anyio.current_time() + self._delay_s
        log.warning("sql write-back failed; will retry", url=safe_url(self._url),
                    table=self.table_name, outcomes=size, retry_in_s=round(self._delay_s, 2),
                    failures=self.failures, error=self.last_error)
        self._delay_s = min(self._delay_s * 2, self._retry_max_s)

    async def _write(self, batch: dict[str, dict[str, Any]]) -> None:
        async with self._engine.begin() as conn:
            table = self._table if self._table is not None else await conn.run_sync(
                self._reflect)
            ident = table.c[self._id_column]
            stmt = (sa.update(table).where(ident == sa.bindparam("_rid"))
                    .values({c: sa.bindparam(c) for c in self.config.columns.values()}))
            params = [{"_rid": self._id_value(rid), **self._adapt(table, values)}
                      for rid, values in batch.items() if self._matchable(rid)]
            if params:
                result = await conn.execute(stmt, params)
                matched = result.rowcount
                if conn.dialect.supports_sane_multi_rowcount and 0 <= matched < len(params):
                    self.not_found += len(params) - matched
                    log.warning("sql write-back: rows not found by id (deleted meanwhile?)",
                                table=self.table_name, rows=len(params) - matched)

    def _reflect(self, sync_conn: sa.Connection) -> sa.Table:
        schema, name = split_table(self.table_name)
        wanted = [self._id_column, *self.config.columns.values()]
        live = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=sync_conn)
        missing = [c for c in wanted if c not in live.c]
        if missing:
            raise ValueError(f"write-back table {self.table_name!r} has no column "
                             f"{missing[0]!r}")
        self._id_is_int = isinstance(live.c[self._id_column].type, sa.Integer)
        # only the columns we write: nothing else can ever appear in our statements
        self._table = sa.Table(name, sa.MetaData(),
                               *(sa.Column(c, live.c[c].type) for c in dict.fromkeys(wanted)),
                               schema=schema)
        return self._table

    @staticmethod
    def _adapt(table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
        """Times as the column wants them: naive UTC unless it keeps a time zone; text."""
        out = dict(values)
        for column, value in values.items():
            if not isinstance(value, dt.datetime):
                continue
            kind = table.c[column].type
            if isinstance(kind, sa.DateTime):
                out[column] = value if kind.timezone else value.replace(tzinfo=None)
            elif isinstance(kind, sa.String):
                out[column] = value.isoformat()
        return out

    def _matchable(self, rid: str) -> bool:
        if not self._id_is_int or rid.lstrip("-").isdigit():
            return True
        log.warning("sql write-back skipped: the id cannot match the integer id column",
                    table=self.table_name, record_id=rid[:80])
        return False

    def _id_value(self, rid: str) -> Any:
        return int(rid) if self._id_is_int else rid


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else ""
