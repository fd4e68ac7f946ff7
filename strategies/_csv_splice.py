"""Editing one column of a CSV file in place, byte for byte.

Status write-back must not touch the user's data: only the status cell of the
rows that got an outcome changes (and, when the file has no status column yet,
the header and every readable record gain one cell at the end). Every other
byte -- other cells, their quoting, line endings, rows that cannot be read --
is copied unchanged. Records are located by the line they start on
(:data:`~strategies._csv_index.ROW`); their fields are found by a small scanner
that follows the same quoting rules as the forgiving reader (a quote only opens
a quoted field at the start of a field).
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.csvsafe import neutralize_cell
from dispatch.strategies._csv_text import CsvFormat

__all__ = ["cell_text", "record_fields", "splice_column"]

_QUOTE, _LF, _CR = ord('"'), ord("\n"), ord("\r")


def record_fields(data: bytes, start: int, delimiter: int) -> tuple[list[tuple[int, int]], int]:
    """Field spans ``(start, end)`` of the record at ``start`` and the end of its content
    (the offset of its line terminator)."""
    fields: list[tuple[int, int]] = []
    i = field_start = start
    quoted = False
    n = len(data)
    while i < n:
        c = data[i]
        if quoted:
            if c == _QUOTE:
                if i + 1 < n and data[i + 1] == _QUOTE:
                    i += 2
                    continue
                quoted = False
        elif c == _QUOTE and i == field_start:
            quoted = True
        elif c == delimiter:
            fields.append((field_start, i))
            field_start = i + 1
        elif c in (_LF, _CR):
            break
        i += 1
    fields.append((field_start, i))
    return fields, i


def cell_text(word: str, delimiter: str) -> str:
    """``word`` as one CSV cell: formula-neutralised, quoted when it must be."""
    word = neutralize_cell(word)
    if any(ch in word for ch in (delimiter, '"', "\n", "\r")) or word != word.strip():
        return '"' + word.replace('"', '""') + '"'
    return word


def _line_starts(data: bytes, lines: list[int]) -> dict[int, int]:
    """Byte offset where each of ``lines`` (1-based, ascending) starts."""
    starts: dict[int, int] = {}
    line, pos = 1, 0
    for wanted in lines:
        while line < wanted:
            pos = data.index(b"\n", pos) + 1
            line += 1
        starts[wanted] = pos
    return starts


def splice_column(
    data: bytes,
    fmt: CsvFormat,
    words: dict[int, str],
    *,
    index: int,
    encoding: str,
    new_column: str | None = None,
    all_lines: Sequence[int] = (),
    original: bytes | None = None,
) -> bytes:
    """``data`` with cell ``index`` set in the records starting on the lines of ``words``.

    ``data`` is the file's parseable bytes (LF line ends for CR-only files, same
    offsets as the file), ``encoding`` the one cells are written in. With
    ``new_column`` the column does not exist yet: the header and every record in
    ``all_lines`` (the lines of all readable records) gain a cell at ``index``,
    empty unless the record is in ``words``. The result is copied from
    ``original`` (the file's own bytes, same offsets; default ``data``).
    """
    source = data if original is None else original
    delim = ord(fmt.delimiter)
    inserting = new_column is not None
    edits: list[tuple[int, int, bytes]] = []  # (start, end, replacement)
    if new_column is not None:
        fields, end = record_fields(data, fmt.header_end - len(fmt.header), delim)
        edits.append(_set_cell(fields, end, index, cell_text(new_column, fmt.delimiter),
                               fmt.delimiter, encoding, insert=True))
    lines = sorted(set(words) | set(all_lines))
    for line, start in _line_starts(data, lines).items():
        fields, end = record_fields(data, start, delim)
        text = cell_text(words[line], fmt.delimiter) if line in words else ""
        edits.append(_set_cell(fields, end, index, text, fmt.delimiter, encoding,
                               insert=inserting))
    out, pos = [], 0
    for start, end, replacement in sorted(edits):
        out += [source[pos:start], replacement]
        pos = end
    out.append(source[pos : len(data)])
    return b"".join(out)


def _set_cell(fields: list[tuple[int, int]], end: int, index: int, text: str, sep: str,
              encoding: str, *, insert: bool) -> tuple[int, int, bytes]:
    """The edit that puts ``text`` in cell ``index`` (replacing it, or inserting it)."""
    if insert and index < len(fields):  # a row longer than the header: insert at ``index``
        at = fields[index][0]
        return at, at, (text + sep).encode(encoding, "replace")
    if index < len(fields):
        start, stop = fields[index]
        return start, stop, text.encode(encoding, "replace")
    padded = sep * (index - len(fields) + 1) + text
    return end, end, padded.encode(encoding, "replace")
