"""Persisting outcomes: a status column in the CSV itself, or a separate results CSV.

Status write-back rewrites the file atomically: the new content goes to a temp
file in the same directory, which replaces the original with ``os.replace``.
Rows appended by someone else while we rewrite are never lost: right before the
replace the live file is stat-ed again and every byte past what we parsed is
copied verbatim after our rows (repeated until the size is stable). A writer
that appends in the few microseconds between that last check and the rename
can still lose its write; true exclusion would need the writers' cooperation
(a lock file), which plain CSV producers do not offer.

The user's file is their data: status write-back changes only the status cell
of the rows that got an outcome (plus, when the column is new, one cell at the
end of the header and of each readable row); every other byte -- the other
cells, their quoting, line endings, BOM, rows that cannot be read -- is copied
unchanged (:mod:`strategies._csv_splice`). A file that holds formulas on purpose
keeps them. Every value *dispatch* writes (the status word, every cell of the
results file) goes through :func:`dispatch.csvsafe.neutralize_cell`, so a
disposition such as ``=HYPERLINK("http://x","y")`` is written as ``'=HYPERLINK(...)``.
UTF-16 files are transcoded, edited and written back in UTF-16 with their BOM.

Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

import polars as pl

from dispatch.csvsafe import neutralize_cell
from dispatch.strategies._csv_index import ROW, Columns, row_keys
from dispatch.strategies._csv_parse import header_columns, parse_block
from dispatch.strategies._csv_splice import splice_column
from dispatch.strategies._csv_text import detect_format, sniff, to_parseable

__all__ = ["RESULT_FIELDS", "ResultsFile", "StatusWriteBack", "WriteBackError"]

RESULT_FIELDS = ("id", "phone", "status", "reason", "attempts", "call_id", "disposition", "at")
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

        Only those cells change (see the module docstring); rows that cannot be
        read are left as they are. Raises :class:`OSError` or
        :class:`WriteBackError`; the file is then untouched.
        """
        with open(self.path, "rb") as f:
            raw = f.read()
            st = os.fstat(f.fileno())
        sniffed = sniff(raw)
        if sniffed.binary:
            raise WriteBackError(f"{self.path} is not a text CSV file")
        data = to_parseable(raw, sniffed)
        fmt = detect_format(data, encoding="utf-8" if sniffed.utf16 else self._encoding,
                            delimiter=self._delimiter, at_eof=True, cr_only=sniffed.cr_only)
        if fmt is None:
            raise WriteBackError(f"{self.path} has no header line")
        columns = header_columns(fmt)
        first_line = 1 + fmt.header.count(b"\n")
        # complete lines only: a half-written last line is copied verbatim (_merge_tail)
        complete = max(data.rfind(b"\n") + 1, fmt.header_end)
        block = parse_block(data[:complete], fmt, columns, first_line, final=True,
                            start=fmt.header_end)
        words, result = _match(block.frame, updates)
        if not words:
            return result
        new = self.column not in columns
        upto = len(data) if sniffed.utf16 else fmt.header_end + block.end
        content = splice_column(
            data[:upto], fmt, words,
            index=len(columns) if new else columns.index(self.column),
            encoding=fmt.encoding, new_column=self.column if new else None,
            all_lines=block.frame.get_column(ROW).to_list() if new else (),
            original=None if sniffed.utf16 else raw,
        )
        if sniffed.utf16:  # re-encoded whole; an odd trailing byte is dropped
            content = content.decode("utf-8").encode(sniffed.utf16)
            bom = codecs.BOM_UTF16_LE if sniffed.utf16.endswith("le") else codecs.BOM_UTF16_BE
            self._replace(bom + content, st, len(raw) - len(raw) % 2)
        else:
            self._replace(content, st, upto)
        return result

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


def _match(
    frame: pl.DataFrame, updates: dict[Columns, dict[int, str]]
) -> tuple[dict[int, str], FlushResult]:
    """The word for each line whose row key has one, and which keys were found."""
    words: dict[int, str] = {}
    matched: dict[Columns, set[int]] = {}
    for columns, by_key in updates.items():
        if not by_key or not set(columns) <= set(frame.columns):
            continue
        keys = row_keys(frame, columns)
        hit = keys.is_in(pl.Series(list(by_key), dtype=pl.UInt64).implode())
        found = frame.get_column(ROW).filter(hit).to_list()
        found_keys = keys.filter(hit).to_list()
        words.update({line: by_key[key] for line, key in zip(found, found_keys, strict=True)})
        matched[columns] = set(found_keys)
    return words, FlushResult(matched, len(words))


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
