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

from strategies._csv_index import ROW
from strategies._csv_rows import MAX_FIELD_LINES, BadRow, read_rows
from strategies._csv_text import CsvFormat, is_utf8, last_record_end, parse_csv, quotes_balanced

__all__ = ["Block", "frame_lines", "header_columns", "parse_block"]


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


def _fast(body: bytes, fmt: CsvFormat, first_line: int, final: bool) -> Block | None:
    end = last_record_end(body)
    if end < len(body):
        if final and quotes_balanced(body, end):
            end = len(body)
        elif final or b"\n" in body[end:]:
            return None  # quote parity is unreliable here: read row by row
    part = body[:end]
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
    lined = frame_lines(frame, first_line, part.count(b"\n"))
    return None if lined is None else Block(lined, [], end, fallback=False)


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


def _slow(body: bytes, fmt: CsvFormat, columns: list[str], first_line: int,
          final: bool) -> Block:
    frames: list[pl.DataFrame] = []

    def sink(rows: list[list[str]], lines: list[int]) -> None:
        frames.append(_frame(rows, lines, columns))

    read = read_rows(body, encoding=fmt.encoding, delimiter=fmt.delimiter,
                     first_line=first_line, final=final, on_rows=sink)
    frame = pl.concat(frames) if frames else _frame([], [], columns)
    return Block(frame, read.bad, read.end, fallback=True)


def parse_block(body: bytes, fmt: CsvFormat, columns: list[str], first_line: int, *,
                final: bool) -> Block:
    """Parse ``body`` (records after the header, starting on a record boundary).

    ``first_line`` is the file line number of ``body``'s first line. Unless
    ``final``, an incomplete last record is held back (``end`` stops before it).
    Never raises for bad content: unreadable records come back as ``bad``.
    """
    block = _fast(body, fmt, first_line, final)
    if block is not None and block.frame.width - 1 == len(columns):
        return block
    return _slow(body, fmt, columns, first_line, final)
