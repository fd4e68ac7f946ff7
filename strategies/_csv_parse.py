"""One block of CSV records -> a frame of good rows (+ their line numbers) and bad rows.

polars is the fast path. Its result is trusted only when it is cheap to check
that it is right; otherwise the block is read again by the forgiving row-by-row
reader (:mod:`strategies._csv_rows`). The fallback is taken when:

* polars refuses the block (unclosed or malformed quotes, invalid UTF-8...);
* the bytes do not decode in the file's (non-UTF-8) encoding;
* the block holds a NUL byte;
* quote parity would hold back complete-looking lines (a stray quote upsets it);
* some field polars read spans more than ``MAX_FIELD_LINES`` lines (a quoted
  field swallowing the rows after it).

Every frame carries :data:`~strategies._csv_index.ROW`, the file line number on
which each record starts (1-based; the header is line 1).
"""

from __future__ import annotations

import codecs
import dataclasses

import polars as pl

from dispatch.strategies._csv_index import ROW
from dispatch.strategies._csv_rows import MAX_FIELD_LINES, BadRow, read_rows
from dispatch.strategies._csv_text import (
    CsvFormat,
    is_utf8,
    last_record_end,
    parse_csv,
    quotes_balanced,
)

__all__ = ["ROWS_WINDOW_BYTES", "WINDOW_BYTES", "Block", "frame_lines", "header_columns",
           "parse_block"]

#: polars reads a block in windows of this many bytes (rounded up to a line end).
WINDOW_BYTES = 8 << 20
#: A window polars refuses is halved down to this size, then read row by row.
ROWS_WINDOW_BYTES = 128 << 10


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """What one parse produced; ``end`` is how many bytes of the body it consumed."""

    frame: pl.DataFrame
    bad: list[BadRow]
    end: int
    fallback: bool


def header_columns(fmt: CsvFormat) -> list[str]:
    """Column names as polars names them (``a``, ``a_duplicated_0``, ``""``...)."""
    text = fmt.header.decode(codecs.lookup(fmt.encoding).name, "replace")
    return parse_csv(text.encode("utf-8"), fmt).columns


def frame_lines(frame: pl.DataFrame, first_line: int, newlines: int) -> pl.DataFrame | None:
    """Add the ROW column: the line each record starts on.

    ``newlines`` is the number of newlines in the parsed bytes. ``None`` when a
    field spans more than ``MAX_FIELD_LINES`` lines (the caller falls back).
    """
    frame = frame.with_row_index(ROW, offset=first_line)
    if newlines <= frame.height:  # no field holds a newline: one record, one line
        return frame
    data = [c for c in frame.columns if c != ROW]
    extra = frame.select(
        pl.sum_horizontal(
            pl.col(c).str.count_matches("\n", literal=True).fill_null(0) for c in data
        ).alias("n")
    ).to_series()
    if extra.max() is not None and int(extra.max()) >= MAX_FIELD_LINES:  # type: ignore[arg-type]
        return None
    shift = extra.cum_sum().shift(1, fill_value=0).cast(pl.UInt32)
    return frame.with_columns((pl.col(ROW) + shift).alias(ROW))


def _polars_window(
    body: bytes, pos: int, stop: int, fmt: CsvFormat, columns: list[str], line: int, final: bool
) -> tuple[pl.DataFrame, int] | None:
    """polars on the complete records of ``body[pos:stop]``: (frame, end), or ``None``
    when it refuses them or its result cannot be trusted (see the module docstring)."""
    end = last_record_end(body, pos, stop)
    if end < stop:
        if final and quotes_balanced(body[end:stop]):
            end = stop
        elif final or body.find(b"\n", end, stop) >= 0:
            return None  # quote parity is unreliable here: read row by row
    if end == pos:
        return None
    part = body[pos:end]
    if b"\x00" in part:
        return None
    if not is_utf8(fmt.encoding):
        try:
            part = part.decode(fmt.encoding).encode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        frame = parse_csv(_utf8_header(fmt) + part, fmt)
    except pl.exceptions.PolarsError:
        return None
    if frame.columns != columns:
        return None
    lined = frame_lines(frame, line, part.count(b"\n"))
    return None if lined is None else (lined, end)


def _utf8_header(fmt: CsvFormat) -> bytes:
    if is_utf8(fmt.encoding):
        return fmt.header
    return fmt.header.decode(fmt.encoding, "replace").encode("utf-8")


def _frame(rows: list[list[str]], lines: list[int], columns: list[str]) -> pl.DataFrame:
    """A frame like polars would give: every column String, empty -> null, ragged fixed."""
    width = len(columns)
    if any(len(r) != width for r in rows):  # ragged rows: pad or truncate
        rows = [(r + [""] * width)[:width] for r in rows]
    cells = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    frame = pl.DataFrame(
        [pl.Series(ROW, lines, dtype=pl.UInt32)]
        + [pl.Series(name, values, dtype=pl.String) for name, values in
           zip(columns, cells, strict=True)]
    )
    return frame.with_columns(
        pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in columns
    )


def _rows_window(body: bytes, fmt: CsvFormat, columns: list[str], line: int,
                 final: bool) -> tuple[list[pl.DataFrame], list[BadRow], int]:
    frames: list[pl.DataFrame] = []

    def sink(rows: list[list[str]], lines: list[int]) -> None:
        frames.append(_frame(rows, lines, columns))

    read = read_rows(body, encoding=fmt.encoding, delimiter=fmt.delimiter,
                     first_line=line, final=final, on_rows=sink)
    return frames, read.bad, read.end


def _window_stop(body: bytes, pos: int, size: int) -> int:
    """The end of the line at ``pos + size`` (or the end of ``body``)."""
    if pos + size >= len(body):
        return len(body)
    nl = body.find(b"\n", pos + size)
    return len(body) if nl < 0 else nl + 1


def parse_block(body: bytes, fmt: CsvFormat, columns: list[str], first_line: int, *,
                final: bool, start: int = 0, window_bytes: int = 0,
                rows_window_bytes: int = 0) -> Block:
    """Parse ``body[start:]`` (records after the header, from a record boundary).

    ``start`` saves copying a large file to cut its header off; ``end`` in the
    result counts from ``start``.

    ``first_line`` is the file line number of ``body``'s first line. Unless
    ``final``, an incomplete last record is held back (``end`` stops before it).
    Never raises for bad content: unreadable records come back as ``bad``.

    polars reads windows of up to ``window_bytes`` (:data:`WINDOW_BYTES`); a window
    it refuses is halved until it is ``rows_window_bytes`` (:data:`ROWS_WINDOW_BYTES`)
    small, and that window is read row by row, so a bad spot costs a few small
    re-reads, not the whole block.
    """
    window_bytes = window_bytes or WINDOW_BYTES
    rows_window_bytes = rows_window_bytes or ROWS_WINDOW_BYTES
    frames: list[pl.DataFrame] = []
    bad: list[BadRow] = []
    pos, line, size, fallback = start, first_line, window_bytes, False
    rows_size = rows_window_bytes  # grows while one record is longer than it
    while pos < len(body):
        stop = _window_stop(body, pos, size)
        done = _polars_window(body, pos, stop, fmt, columns, line, final and stop == len(body))
        if done is None and size > rows_window_bytes:
            size //= 2
            continue
        if done is not None:
            frame, end = done
            frames.append(frame)
            size = min(window_bytes, size * 2)
        else:
            fallback = True
            stop = _window_stop(body, pos, rows_size)
            last = stop == len(body)
            more, wrong, used = _rows_window(body[pos:stop], fmt, columns, line, final and last)
            frames += more
            bad += wrong
            if used == 0 and last:
                break  # an incomplete last record: held back
            if used == 0:
                rows_size *= 2  # one record longer than the window: widen it
                continue
            end, rows_size = pos + used, rows_window_bytes
        line += body.count(b"\n", pos, end)
        pos = end
    frame = pl.concat(frames) if frames else _frame([], [], columns)
    return Block(frame, bad, pos - start, fallback)
