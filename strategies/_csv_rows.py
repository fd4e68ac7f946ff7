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
from collections.abc import Callable

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
    """Bad rows and the bytes consumed (good rows in flight to the sink)."""

    rows: list[list[str]] = dataclasses.field(default_factory=list)
    lines: list[int] = dataclasses.field(default_factory=list)
    bad: list[BadRow] = dataclasses.field(default_factory=list)
    end: int = 0


RowSink = Callable[[list[list[str]], list[int]], None]


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


Lines = tuple[list[str], set[int], list[bytes] | None]


def _split_lines(body: bytes, encoding: str, final: bool) -> tuple[Lines, int]:
    """Decoded physical lines (with their ``\\n``), the indexes of lines holding
    undecodable bytes, the raw lines when there are such (else ``None``: the text
    re-encodes to the same bytes), and the byte length of the lines returned.

    The text after the last newline is included only when ``final``.
    """
    cut = body.rfind(b"\n") + 1
    size = len(body) if final else cut
    codec = codecs.lookup(encoding).name
    try:  # the common case: one decode, one split
        parts = body[:size].decode(codec).split("\n")
    except UnicodeDecodeError:
        return _decode_each(body[:size], codec), size
    last = parts.pop()
    texts = [part + "\n" for part in parts]
    if last:
        texts.append(last)
    return (texts, set(), None), size


def _decode_each(data: bytes, codec: str) -> Lines:
    raw = data.split(b"\n")
    last = raw.pop()
    lines = [line + b"\n" for line in raw] + ([last] if last else [])
    texts: list[str] = []
    broken: set[int] = set()
    for i, line in enumerate(lines):
        try:
            texts.append(line.decode(codec))
        except UnicodeDecodeError:
            texts.append(line.decode(codec, "replace"))
            broken.add(i)
    return texts, broken, lines


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


def read_rows(body: bytes, *, encoding: str, delimiter: str, first_line: int, final: bool,
              on_rows: RowSink, chunk_rows: int = 65536) -> RowsRead:
    """Read the records in ``body`` (which starts on a record boundary).

    Good rows are handed to ``on_rows(rows, lines)`` in chunks of at most
    ``chunk_rows`` (so a large block is never held as Python lists at once).
    ``first_line`` is the file line number of ``body``'s first line. Unless
    ``final``, an unterminated last line and a quoted field still open at the end
    are held back (``end`` stops before them); when ``final`` they are taken (an
    open quote then makes a :class:`BadRow`).
    """
    (texts, broken, raw), size = _split_lines(body, encoding, final)
    out = RowsRead(end=size)
    src = _Lines(texts)
    reader = csv.reader(src, delimiter=delimiter, strict=True)
    check_nul = b"\x00" in body
    while src.pos < len(texts):
        src.start = src.pos
        try:
            fields = next(reader)
        except StopIteration:
            break
        except (csv.Error, _Runaway) as exc:
            if "end of data" in str(exc) and not final:  # may still be completed
                out.end = (
                    len("".join(texts[: src.start]).encode(encoding)) if raw is None
                    else sum(len(line) for line in raw[: src.start])
                )
                break
            out.bad.append(BadRow(first_line + src.start, "invalid_row", _why(exc),
                                  texts[src.start]))
            src.pos = src.start + 1
            reader = csv.reader(src, delimiter=delimiter, strict=True)
            continue
        if not fields:
            continue
        if broken and _spans(src, broken):
            text = "".join(src.texts[src.start : src.pos])
            out.bad.append(BadRow(first_line + src.start, "invalid_encoding",
                                  _encoding_hint(encoding), text))
            continue
        if check_nul and any(_NUL in f for f in fields):
            text = "".join(src.texts[src.start : src.pos]).replace(_NUL, "")
            out.bad.append(BadRow(first_line + src.start, "invalid_row", "NUL byte in the row",
                                  text))
            continue
        out.rows.append(fields)
        out.lines.append(first_line + src.start)
        if len(out.rows) >= chunk_rows:
            on_rows(out.rows, out.lines)
            out.rows, out.lines = [], []
    if out.rows:
        on_rows(out.rows, out.lines)
        out.rows, out.lines = [], []
    return out


def _spans(src: _Lines, broken: set[int]) -> bool:
    """Whether the record just read covers a line with undecodable bytes."""
    if src.pos - src.start == 1:
        return src.start in broken
    return not broken.isdisjoint(range(src.start, src.pos))
