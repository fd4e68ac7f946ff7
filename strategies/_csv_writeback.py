"""Persisting outcomes: a status column in the CSV itself, or a separate results CSV.

Status write-back rewrites the file atomically: the new content goes to a temp
file in the same directory, which replaces the original with ``os.replace``.
Rows appended by someone else while we rewrite are never lost: right before the
replace the live file is stat-ed again and every byte past what we parsed is
copied verbatim after our rows (repeated until the size is stable). A writer
that appends in the few microseconds between that last check and the rename
can still lose its write; true exclusion would need the writers' cooperation
(a lock file), which plain CSV producers do not offer.

Spreadsheet formulas: every value *dispatch* writes (the status word in the
user's file, every cell of the results file) goes through
:func:`dispatch.csvsafe.neutralize_cell`, so a disposition such as
``=HYPERLINK("http://x","y")`` is written as ``'=HYPERLINK(...)``. The user's own
cells are their data: status write-back never escapes or edits them (each keeps
its value; only the quoting polars chooses may differ from the original bytes),
so a file that holds formulas on purpose keeps them.

Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

import polars as pl

from dispatch.csvsafe import neutralize_cell
from strategies._csv_index import Columns, row_keys
from strategies._csv_text import (
    BOM,
    CsvFormat,
    decode_to_utf8,
    detect_format,
    last_record_end,
    parse_csv,
)

__all__ = ["RESULT_FIELDS", "ResultsFile", "StatusWriteBack", "WriteBackError"]

RESULT_FIELDS = ("id", "phone", "status", "reason", "attempts", "call_id", "disposition", "at")
_WORD = "__dispatch_word"
_MAX_MERGE_ROUNDS = 50


class WriteBackError(Exception):
    """The CSV could not be rewritten now (missing, replaced meanwhile, no header)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FlushResult:
    """Which row keys were found (per generation) and how many rows changed."""

    matched: dict[Columns, set[int]]
    rows_updated: int


class StatusWriteBack:
    """Writes status words into ``column`` of the CSV at ``path``."""

    def __init__(
        self, path: Path, column: str, *, encoding: str = "utf-8", delimiter: str | None = None
    ) -> None:
        self.path = path
        self.column = column
        self._encoding = encoding
        self._delimiter = delimiter

    def flush(self, updates: dict[Columns, dict[int, str]]) -> FlushResult:
        """Set ``column`` to the word of every row whose key is in ``updates``.

        Raises :class:`OSError` or :class:`WriteBackError`; the file is then untouched.
        """
        with open(self.path, "rb") as f:
            data = f.read()
            st = os.fstat(f.fileno())
        fmt = detect_format(data, encoding=self._encoding, delimiter=self._delimiter, at_eof=True)
        if fmt is None:
            raise WriteBackError(f"{self.path} has no header line")
        end = max(last_record_end(data, fmt.header_end), fmt.header_end)
        body = data[len(BOM) if fmt.bom else 0 : end]
        frame = parse_csv(decode_to_utf8(body, fmt.encoding), fmt)
        frame, result = self._apply(frame, updates)
        if result.rows_updated:
            self._replace(self._render(frame, fmt), st, end)
        return result

    def _apply(
        self, frame: pl.DataFrame, updates: dict[Columns, dict[int, str]]
    ) -> tuple[pl.DataFrame, FlushResult]:
        if self.column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(self.column))
        matched: dict[Columns, set[int]] = {}
        rows_updated = 0
        for columns, words in updates.items():
            if not words or not set(columns) <= set(frame.columns):
                continue
            keys = row_keys(frame, columns)
            safe = [neutralize_cell(word) for word in words.values()]
            new = keys.replace_strict(
                list(words), safe, default=None, return_dtype=pl.String
            ).alias(_WORD)
            hit = new.is_not_null()
            rows_updated += int(hit.sum())
            matched[columns] = set(keys.filter(hit).unique().to_list())
            frame = frame.with_columns(
                pl.when(hit).then(new).otherwise(pl.col(self.column)).alias(self.column)
            )
        return frame, FlushResult(matched, rows_updated)

    @staticmethod
    def _render(frame: pl.DataFrame, fmt: CsvFormat) -> bytes:
        text = frame.write_csv(
            separator=fmt.delimiter, line_terminator=fmt.line_terminator, quote_style="necessary"
        )
        return (BOM if fmt.bom else b"") + text.encode(fmt.encoding, errors="replace")

    def _replace(self, content: bytes, st: os.stat_result, copied_from: int) -> None:
        """Write ``content`` + the live file's bytes after ``copied_from``, then rename."""
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                self._merge_tail(out, st, copied_from)
                os.fsync(out.fileno())
            os.chmod(tmp, stat.S_IMODE(st.st_mode))
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise

    def _merge_tail(self, out: BinaryIO, st: os.stat_result, pos: int) -> None:
        """Copy bytes appended to the live file (since ``pos``) until its size is stable."""
        for _ in range(_MAX_MERGE_ROUNDS):
            live = os.stat(self.path)
            if (live.st_dev, live.st_ino) != (st.st_dev, st.st_ino) or live.st_size < pos:
                raise WriteBackError(f"{self.path} was replaced or truncated during write-back")
            if live.st_size == pos:
                return
            with open(self.path, "rb") as f:
                extra = os.pread(f.fileno(), live.st_size - pos, pos)
            out.write(extra)
            pos += len(extra)
        raise WriteBackError(f"{self.path} kept growing during write-back; will retry")


class ResultsFile:
    """Appends one outcome row per record to a separate CSV (header when new)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, rows: list[dict[str, str]]) -> None:
        """Append ``rows`` (keys: :data:`RESULT_FIELDS`), every cell neutralised.

        Raises :class:`OSError`.
        """
        rows = [{k: neutralize_cell(v) for k, v in row.items()} for row in rows]
        new = not self.path.exists() or self.path.stat().st_size == 0
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=RESULT_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerows(rows)
