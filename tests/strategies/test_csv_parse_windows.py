"""parse_block reads polars windows and row-by-row windows; whatever the window
sizes, the result is the one a single row-by-row read of the whole block gives."""

from __future__ import annotations

import random

import polars as pl
import pytest

from dispatch.strategies._csv_parse import header_columns, parse_block
from dispatch.strategies._csv_rows import read_rows
from dispatch.strategies._csv_text import detect_format

HOSTILE = [
    'n{i},+1415{i:07d},"unclosed\n',
    'ab"cd,+1415{i:07d},5" screen\n',
    'n{i},+1415{i:07d},"x"y\n',
    'n{i},+1415{i:07d},"two\nlines, ok"\n',
    "n\xff{i},+1415{i:07d},bad byte\n",
    "\n",
    "n\x00{i},+1415{i:07d},nul\n",
]


def body(seed: int, rows: int) -> bytes:
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        template = rng.choice(HOSTILE) if rng.random() < 0.02 else "n{i},+1415{i:07d},ok {i}\n"
        lines.append(template.format(i=i).encode("utf-8", "surrogateescape")
                     .replace("\xff".encode(), b"\xff"))
    return b"".join(lines)


def reference(data: bytes, columns: list[str], final: bool) -> tuple[list[tuple], list, int]:
    rows: list[tuple] = []

    def sink(chunk: list[list[str]], lines: list[int]) -> None:
        for fields, line in zip(chunk, lines, strict=True):
            fields = (fields + [""] * 3)[:3]
            rows.append((line, *(f or None for f in fields)))

    read = read_rows(data, encoding="utf-8", delimiter=",", first_line=2, final=final,
                     on_rows=sink)
    return rows, [(b.line, b.reason) for b in read.bad], read.end


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("final", [True, False])
def test_windows_agree_with_one_row_by_row_read(seed: int, final: bool) -> None:
    data = body(seed, 3000)
    if not final:
        data += b'n9,+14150000009,"still being written\nmore'
    fmt = detect_format(b"name,phone,notes\n", encoding="utf-8", delimiter=None, at_eof=False)
    assert fmt is not None
    columns = header_columns(fmt)
    rows, bad, end = reference(data, columns, final)
    for window, small in [(4096, 512), (64 << 10, 4096), (0, 0)]:
        block = parse_block(data, fmt, columns, 2, final=final, window_bytes=window,
                            rows_window_bytes=small)
        frame = block.frame.with_columns(pl.col("__dispatch_row").cast(pl.Int64))
        blank = frame.filter(pl.all_horizontal(pl.col(c).is_null() for c in columns))
        got = [r for r in frame.rows() if r not in blank.rows()]
        assert got == rows
        assert [(b.line, b.reason) for b in block.bad] == bad
        assert block.end == end
