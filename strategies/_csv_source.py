"""Follow one CSV file across polls: first load, appended rows, rewrites.

:class:`CsvSource` remembers the byte offset just after the last complete record
it parsed, plus a fingerprint of the header and of the bytes just before that
offset. At each poll:

* unchanged ``(device, inode, size, mtime)`` -> nothing is read (one ``stat``);
* same inode, bigger size, header and fingerprint intact -> only the new bytes
  (up to the last newline outside quotes) are parsed, prefixed with the header;
* anything else (new inode, shrink, in-place edit at equal size, header or
  fingerprint changed) -> the whole file is re-read.

An unterminated last line is held back until it is completed, or until the
file has been quiet for ``settle_s`` seconds (files saved without a final
newline). Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import polars as pl

from dispatch.clock import Clock
from strategies._csv_text import (
    CsvFormat,
    decode_to_utf8,
    detect_format,
    is_utf8,
    last_record_end,
    parse_csv,
    quotes_balanced,
)

__all__ = ["Chunk", "CsvSource", "SourceError", "SourceStats"]

_HEAD_BYTES = 64 * 1024
_TAIL_WINDOW_BYTES = 4096


class SourceError(Exception):
    """The file's content cannot be parsed (malformed CSV)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """Rows parsed at one poll.

    ``replaced`` means the frame holds the whole file (first load or re-read) and
    replaces everything known before; otherwise the rows were appended.
    ``first_row`` is the number of data records before the first row of ``frame``.
    """

    frame: pl.DataFrame
    first_row: int
    replaced: bool


@dataclasses.dataclass(slots=True)
class SourceStats:
    """Counters for tests and benchmarks."""

    full_reads: int = 0
    incremental_reads: int = 0
    bytes_parsed: int = 0


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _pread(fd: int, offset: int, size: int) -> bytes:
    return os.pread(fd, max(0, size), offset) if size > 0 else b""


def _fingerprint(fd: int, offset: int) -> bytes:
    start = max(0, offset - _TAIL_WINDOW_BYTES)
    return hashlib.blake2b(_pread(fd, start, offset - start), digest_size=16).digest()


class CsvSource:
    """Incremental reader of one CSV file (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        encoding: str = "utf-8",
        delimiter: str | None = None,
        settle_s: float = 2.0,
        clock: Clock,
    ) -> None:
        self.path = path
        self.fmt: CsvFormat | None = None
        self.stats = SourceStats()
        self._encoding = encoding
        self._delimiter = delimiter
        self._settle_s = settle_s
        self._clock = clock
        self._seen: tuple[int, int, int, int] | None = None
        self._sig: tuple[int, int, int, int] | None = None  # at the last parse
        self._head = b""
        self._offset = 0
        self._fingerprint = b""
        self._rows = 0
        self._partial = False
        #: Why the rest of the file cannot be consumed although it is settled.
        self.stalled: str | None = None

    def needs_read(self, st: os.stat_result) -> bool:
        """Whether :meth:`read` could find something new (cheap; no I/O)."""
        if _signature(st) != self._seen:
            return True
        return self._partial and self._settled(st)

    def forget(self) -> None:
        """Make the next :meth:`read` a full re-read (e.g. after the file vanished)."""
        self._seen = self._sig = None
        self.fmt = None

    def read(self) -> Chunk | None:
        """Parse what is new; ``None`` when no complete record was added.

        Raises :class:`OSError` when the file cannot be opened or read and
        :class:`SourceError` when its content cannot be parsed (the same bytes
        are not retried until the file changes).
        """
        with open(self.path, "rb") as f:
            fd = f.fileno()
            st = os.fstat(fd)
            self._seen = _signature(st)
            if self._must_reload(fd, st):
                return self._read_full(fd, st)
            return self._read_appended(fd, st)

    def _settled(self, st: os.stat_result) -> bool:
        return self._clock.now() - st.st_mtime >= self._settle_s

    def _must_reload(self, fd: int, st: os.stat_result) -> bool:
        old = self._sig
        if self.fmt is None or old is None or old[:2] != _signature(st)[:2]:
            return True
        if st.st_size < self._offset or (st.st_size == old[2] and st.st_mtime_ns != old[3]):
            return True
        if _pread(fd, 0, len(self._head)) != self._head:
            return True
        return _fingerprint(fd, self._offset) != self._fingerprint

    def _complete_end(self, data: bytes, start: int, st: os.stat_result) -> int:
        """End of the last complete record in ``data`` (see ``settle_s``)."""
        end = last_record_end(data, start)
        self.stalled = None
        if end < len(data) and self._settled(st):
            if quotes_balanced(data, end):
                end = len(data)
            else:
                where = self._offset + end if start == 0 else end
                self.stalled = f"unbalanced quote in the record starting at byte {where}"
        self._partial = end < len(data)
        return end

    def _read_full(self, fd: int, st: os.stat_result) -> Chunk | None:
        self.stats.full_reads += 1
        size = st.st_size
        head = _pread(fd, 0, min(size, _HEAD_BYTES))
        fmt = self._detect(head, st)
        if fmt is None and size > len(head):
            head = _pread(fd, 0, size)
            fmt = self._detect(head, st)
        if fmt is None:
            self.fmt, self._sig, self._partial = None, _signature(st), size > 0
            return None
        frame, end = self._parse_whole(fd, st, fmt)
        self.fmt, self._head = fmt, head[: fmt.header_end]
        self._commit(fd, st, end, rows=frame.height)
        return Chunk(frame, 0, replaced=True)

    def _detect(self, head: bytes, st: os.stat_result) -> CsvFormat | None:
        at_eof = len(head) == st.st_size and self._settled(st)
        return detect_format(
            head, encoding=self._encoding, delimiter=self._delimiter, at_eof=at_eof
        )

    def _parse_whole(self, fd: int, st: os.stat_result, fmt: CsvFormat) -> tuple[pl.DataFrame, int]:
        """Parse the file up to its last complete record: (frame, end offset)."""
        if is_utf8(fmt.encoding) and _pread(fd, st.st_size - 1, 1) == b"\n":
            frame = self._parse_path_fast(st, fmt)
            if frame is not None:
                self._partial, self.stalled = False, None
                return frame, st.st_size
        data = _pread(fd, 0, st.st_size)
        end = max(self._complete_end(data, fmt.header_end, st), fmt.header_end)
        start = 3 if fmt.bom else 0
        return self._parse(data[start:end], fmt), end

    def _parse_path_fast(self, st: os.stat_result, fmt: CsvFormat) -> pl.DataFrame | None:
        """Let polars read the path itself (fastest) when the file ends on a record.

        ``None`` when polars refuses the file (e.g. an unterminated quote at the end)
        or the file changed while polars read it.
        """
        try:
            frame = parse_csv(str(self.path), fmt)
        except pl.exceptions.PolarsError:
            return None
        if _signature(os.stat(self.path)) != _signature(st):
            return None
        self.stats.bytes_parsed += st.st_size
        return frame

    def _read_appended(self, fd: int, st: os.stat_result) -> Chunk | None:
        assert self.fmt is not None
        data = _pread(fd, self._offset, st.st_size - self._offset)
        end = self._complete_end(data, 0, st)
        if end == 0:
            return None
        frame = self._parse(self.fmt.header + data[:end], self.fmt)
        self.stats.incremental_reads += 1
        first_row = self._rows
        self._offset += end
        self._commit(fd, st, self._offset, rows=first_row + frame.height)
        return Chunk(frame, first_row, replaced=False)

    def _parse(self, body: bytes, fmt: CsvFormat) -> pl.DataFrame:
        self.stats.bytes_parsed += len(body)
        try:
            return parse_csv(decode_to_utf8(body, fmt.encoding), fmt)
        except pl.exceptions.PolarsError as exc:
            raise SourceError(f"cannot parse {self.path}: {exc}".splitlines()[0]) from exc

    def _commit(self, fd: int, st: os.stat_result, end: int, *, rows: int) -> None:
        self._sig = _signature(st)
        self._offset = end
        self._rows = rows
        self._fingerprint = _fingerprint(fd, end)
