"""``CsvStrategy``: leads from a CSV file that may grow or change while the hub runs.

Port of the JS ``CsvStrategy`` with the production gaps closed::

    csv = CsvStrategy("leads.csv", greeting="Hi {name}, ...", write_back="status")
    csv = CsvStrategy("leads.csv", map_row=lambda row: Record(id=..., phone=row["phone"]))

Pipeline per poll: flush queued outcomes -> ``stat`` the file -> parse what is new
(:mod:`strategies._csv_source`, in a worker thread) -> filter blank and
already-processed rows and hash row keys, vectorised in polars -> build at most
``batch_size`` :class:`~dispatch.records.Record` objects (worker thread);
:attr:`has_more` stays true while rows are waiting.

Rows whose status column is non-empty are never handed out; ids never depend
on the status/write-back column, so writing outcomes back cannot cause a
re-dial. A row that cannot be mapped becomes a Record with
``metadata["_invalid"] = "row N: why"``, which the hub skips (``invalid_record``).
``map_row`` runs in a worker thread, one row at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import polars as pl

from dispatch.clock import Clock, SystemClock
from dispatch.log import get_logger
from dispatch.records import Record
from dispatch.strategy import Outcome, Strategy
from strategies._csv_index import ROW, EmittedIndex, row_keys
from strategies._csv_mapping import (
    INVALID_KEY,
    DefaultMapper,
    MappingError,
    Row,
    RowMapper,
    call_row_mapper,
    content_id,
    find_phone_column,
)
from strategies._csv_source import CsvSource, SourceError
from strategies._csv_writeback import ResultsFile, StatusWriteBack, WriteBackError

__all__ = ["CsvStatistics", "CsvStrategy"]

log = get_logger("dispatch.strategies.csv")


@dataclasses.dataclass(frozen=True, slots=True)
class CsvStatistics:
    """A snapshot of a :class:`CsvStrategy` (progress display, tests)."""

    state: str
    polls: int
    full_reads: int
    incremental_reads: int
    bytes_parsed: int
    rows_pending: int
    records_emitted: int
    outcomes_queued: int


class CsvStrategy(Strategy):
    """Records from a CSV file, hot-reloaded at every poll (see the module docstring).

    ``file``: the CSV path (it may not exist yet). ``map_row(row) -> Record | dict |
    None``: custom mapping (``row`` maps column -> value, ``None`` for empty or
    missing fields); ``None`` from it skips the row. Without ``map_row`` the default
    mapping of :mod:`strategies._csv_mapping` applies (``greeting``, ``phone_column``,
    ``id_column``, ``not_before_column``, ``default_region``).

    ``status_column``: rows with a non-empty value there are skipped (only those
    whose lower-cased value is in ``skip_statuses`` when given); ``None`` disables.
    ``write_back``: column to write each outcome word into (the disposition, else
    the reason). ``results_file``: CSV to append outcome rows to.
    ``delimiter``: forced delimiter (else detected from the header: ``, ; tab |``).
    ``encoding``: any ASCII-compatible codec (``"latin-1"``...). ``batch_size``:
    most records per poll. ``settle_s``: an unterminated last line is taken once
    the file has not changed for this long.
    """

    name = "csv"

    def __init__(
        self,
        file: str | os.PathLike[str],
        map_row: RowMapper | None = None,
        *,
        greeting: str | None = None,
        phone_column: str | None = None,
        id_column: str = "id",
        not_before_column: str = "not_before",
        default_region: str | None = None,
        status_column: str | None = "status",
        skip_statuses: Iterable[str] | None = None,
        write_back: str | None = None,
        results_file: str | os.PathLike[str] | None = None,
        delimiter: str | None = None,
        encoding: str = "utf-8",
        batch_size: int = 5000,
        settle_s: float = 2.0,
        clock: Clock | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        "x".encode(encoding)  # LookupError for an unknown codec, at construction
        self.path = Path(file)
        self.key = f"csv:{self.path.resolve()}"  # the source's identity (Strategy.key)
        self._clock = clock or SystemClock()
        self._map_row = map_row
        self._skip_columns = tuple(c for c in (status_column, write_back) if c)
        self._skip_values = None if skip_statuses is None else [s.lower() for s in skip_statuses]
        self._mapper = DefaultMapper(
            greeting=greeting,
            phone_column=phone_column,
            id_column=id_column,
            not_before_column=not_before_column,
            default_region=default_region,
            exclude=self._skip_columns,
        )
        self._phone_wanted = phone_column
        self._batch_size = batch_size
        self._source = CsvSource(
            self.path, encoding=encoding, delimiter=delimiter, settle_s=settle_s, clock=self._clock
        )
        self._status_writer = (
            StatusWriteBack(self.path, write_back, encoding=encoding, delimiter=delimiter)
            if write_back
            else None
        )
        self._results = ResultsFile(Path(results_file)) if results_file else None
        self._index = EmittedIndex()
        self._identity: tuple[str, ...] = ()
        self._pending = pl.DataFrame()
        self._bind_error: MappingError | None = None
        self._status_outbox: dict[str, str] = {}
        self._results_outbox: list[dict[str, str]] = []
        self._state = "new"
        self._polls = 0
        self._lock = anyio.Lock()

    # -- Strategy interface -------------------------------------------------------

    async def poll(self) -> list[Record]:
        """Flush queued outcomes, pick up file changes, return the next batch of records.

        Never raises for file problems: a missing, unreadable or malformed file, or
        one without a phone column, is logged once per state change.
        """
        async with self._lock:
            self._polls += 1
            await self._flush_outcomes()
            await self._refresh()
            if self._pending.height == 0:
                return []
            return await anyio.to_thread.run_sync(self._next_batch)

    @property
    def has_more(self) -> bool:
        return self._pending.height > 0

    async def record_outcome(self, outcome: Outcome) -> None:
        """Queue the outcome for write-back; it is written at the next poll or at close."""
        word = outcome.disposition or outcome.reason.value
        if self._status_writer is not None:
            self._status_outbox[outcome.record.id] = word
        if self._results is not None:
            self._results_outbox.append(_result_row(outcome, word, self._clock.now()))

    async def aclose(self) -> None:
        """Flush queued write-backs (failures are logged)."""
        async with self._lock:
            await self._flush_outcomes()

    def statistics(self) -> CsvStatistics:
        stats = self._source.stats
        return CsvStatistics(
            state=self._state,
            polls=self._polls,
            full_reads=stats.full_reads,
            incremental_reads=stats.incremental_reads,
            bytes_parsed=stats.bytes_parsed,
            rows_pending=self._pending.height,
            records_emitted=len(self._index),
            outcomes_queued=len(self._status_outbox) + len(self._results_outbox),
        )

    # -- reading and indexing -----------------------------------------------------

    async def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._pending = pl.DataFrame()
            self._source.forget()
            self._set_state("missing", "csv file not found; waiting for it")
            return
        except OSError as exc:
            self._set_state("unreadable", "csv file cannot be read", error=repr(exc))
            return
        if not self._source.needs_read(st):
            return
        try:
            await anyio.to_thread.run_sync(self._read_and_index)
        except OSError as exc:
            self._set_state("unreadable", "csv file cannot be read", error=repr(exc))
        except SourceError as exc:
            self._set_state("malformed", "csv file cannot be parsed", error=str(exc))
        except MappingError as exc:
            self._set_state("bad_columns", "csv columns cannot be mapped", error=str(exc))
        else:
            if self._source.stalled:
                self._set_state(
                    "malformed", "csv file cannot be parsed", error=self._source.stalled
                )
            elif self._source.fmt is None:
                self._set_state("no_header", "csv file has no header line yet")
            else:
                self._set_state("ok", None)

    def _read_and_index(self) -> None:
        chunk = self._source.read()
        if chunk is None:
            return
        if chunk.replaced:
            self._pending = pl.DataFrame()
            self._bind(chunk.frame.columns)
        if self._bind_error is not None:
            raise self._bind_error
        rows = self._prepare(chunk.frame, chunk.first_row)
        self._pending = pl.concat([self._pending, rows]) if self._pending.width else rows

    def _bind(self, columns: list[str]) -> None:
        self._bind_error = None
        self._identity = tuple(sorted(c for c in columns if c not in self._skip_columns))
        try:
            warnings = self._mapper.bind(columns) if self._map_row is None else []
        except MappingError as exc:
            self._bind_error = exc
            raise
        for warning in warnings:
            log.warning("csv greeting template problem", path=str(self.path), problem=warning)

    def _prepare(self, frame: pl.DataFrame, first_row: int) -> pl.DataFrame:
        """Number rows and drop blank, processed and already handled ones (vectorised)."""
        columns = frame.columns
        if not columns:
            return frame
        keep = pl.any_horizontal([pl.col(c).is_not_null() for c in columns])
        for col in self._skip_columns:
            if col in columns:
                keep = keep & self._unprocessed(col)
        frame = frame.with_row_index(ROW, offset=first_row + 1)
        mask = frame.select(keep.alias("__keep")).to_series()
        if not mask.all():  # filtering copies every column: skip it when nothing drops
            frame = frame.filter(mask)
        # row keys are computed per batch in _next_batch (only for rows handed out),
        # which keeps the hash off the load path of a large file
        return self._index.drop_done(frame)

    def _unprocessed(self, column: str) -> pl.Expr:
        value = pl.col(column).str.strip_chars()
        if self._skip_values is None:
            return value.is_null() | (value == "")
        return value.is_null() | ~value.str.to_lowercase().is_in(self._skip_values)

    # -- building records ---------------------------------------------------------

    def _next_batch(self) -> list[Record]:
        batch = self._pending.head(self._batch_size)
        self._pending = self._pending.slice(self._batch_size)
        keys = row_keys(batch, self._identity)
        records: list[Record] = []
        for raw, key in zip(batch.iter_rows(named=True), keys, strict=True):
            row_no = raw.pop(ROW)
            row: Row = {k: (v if v else None) for k, v in raw.items()}
            record = self._map(row_no, row)
            if record is None or self._index.knows(record.id):
                continue
            self._index.add_id(self._identity, record.id, key)
            records.append(record)
        self._index.add_done(self._identity, keys)
        return records

    def _map(self, row_no: int, row: Row) -> Record | None:
        if self._map_row is None:
            return self._mapper(row_no, row)
        try:
            return call_row_mapper(self._map_row, row)
        except Exception as exc:
            problem = f"row {row_no}: map_row raised {exc!r}"
            log.error("csv row rejected", path=str(self.path), problem=problem)
            phone = find_phone_column(row, self._phone_wanted)
            return Record(
                id=content_id(row, self._skip_columns),
                phone=(row.get(phone) if phone else None) or "",
                metadata={INVALID_KEY: problem},
            )

    # -- outcomes -------------------------------------------------------------------

    async def _flush_outcomes(self) -> None:
        if self._results is not None and self._results_outbox:
            rows, self._results_outbox = self._results_outbox, []
            try:
                await anyio.to_thread.run_sync(self._results.append, rows)
            except OSError as exc:
                self._results_outbox = rows + self._results_outbox
                log.warning(
                    "csv results file not written", path=str(self._results.path), error=repr(exc)
                )
        if self._status_writer is not None and self._status_outbox:
            await self._flush_status(self._status_writer)

    async def _flush_status(self, writer: StatusWriteBack) -> None:
        outbox, self._status_outbox = self._status_outbox, {}
        known = self._index.keys_of(list(outbox))
        updates = {
            cols: {key: outbox[rid] for rid, key in ids.items()} for cols, ids in known.items()
        }
        try:
            result = await anyio.to_thread.run_sync(writer.flush, updates)
        except (OSError, WriteBackError, pl.exceptions.PolarsError) as exc:
            self._status_outbox = {**outbox, **self._status_outbox}
            log.warning("csv status write-back postponed", path=str(self.path), error=repr(exc))
            return
        lost = [
            rid
            for cols, ids in known.items()
            for rid, key in ids.items()
            if key not in result.matched.get(cols, set())
        ]
        if lost:
            log.warning("csv rows for outcomes not found", path=str(self.path), ids=lost[:20])

    def _set_state(self, state: str, event: str | None, **fields: Any) -> None:
        if state == self._state:
            return
        self._state = state
        if event is None:
            log.info("csv file ready", path=str(self.path), rows_pending=self._pending.height)
        elif state == "bad_columns":
            log.error(event, path=str(self.path), **fields)
        else:
            log.warning(event, path=str(self.path), **fields)


def _result_row(outcome: Outcome, word: str, now_s: float) -> dict[str, str]:
    return {
        "id": outcome.record.id,
        "phone": outcome.record.phone,
        "status": word,
        "reason": outcome.reason.value,
        "attempts": str(outcome.attempts),
        "call_id": outcome.call_id or "",
        "disposition": outcome.disposition or "",
        "at": dt.datetime.fromtimestamp(now_s, dt.UTC).isoformat(),
    }
