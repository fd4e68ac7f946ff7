"""Follow one CSV file across polls: first load, appended rows, rewrites.

:class:`CsvSource` remembers the byte offset just after the last complete record
it parsed, plus a fingerprint of the header and of the bytes just before that
offset. At each poll:

* unchanged ``(device, inode, size, mtime)`` -> nothing is read (one ``stat``);
* same inode, bigger size, header and fingerprint intact -> only the new bytes
  (up to the last newline outside quotes) are parsed, prefixed with the header;
* anything else (new inode, shrink, in-place edit at equal size, header or
  fingerprint changed) -> the whole file is re-read.

An unterminated last line (or a quoted field still open at the end) is held
back until it is completed, or until the file has been quiet for ``settle_s``
seconds (files saved without a final newline); then it is taken, and an open
quote makes it a bad row. Records that cannot be read come back as
:class:`~strategies._csv_rows.BadRow` (see :mod:`strategies._csv_parse`); they
never stop the rows after them from being read.

UTF-16 files (with a BOM) are transcoded and always re-read whole; CR-only
files are read as LF. A file that is not text at all raises
:class:`SourceError`. Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl

from dispatch.clock import Clock
from dispatch.strategies._csv_parse import Block, frame_lines, header_columns, parse_block
from dispatch.strategies._csv_rows import BadRow
from dispatch.strategies._csv_text import (
    CsvFormat,
    Sniffed,
    detect_format,
    is_utf8,
    parse_csv,
    sniff,
    to_parseable,
)

__all__ = ["Chunk", "CsvSource", "SourceError", "SourceStats"]

_HEAD_BYTES = 64 * 1024
_TAIL_WINDOW_BYTES = 4096
_SCAN_BYTES = 1 << 20


class SourceError(Exception):
    """The file cannot be used at all (binary content); ``str()`` is one line naming it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """Rows parsed at one poll.

    ``replaced`` means the frame holds the whole file (first load or re-read) and
    replaces everything known before; otherwise the rows were appended. ``frame``
    has the ROW column (line numbers); ``bad`` are the records that cannot be read.
    """

    frame: pl.DataFrame
    bad: list[BadRow]
    replaced: bool


@dataclasses.dataclass(slots=True)
class SourceStats:
    """Counters for tests and benchmarks."""

    full_reads: int = 0
    incremental_reads: int = 0
    bytes_parsed: int = 0
    fallback_parses: int = 0


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _pread(fd: int, offset: int, size: int) -> bytes:
    return os.pread(fd, max(0, size), offset) if size > 0 else b""


def _scan(fd: int, start: int, size: int) -> tuple[int, bool]:
    """(newlines, whether there is a NUL byte) in ``size`` bytes from ``start``."""
    newlines, nul, pos = 0, False, start
    while pos < start + size:
        chunk = _pread(fd, pos, min(_SCAN_BYTES, start + size - pos))
        if not chunk:
            break
        newlines += chunk.count(b"\n")
        nul = nul or b"\x00" in chunk
        pos += len(chunk)
    return newlines, nul


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
        self.columns: list[str] = []
        self.stats = SourceStats()
        self._encoding = encoding
        self._delimiter = delimiter
        self._settle_s = settle_s
        self._clock = clock
        self._sniffed = Sniffed()
        self._seen: tuple[int, int, int, int] | None = None
        self._sig: tuple[int, int, int, int] | None = None  # at the last parse
        self._head = b""
        self._offset = 0
        self._line = 1  # file line number at _offset
        self._fingerprint = b""
        self._partial = False

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
        :class:`SourceError` when it is not text (the same bytes are not retried
        until the file changes). Malformed records never raise: they are ``bad``.
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
        if self._sniffed.utf16:
            return True
        if st.st_size < self._offset or (st.st_size == old[2] and st.st_mtime_ns != old[3]):
            return True
        if _pread(fd, 0, len(self._head)) != self._head:
            return True
        return _fingerprint(fd, self._offset) != self._fingerprint

    def _read_full(self, fd: int, st: os.stat_result) -> Chunk | None:
        self.stats.full_reads += 1
        self.fmt, self._sig = None, _signature(st)
        raw_head = _pread(fd, 0, min(st.st_size, _HEAD_BYTES))
        self._sniffed = sniffed = sniff(raw_head)
        if sniffed.binary:
            self._partial = False
            raise SourceError(f"{self.path} is not a text CSV file ({sniffed.binary})")
        if not raw_head.strip() and st.st_size <= len(raw_head):
            self._partial = False  # empty or whitespace only: no header yet
            return None
        data = to_parseable(_pread(fd, 0, st.st_size), sniffed) if sniffed.utf16 else None
        head = data if data is not None else to_parseable(raw_head, sniffed)
        fmt = self._detect(head, st, whole=data is not None or len(head) == st.st_size)
        if fmt is None and data is None and st.st_size > len(head):
            data = to_parseable(_pread(fd, 0, st.st_size), sniffed)
            fmt = self._detect(data, st, whole=True)
        if fmt is None:
            self._partial = st.st_size > 0
            return None
        self.columns = header_columns(fmt)
        first_line = 1 + fmt.header.count(b"\n")
        fast = self._fast_whole(fd, st, fmt, first_line) if data is None else None
        if fast is not None:
            frame, newlines = fast
            self._commit(fd, st, st.st_size, first_line + newlines)
            self.fmt, self._head = fmt, raw_head[: fmt.header_end]
            return Chunk(frame, [], replaced=True)
        if data is None:
            data = to_parseable(_pread(fd, 0, st.st_size), sniffed)
        block = self._parse(data, fmt, first_line, st, start=fmt.header_end)
        end = fmt.header_end + block.end
        self._commit(fd, st, end, first_line + data.count(b"\n", fmt.header_end, end))
        self.fmt, self._head = fmt, raw_head[: fmt.header_end]
        return Chunk(block.frame, block.bad, replaced=True)

    def _detect(self, head: bytes, st: os.stat_result, *, whole: bool) -> CsvFormat | None:
        return detect_format(
            head,
            encoding="utf-8" if self._sniffed.utf16 else self._encoding,
            delimiter=self._delimiter,
            at_eof=whole and self._settled(st),
            cr_only=self._sniffed.cr_only,
        )

    def _fast_whole(
        self, fd: int, st: os.stat_result, fmt: CsvFormat, first_line: int
    ) -> tuple[pl.DataFrame, int] | None:
        """Let polars read the path itself (fastest) when that is safe and checkable.

        Only for plain UTF-8 files ending on a newline, without NUL bytes; ``None``
        (the caller parses the bytes) when polars refuses the file, a field spans
        too many lines, or the file changed while polars read it. Returns the frame
        and the number of newlines after the header (the file is consumed whole).
        """
        if not is_utf8(fmt.encoding) or self._sniffed.cr_only:
            return None
        if _pread(fd, st.st_size - 1, 1) != b"\n":
            return None
        # the byte scan (NULs, line count) overlaps polars, which releases the GIL
        with ThreadPoolExecutor(1, thread_name_prefix="csv-scan") as pool:
            scan = pool.submit(_scan, fd, fmt.header_end, st.st_size - fmt.header_end)
            try:
                frame: pl.DataFrame | None = parse_csv(str(self.path), fmt)
            except pl.exceptions.PolarsError:
                frame = None
            newlines, nul = scan.result()
        if frame is None or nul:
            return None
        if _signature(os.stat(self.path)) != _signature(st) or frame.columns != self.columns:
            return None
        lined = frame_lines(frame, first_line, newlines)
        if lined is None:
            return None
        self.stats.bytes_parsed += st.st_size
        self._partial = False
        return lined, newlines

    def _read_appended(self, fd: int, st: os.stat_result) -> Chunk | None:
        assert self.fmt is not None
        data = to_parseable(_pread(fd, self._offset, st.st_size - self._offset), self._sniffed)
        block = self._parse(data, self.fmt, self._line, st)
        if block.end == 0 and not block.bad:
            return None
        self.stats.incremental_reads += 1
        self.stats.bytes_parsed += len(self.fmt.header)
        lines = self._line + data.count(b"\n", 0, block.end)
        self._commit(fd, st, self._offset + block.end, lines)
        return Chunk(block.frame, block.bad, replaced=False)

    def _parse(self, body: bytes, fmt: CsvFormat, first_line: int, st: os.stat_result, *,
               start: int = 0) -> Block:
        block = parse_block(body, fmt, self.columns, first_line, final=self._settled(st),
                            start=start)
        self.stats.bytes_parsed += block.end
        self.stats.fallback_parses += block.fallback
        self._partial = start + block.end < len(body)
        return block

    def _commit(self, fd: int, st: os.stat_result, end: int, lines: int) -> None:
        self._sig = _signature(st)
        self._offset = end
        self._line = lines
        self._fingerprint = _fingerprint(fd, end)

