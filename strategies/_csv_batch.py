"""Rows -> Records, including the records that say why a row is not dialled.

Three kinds of skipped record come from here, each with an id that no real
record can have, so the hub (which ignores ids it knows) stores every one:

* an unreadable row (:class:`~strategies._csv_rows.BadRow`): id ``line:<N>:<hash>``
  (``N`` its line, ``hash`` a digest of its text), reason ``invalid_row`` or
  ``invalid_encoding``;
* a second row with an id already used by a row with *different* content:
  id ``<id>~line<N>``, reason ``duplicate_id_conflict``, naming both lines.
  Identical duplicates (same content) still collapse into the first;
* a row ``map_row`` raised for (reason ``invalid_record``, content-hash id).

Blocking (``map_row`` runs here): call from a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from dispatch.log import get_logger
from dispatch.records import Record
from dispatch.strategies._csv_index import ROW, Columns, EmittedIndex, row_keys
from dispatch.strategies._csv_mapping import INVALID_KEY, Row
from dispatch.strategies._csv_rows import BadRow

__all__ = ["INVALID_REASON_KEY", "BatchBuilder", "bad_row_record"]

INVALID_REASON_KEY = "_invalid_reason"

log = get_logger("dispatch.strategies.csv")

Mapper = Callable[[int, Row], "Record | None"]
ExplicitId = Callable[[Row, Record], bool]


def bad_row_record(bad: BadRow) -> Record:
    """The skipped record standing for an unreadable row (phone left empty)."""
    return Record(
        id=bad.record_id,
        phone="",
        metadata={INVALID_KEY: bad.message, INVALID_REASON_KEY: bad.reason},
    )


class BatchBuilder:
    """Builds the records of one batch of prepared rows (see the module docstring).

    ``mapper(line, row)`` maps one row; ``explicit_id(row, record)`` says whether the
    record's id was chosen by the file (an id column, ``map_row``) rather than
    derived from its content -- only those ids can conflict.
    """

    def __init__(self, index: EmittedIndex, mapper: Mapper, explicit_id: ExplicitId) -> None:
        self._index = index
        self._mapper = mapper
        self._explicit_id = explicit_id

    def build(self, batch: pl.DataFrame, identity: Columns) -> list[Record]:
        keys = row_keys(batch, identity)
        records: list[Record] = []
        for raw, key in zip(batch.iter_rows(named=True), keys, strict=True):
            line = raw.pop(ROW)
            row: Row = {k: (v if v else None) for k, v in raw.items()}
            record = self._mapper(line, row)
            if record is None:
                continue
            explicit = self._explicit_id(row, record)
            known = self._index.entry(identity, record.id)
            if known is None:
                self._index.add_id(identity, record.id, key, line=line if explicit else None)
                records.append(record)
            elif explicit and known[0] is not None and known[0] != key:
                conflict = _conflict(record, line, known[1])
                self._index.add_id(identity, conflict.id, key, line=line)
                records.append(conflict)
        self._index.add_done(identity, keys)
        return records


def _conflict(record: Record, line: int, first_line: int | None) -> Record:
    where = f"line {first_line}" if first_line is not None else "an earlier row"
    problem = (
        f"line {line}: id {record.id!r} is already used by {where} with different content "
        f"(phone {record.phone!r} here); this row is not dialled: give it its own id"
    )
    log.warning("csv duplicate id with different content", problem=problem)
    metadata = {**record.metadata, INVALID_KEY: problem,
                INVALID_REASON_KEY: "duplicate_id_conflict"}
    return record.model_copy(update={"id": f"{record.id}~line{line}", "metadata": metadata})
