"""Byte-level CSV helpers: record boundaries, header format, parsing through polars.

Quoting follows RFC 4180 as polars does: a ``"`` toggles the quoted state and a
doubled ``""`` inside quotes toggles twice, so the parity of quote characters
before a newline tells whether that newline ends a record.
"""

from __future__ import annotations

import codecs
import dataclasses
import io

import polars as pl

__all__ = [
    "BOM",
    "CsvFormat",
    "Sniffed",
    "detect_format",
    "first_record_end",
    "last_record_end",
    "parse_csv",
    "quotes_balanced",
    "sniff",
    "to_parseable",
]

BOM = codecs.BOM_UTF8
_CANDIDATE_DELIMITERS = (",", ";", "\t", "|")


@dataclasses.dataclass(frozen=True, slots=True)
class CsvFormat:
    """How a file is written, learnt from its header line.

    ``header`` is the raw header record (without BOM, with its line ending);
    ``header_end`` is the byte offset just after it in the file.
    """

    delimiter: str
    encoding: str
    bom: bool
    crlf: bool
    header: bytes
    header_end: int
    cr_only: bool = False

    @property
    def line_terminator(self) -> str:
        if self.cr_only:
            return "\r"
        return "\r\n" if self.crlf else "\n"


_SNIFF_BYTES = 4096
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13))


@dataclasses.dataclass(frozen=True, slots=True)
class Sniffed:
    """What the first bytes of a file say about how to read it.

    ``utf16``: the codec when the file starts with a UTF-16 BOM (it is then
    transcoded to UTF-8 as a whole); ``cr_only``: lines end with a lone CR (read
    as LF, byte for byte); ``binary``: why the file is not text at all.
    """

    utf16: str | None = None
    cr_only: bool = False
    binary: str | None = None


def sniff(head: bytes) -> Sniffed:
    """Classify a file from its first bytes (see :class:`Sniffed`)."""
    for bom, codec in _UTF16_BOMS:
        if head.startswith(bom):
            return Sniffed(utf16=codec)
    sample = head[:_SNIFF_BYTES]
    first_line = sample.split(b"\n", 1)[0]
    if b"\x00" in first_line or sample.count(b"\x00") * 100 > len(sample):
        return Sniffed(binary="it contains NUL bytes: binary data, or UTF-16 without a BOM")
    controls = sum(sample.count(bytes([b])) for b in _CONTROL)
    if sample and controls * 10 > len(sample):
        return Sniffed(binary="it is mostly control bytes: binary data")
    nl, cr = sample.find(b"\n"), sample.find(b"\r")
    # the first line ends with a CR that is not part of a CRLF
    cr_only = cr >= 0 and (nl < 0 or cr < nl) and sample[cr + 1 : cr + 2] != b"\n"
    return Sniffed(cr_only=cr_only)


def to_parseable(data: bytes, sniffed: Sniffed) -> bytes:
    """Bytes the parser can read: UTF-16 transcoded to UTF-8, lone CRs made LF.

    CR -> LF keeps every byte offset, so incremental reads still work; a UTF-16
    file is always re-read whole (an odd trailing byte is held back).
    """
    if sniffed.utf16:
        usable = data[: len(data) - len(data) % 2]
        return usable.decode(sniffed.utf16, "replace").lstrip("\ufeff").encode("utf-8")
    if sniffed.cr_only:
        return data.replace(b"\r", b"\n")
    return data


def last_record_end(data: bytes, start: int = 0, end: int | None = None) -> int:
    """Offset just after the last newline in ``data[start:end]`` that is outside quotes.

    ``start`` must be a record boundary. Returns ``start`` when no complete record
    ends in the range.
    """
    end = len(data) if end is None else end
    quotes = data.count(b'"', start, end)
    pos = data.rfind(b"\n", start, end)
    while pos >= 0:
        quotes -= data.count(b'"', pos, end)
        if quotes % 2 == 0:
            return pos + 1
        end = pos
        pos = data.rfind(b"\n", start, end)
    return start


def first_record_end(data: bytes, start: int = 0) -> int:
    """Offset just after the first newline outside quotes at or after ``start`` (or ``start``)."""
    pos = start
    while (nl := data.find(b"\n", pos)) >= 0:
        if data.count(b'"', start, nl) % 2 == 0:
            return nl + 1
        pos = nl + 1
    return start


def quotes_balanced(data: bytes, start: int = 0) -> bool:
    """True when ``data[start:]`` (starting at a record boundary) ends outside quotes."""
    return data.count(b'"', start) % 2 == 0


def _detect_delimiter(header: bytes) -> str:
    """The candidate delimiter that occurs most often in the header line (``,`` if none)."""
    counts = {d: header.count(d.encode()) for d in _CANDIDATE_DELIMITERS}
    best = max(_CANDIDATE_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def detect_format(
    head: bytes, *, encoding: str, delimiter: str | None, at_eof: bool, cr_only: bool = False
) -> CsvFormat | None:
    """Learn the format from the first bytes of a file; ``None`` while the header is incomplete.

    When ``at_eof`` is true, ``head`` is the whole (settled) file and a header line
    without a newline is accepted.
    """
    bom = head.startswith(BOM)
    start = len(BOM) if bom else 0
    end = first_record_end(head, start)
    if end == start:
        if not (at_eof and len(head) > start and quotes_balanced(head, start)):
            return None
        end = len(head)
    header = head[start:end]
    return CsvFormat(
        delimiter=delimiter or _detect_delimiter(header),
        encoding=encoding,
        bom=bom,
        crlf=header.endswith(b"\r\n"),
        header=header if header.endswith(b"\n") else header + b"\n",
        header_end=end,
        cr_only=cr_only,
    )


def is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name in {"utf-8", "utf-8-sig"}


def parse_csv(source: bytes | str, fmt: CsvFormat) -> pl.DataFrame:
    """Parse UTF-8 CSV bytes (or a UTF-8 file path) with every column as ``String``.

    Ragged rows are padded with nulls or truncated; raises :class:`polars.exceptions.
    PolarsError` on malformed input (e.g. an unterminated quote).
    """
    return pl.read_csv(
        io.BytesIO(source) if isinstance(source, bytes) else source,
        separator=fmt.delimiter,
        infer_schema=False,
        truncate_ragged_lines=True,
        raise_if_empty=False,
        quote_char='"',
    )
