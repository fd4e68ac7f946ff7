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
re-dial. Nothing is dropped silently: a row that cannot be read becomes a
skipped record (``invalid_row`` / ``invalid_encoding``, id ``line:<N>:<hash>``), a
second row reusing an id with different content one with ``duplicate_id_conflict``
(id ``<id>~line<N>``), and a row that cannot be mapped one with ``invalid_record``
(see :mod:`strategies._csv_batch`); each carries ``metadata["_invalid"] = "line N:
why"``. Blank and whitespace-only rows are not records. ``map_row`` runs in a
worker thread, one row at a time.

:meth:`CsvStrategy.preflight` refuses an unusable file or a campaign-wide
mistake before anyone is dialled (:mod:`strategies._csv_preflight`).
"""

from __future__ import annotations

import dataclasses
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
from dispatch.strategies._csv_batch import BatchBuilder, bad_row_record
from dispatch.strategies._csv_index import ROW, EmittedIndex
from dispatch.strategies._csv_mapping import (
    INVALID_KEY,
    DefaultMapper,
    MappingError,
    Row,
    RowMapper,
    call_row_mapper,
    content_id,
    find_phone_column,
)
from dispatch.strategies._csv_outcomes import OutcomeWriter
from dispatch.strategies._csv_preflight import CsvChecks, run_checks
from dispatch.strategies._csv_rows import BadRow
from dispatch.strategies._csv_source import CsvSource, SourceError
from dispatch.strategies._csv_writeback import ResultsFile, StatusWriteBack
from dispatch.strategy import Outcome, Strategy

__all__ = ["CsvStatistics", "CsvStrategy"]

log = get_logger("dispatch.strategies.csv")

_BAD_ROWS_LOGGED = 20  # unreadable rows logged one by one; the rest are in the store


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
    fallback_parses: int = 0
    bad_rows: int = 0


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
            source=str(self.path),
        )
        self._checks = CsvChecks(
            path=self.path,
            encoding=encoding,
            delimiter=delimiter,
            greeting=greeting if map_row is None else None,
            phone_column=phone_column,
            needs_phone_column=map_row is None,
            default_region=default_region,
        )
        self._phone_wanted = phone_column
        self._batch_size = batch_size
        self._source = CsvSource(
            self.path, encoding=encoding, delimiter=delimiter, settle_s=settle_s, clock=self._clock
        )
        self._index = EmittedIndex()
        self._outcomes = OutcomeWriter(
            self.path, self._index, self._clock,
            status_writer=(
                StatusWriteBack(self.path, write_back, encoding=encoding, delimiter=delimiter)
                if write_back else None
            ),
            results=ResultsFile(Path(results_file)) if results_file else None,
        )
        self._builder = BatchBuilder(self._index, self._map, self._explicit_id)
        self._identity: tuple[str, ...] = ()
        self._pending = pl.DataFrame()
        self._bad_pending: list[BadRow] = []
        self._bad_seen: set[str] = set()
        self._bind_error: MappingError | None = None
        self._state = "new"
        self._polls = 0
        self._lock = anyio.Lock()

    # -- Strategy interface -------------------------------------------------------

    async def preflight(self) -> None:
        """Check the file before anyone is dialled (header and the first rows only).

        Raises :class:`~dispatch.errors.SourceUnusable` when the file is missing,
        unreadable, empty, binary, or has no header row / phone column, and
        :class:`~dispatch.errors.PreflightError` when the greeting names a column
        the file lacks (``option="--greeting"``) or most sampled phones lack a
        country code and no ``default_region`` is set (``option="--region"``).
        """
        await anyio.to_thread.run_sync(run_checks, self._checks)

    async def poll(self) -> list[Record]:
        """Flush queued outcomes, pick up file changes, return the next batch of records.

        Never raises for file problems: a missing, unreadable or malformed file, or
        one without a phone column, is logged once per state change.
        """
        async with self._lock:
            self._polls += 1
            await self._outcomes.flush()
            await self._refresh()
            if self._pending.height == 0 and not self._bad_pending:
                return []
            return await anyio.to_thread.run_sync(self._next_batch)

    @property
    def has_more(self) -> bool:
        return self._pending.height > 0 or bool(self._bad_pending)

    async def record_outcome(self, outcome: Outcome) -> None:
        """Queue the outcome for write-back; it is written at the next poll or at close."""
        if outcome.record.id in self._bad_seen:
            return  # an unreadable row: there is no row to write its outcome into
        self._outcomes.queue(outcome)

    async def aclose(self) -> None:
        """Flush queued write-backs (failures are logged)."""
        async with self._lock:
            await self._outcomes.flush()

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
            outcomes_queued=self._outcomes.queued,
            fallback_parses=stats.fallback_parses,
            bad_rows=len(self._bad_seen),
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
            self._pending = pl.DataFrame()
            self._set_state("unusable", "csv file cannot be used", error=str(exc))
        except MappingError as exc:
            self._set_state("bad_columns", "csv columns cannot be mapped", error=str(exc))
        else:
            if self._source.fmt is None:
                self._set_state("no_header", "csv file has no header line yet")
            else:
                self._set_state("ok", None)

    def _read_and_index(self) -> None:
        chunk = self._source.read()
        if chunk is None:
            return
        if chunk.replaced:
            self._pending = pl.DataFrame()
            self._bind(self._source.columns)
        if self._bind_error is not None:
            raise self._bind_error
        for bad in chunk.bad:
            if bad.record_id not in self._bad_seen:
                self._bad_pending.append(bad)
        rows = self._prepare(chunk.frame)
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

    def _prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Drop blank, processed and already handled rows (vectorised)."""
        columns = [c for c in frame.columns if c != ROW]
        if not columns:
            return frame
        keep = pl.any_horizontal([pl.col(c).is_not_null() for c in columns])
        blank = _whitespace_rows(frame, columns, find_phone_column(columns, self._phone_wanted))
        if blank.len():
            keep = keep & ~pl.col(ROW).is_in(blank.implode())
        for col in self._skip_columns:
            if col in columns:
                keep = keep & self._unprocessed(col)
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
        """Unreadable rows first, then up to ``batch_size`` rows in all."""
        bad, self._bad_pending = (
            self._bad_pending[: self._batch_size],
            self._bad_pending[self._batch_size :],
        )
        records = [self._bad_record(b) for b in bad]
        room = self._batch_size - len(records)
        if room > 0 and self._pending.height:
            batch = self._pending.head(room)
            self._pending = self._pending.slice(room)
            records.extend(self._builder.build(batch, self._identity))
        return records

    def _bad_record(self, bad: BadRow) -> Record:
        self._bad_seen.add(bad.record_id)
        if len(self._bad_seen) <= _BAD_ROWS_LOGGED:
            log.warning("csv row cannot be read", path=str(self.path), reason=bad.reason,
                        problem=bad.message)
        elif len(self._bad_seen) == _BAD_ROWS_LOGGED + 1:
            log.warning("csv has more unreadable rows; they are not logged one by one",
                        path=str(self.path), hint="dispatch report lists every skipped row")
        return bad_row_record(bad)

    def _explicit_id(self, row: Row, record: Record) -> bool:
        return self._map_row is not None or self._mapper.explicit_id(row)

    def _map(self, row_no: int, row: Row) -> Record | None:
        if self._map_row is None:
            return self._mapper(row_no, row)
        try:
            return call_row_mapper(self._map_row, row)
        except Exception as exc:
            problem = f"line {row_no}: map_row raised {exc!r}"
            log.error("csv row rejected", path=str(self.path), problem=problem)
            phone = find_phone_column(row, self._phone_wanted)
            return Record(
                id=content_id(row, self._skip_columns),
                phone=(row.get(phone) if phone else None) or "",
                metadata={INVALID_KEY: problem},
            )

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


def _whitespace_rows(frame: pl.DataFrame, columns: list[str], phone: str | None) -> pl.Series:
    """Line numbers (ROW) of rows whose fields are all empty or whitespace-only.

    Only rows whose phone field is missing or tiny are examined, so the common
    case costs one length check.
    """
    suspect = frame if phone is None else frame.filter(
        pl.col(phone).str.len_bytes().fill_null(0) < 4
    )
    blank = pl.all_horizontal(
        [pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in columns]
    )
    return suspect.filter(blank).get_column(ROW)
