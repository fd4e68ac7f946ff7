"""The slow, forgiving CSV reader used where polars refuses (or would mis-read) a block.

:func:`read_rows` reads a block of records row by row with the standard ``csv``
module in strict mode, so that every malformed record is *noticed*, and
re-synchronises at the next physical line after it. It never gives up on the
rest of the block:

* a stray quote inside an unquoted field (``ab"cd``) is kept literally, as
  spreadsheets do: the row is good;
* text after a closing quote (``"x"y``), a quoted field that never closes, or one
  that would swallow more than :data:`MAX_FIELD_LINES` lines, makes the record
  starting on that line a :class:`BadRow` (``invalid_row``); reading resumes on
  the next line, so the rows that the open quote would have swallowed are read;
* a record holding bytes that are not valid in the file's encoding is a
  :class:`BadRow` with reason ``invalid_encoding`` naming the likely fix;
  the other records are unaffected;
* a record with a NUL byte is a :class:`BadRow` (``invalid_row``).

Line numbers are physical lines of the file, 1-based (the header is line 1).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib

__all__ = ["MAX_FIELD_LINES", "BadRow", "RowsRead", "excerpt", "read_rows"]

#: A quoted field spanning more lines than this is taken as an unclosed quote.
MAX_FIELD_LINES = 100
_EXCERPT_CHARS = 80
_NUL = "\x00"


def excerpt(text: str) -> str:
    """``text`` as a short, printable, quoted excerpt (at most ~80 characters)."""
    text = text.rstrip("\r\n")
    short = text[:_EXCERPT_CHARS] + ("..." if len(text) > _EXCERPT_CHARS else "")
    return repr(short)


@dataclasses.dataclass(frozen=True, slots=True)
class BadRow:
    """A record that cannot be read: where, why and what it said.

    ``reason`` is ``invalid_row`` or ``invalid_encoding``; :attr:`message` is the
    one-line text stored with the skipped record.
    """

    line: int
    reason: str
    why: str
    text: str

    @property
    def message(self) -> str:
        return f"line {self.line}: {self.why}: {excerpt(self.text)}"

    @property
    def record_id(self) -> str:
        """A stable id that no CSV id or content hash can take: ``line:<N>:<hash>``."""
        digest = hashlib.blake2b(self.text.encode("utf-8", "replace"), digest_size=5)
        return f"line:{self.line}:{digest.hexdigest()}"


@dataclasses.dataclass(slots=True)
class RowsRead:
    """Good rows (fields, first line), bad rows, and the bytes consumed."""

    rows: list[list[str]] = dataclasses.field(default_factory=list)
    lines: list[int] = dataclasses.field(default_factory=list)
    bad: list[BadRow] = dataclasses.field(default_factory=list)
    end: int = 0


class _Runaway(Exception):
    """A quoted field swallowed more than MAX_FIELD_LINES lines."""


class _Lines:
    """The iterator csv.reader pulls from; it knows where the current record began."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.pos = 0
        self.start = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.texts):
            raise StopIteration
        if self.pos - self.start >= MAX_FIELD_LINES:
            raise _Runaway
        self.pos += 1
        return self.texts[self.pos - 1]


def _decode_lines(raw: list[bytes], encoding: str) -> tuple[list[str], set[int]]:
    """Decode each physical line; the indexes of lines with undecodable bytes."""
    decoder = codecs.lookup(encoding)
    texts: list[str] = []
    broken: set[int] = set()
    for i, line in enumerate(raw):
        try:
            texts.append(line.decode(decoder.name))
        except UnicodeDecodeError:
            texts.append(line.decode(decoder.name, "replace"))
            broken.add(i)
    return texts, broken


def _why(exc: Exception) -> str:
    if isinstance(exc, _Runaway):
        return f"unclosed quote (a quoted field would swallow more than {MAX_FIELD_LINES} lines)"
    if "end of data" in str(exc):
        return "unclosed quote (the quoted field never ends)"
    if "expected after" in str(exc):
        return "malformed quoting (text right after a closing quote)"
    return f"malformed row ({exc})"


def _encoding_hint(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    fix = "--encoding latin-1" if name.startswith("utf") else "--encoding utf-8"
    return f"bytes that are not valid {name} (wrong encoding? try {fix})"


def read_rows(body: bytes, *, encoding: str, delimiter: str, first_line: int,
              final: bool) -> RowsRead:
    """Read the records in ``body`` (which starts on a record boundary).

    ``first_line`` is the file line number of ``body``'s first line. Unless
    ``final``, an unterminated last line and a quoted field still open at the end
    are held back (``end`` stops before them); when ``final`` they are taken (an
    open quote then makes a :class:`BadRow`).
    """
    raw = body.split(b"\n")
    tail = raw.pop()  # the text after the last newline ("" when body ends with one)
    raw = [line + b"\n" for line in raw]
    if tail and final:
        raw.append(tail)
    texts, broken = _decode_lines(raw, encoding)
    out = RowsRead()
    src = _Lines(texts)
    reader = csv.reader(src, delimiter=delimiter, strict=True)
    offsets = _LineOffsets(raw)
    while src.pos < len(texts):
        src.start = src.pos
        try:
            fields = next(reader)
        except StopIteration:
            break
        except (csv.Error, _Runaway) as exc:
            if "end of data" in str(exc) and not final:
                src.pos = src.start  # an open quoted field that may still be completed
                break
            out.bad.append(BadRow(first_line + src.start, "invalid_row", _why(exc),
                                  texts[src.start]))
            src.pos = src.start + 1
            reader = csv.reader(src, delimiter=delimiter, strict=True)
            continue
        _keep(out, fields, src, broken, first_line, encoding)
    out.end = offsets.at(src.pos)
    return out


def _keep(out: RowsRead, fields: list[str], src: _Lines, broken: set[int], first_line: int,
          encoding: str) -> None:
    line = first_line + src.start
    if not fields:
        return
    text = "".join(src.texts[src.start : src.pos])
    if any(i in broken for i in range(src.start, src.pos)):
        out.bad.append(BadRow(line, "invalid_encoding", _encoding_hint(encoding), text))
    elif any(_NUL in f for f in fields):
        out.bad.append(BadRow(line, "invalid_row", "NUL byte in the row", text.replace(_NUL, "")))
    else:
        out.rows.append(fields)
        out.lines.append(line)


class _LineOffsets:
    """Byte offset of the start of line ``i`` (computed once, on demand)."""

    def __init__(self, raw: list[bytes]) -> None:
        self._raw = raw

    def at(self, index: int) -> int:
        return sum(len(line) for line in self._raw[:index])
