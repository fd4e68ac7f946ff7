"""A corpus of hostile CSV files, each with exactly what reading it must give.

A :class:`Doc` is written line by line; every good row's phone is derived from
the line it starts on (:func:`phone_for`), so a test can tell which rows came
through. Each :class:`Shape` says which lines are good, which lines are skipped
and why, or that the file is refused (a substring of the one-line reason).
"""

from __future__ import annotations

import codecs
import dataclasses
import random
from collections.abc import Callable
from typing import Any

from dispatch.records import Record

__all__ = ["SHAPES", "Collect", "Doc", "Shape", "phone_for"]


def phone_for(line: int) -> str:
    """The E.164 phone of the good row starting on ``line``."""
    return f"+1415{line:07d}"


@dataclasses.dataclass
class Shape:
    name: str
    data: bytes
    good: list[int] = dataclasses.field(default_factory=list)
    bad: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    unusable: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    check: Callable[[list[Record]], None] | None = None


class Doc:
    """Builds a file line by line; ``{P}`` in a row is its phone, ``{L}`` its line."""

    def __init__(self, header: str = "name,phone,notes", *, nl: str = "\n",
                 bom: bool = False) -> None:
        self.nl = nl
        self.parts: list[str] = [("\ufeff" if bom else "") + header + nl]
        self.line = 2 + header.count("\n")
        self.good: list[int] = []
        self.bad: list[tuple[int, str]] = []

    def row(self, text: str = "n{L},{P},note {L}") -> Doc:
        self.good.append(self.line)
        return self._add(text)

    def rows(self, count: int, text: str = "n{L},{P},note {L}") -> Doc:
        for _ in range(count):
            self.row(text)
        return self

    def bad_row(self, text: str, reason: str = "invalid_row") -> Doc:
        self.bad.append((self.line, reason))
        return self._add(text)

    def ignored(self, text: str) -> Doc:
        """A line that is neither a record nor a problem (blank, whitespace)."""
        return self._add(text)

    def _add(self, text: str) -> Doc:
        text = text.replace("{L}", str(self.line)).replace("{P}", phone_for(self.line))
        self.parts.append(text + self.nl)
        self.line += text.count("\n") + 1
        return self

    def text(self, *, final_newline: bool = True) -> str:
        body = "".join(self.parts)
        return body if final_newline else body[: -len(self.nl)]

    def shape(self, name: str, *, encoding: str = "utf-8", final_newline: bool = True,
              **extra: Any) -> Shape:
        data = self.text(final_newline=final_newline).encode(encoding)
        return Shape(name, data, list(self.good), list(self.bad), **extra)


def _encodings() -> list[Shape]:
    latin = Doc().row().bad_row("José,{P},café", "invalid_encoding").row()
    latin_bytes = latin.text().encode("latin-1")
    utf16 = Doc().row("Zoë,{P},naïve").rows(2)
    return [
        Doc().row("José Müller,{P},Zoë").rows(2).shape("utf8"),
        Doc(bom=True).rows(3).shape("utf8_bom"),
        Shape("latin1_read_as_utf8", latin_bytes, latin.good, latin.bad),
        Shape("latin1_with_encoding", latin_bytes, sorted([*latin.good, 3]), [],
              options={"encoding": "latin-1"}),
        Shape("utf16_le_bom", codecs.BOM_UTF16_LE + utf16.text().encode("utf-16-le"),
              utf16.good),
        Shape("utf16_be_bom", codecs.BOM_UTF16_BE + utf16.text().encode("utf-16-be"),
              utf16.good),
        _with_bytes("invalid_byte_mid_file", b"\xff"),
        _with_bytes("cp1252_quotes_as_utf8", b"\x93hi\x94"),
        _with_bytes("truncated_utf8_sequence", b"\xe2\x82"),
    ]


def _with_bytes(name: str, junk: bytes) -> Shape:
    doc = Doc().rows(2).bad_row("MARK,{P},x", "invalid_encoding").rows(2)
    return Shape(name, doc.text().encode().replace(b"MARK", b"n" + junk), doc.good, doc.bad)


def _quoting() -> list[Shape]:
    return [
        Doc().row().row('ab"cd,{P},5" screen').row().shape("stray_quote_in_field"),
        Doc().row('O"Brien,{P},a"b"c').row('x",{P},y"').rows(2).shape("stray_quotes_many"),
        Doc().row().bad_row('n{L},{P},"unclosed').rows(3).shape("unclosed_quote_mid_file"),
        Doc().row().bad_row('n{L},{P},"unclosed').rows(2).row('n{L},{P},"a, b"').row()
        .shape("unclosed_quote_then_quoted_field"),
        Doc().rows(2).bad_row('n{L},{P},"never closed').shape("unclosed_quote_at_eof"),
        Doc().rows(2).bad_row('n{L},{P},"never closed')
        .shape("unclosed_quote_at_eof_no_newline", final_newline=False),
        Doc().row('"Doe, Jane",{P},"line one\nline, two"').row('"a ""b"" c",{P},"x\r\ny"')
        .row().shape("quotes_with_newlines_and_delimiters"),
        Doc().row().bad_row('n{L},{P},"x"y').row().shape("text_after_closing_quote"),
        Doc().row('n{L},{P},"' + "a,b\n" * 20 + 'end"').row().shape("quoted_field_of_20_lines"),
        _runaway(),
    ]


def _runaway() -> Shape:
    """An open quote followed by 150 good rows and no closing quote anywhere."""
    doc = Doc().row().bad_row('n{L},{P},"open').rows(150)
    return doc.shape("unclosed_quote_before_150_rows")


def _delimiters() -> list[Shape]:
    return [
        Doc("name;phone;notes").rows(2, "n{L};{P};a, b").shape("semicolon"),
        Doc("name\tphone\tnotes").rows(2, "n{L}\t{P}\ta, b; c").shape("tab"),
        Doc("name|phone|notes").rows(2, "n{L}|{P}|a, b").shape("pipe"),
        Doc("name;phone;amount").rows(2, "n{L};{P};1,50").shape("semicolon_decimal_commas"),
        Doc("phone;notes").rows(2, "{P};a,b,c,d").shape("delimiter_forced",
                                                        options={"delimiter": ";"}),
    ]


def _line_endings() -> list[Shape]:
    mixed = Doc().row()
    mixed.parts.append(f"n3,{phone_for(3)},crlf\r\n")
    mixed.line, mixed.good = 4, [*mixed.good, 3]
    mixed.row()
    return [
        Doc(nl="\r\n").rows(3).shape("crlf"),
        Doc(nl="\r").rows(3).shape("cr_only"),
        Doc(nl="\r").row('"a\rb",{P},x').row().shape("cr_only_quoted_newline"),
        mixed.shape("mixed_lf_crlf"),
        Doc().rows(3).shape("no_final_newline", final_newline=False),
    ]


class Collect:
    """A ``map_row`` that keeps each row's phone and builds no Record.

    Building a Record (phone-number parsing) costs ~40 us a row; the 50k-row
    shapes test reading, so they collect the phones of the rows read instead.
    """

    def __init__(self) -> None:
        self.phones: list[str] = []

    def __call__(self, row: dict[str, str | None]) -> None:
        self.phones.append(row["phone"] or "")


def _sizes() -> list[Shape]:
    rng = random.Random(7)
    big = Doc().row().row("n{L},{P}," + "".join(rng.choice("abc ,") for _ in range(200)))
    long_field = "x" * (1 << 20)
    big_bad = Doc().rows(25_000).bad_row('n{L},{P},"open', "invalid_row").rows(24_999)
    return [
        Shape("empty", b"", unusable="is empty"),
        Shape("whitespace_only_file", b"  \n\n \n", unusable="is empty"),
        Doc().shape("header_only"),
        Doc(bom=True, nl="\r\n").shape("header_only_bom_crlf"),
        Doc().row().shape("one_row"),
        Doc().row().row("n{L},{P}," + long_field).row().shape("field_of_1mb"),
        Doc().row().row('n{L},{P},"' + long_field + '"').shape("quoted_field_of_1mb"),
        big.shape("random_punctuation"),
        Doc().rows(50_000).shape("rows_50k", options={"map_row": Collect()}),
        big_bad.shape("rows_50k_one_unclosed_quote", options={"map_row": Collect()}),
    ]


def _contents() -> list[Shape]:
    def formulas_kept(records: list[Record]) -> None:
        assert [r.metadata["name"] for r in records] == ['=HYPERLINK("http://x","y")',
                                                         "@SUM(A1)", "-2+3"]

    def braces_literal(records: list[Record]) -> None:
        assert [r.greeting for r in records] == ["Hi {phone}!", "Hi {{x}} {0}!"]

    return [
        Doc().row('"=HYPERLINK(""http://x"",""y"")",{P},=2+3').row("@SUM(A1),{P},+cmd")
        .row("-2+3,{P},\t=x").shape("formulas_in_cells", check=formulas_kept),
        Doc().row("{phone},{P},x").row("{{x}} {0},{P},y")
        .shape("braces_in_data", options={"greeting": "Hi {name}!"}, check=braces_literal),
        Doc().row("n{L},{P}").row(",{P}").ignored(",,").row().shape("missing_fields"),
        Doc().row("n{L},{P},a,b,c").row().shape("extra_fields"),
        Doc("name,name,phone").rows(2, "a,b,{P}").shape("duplicate_column_names"),
        Doc("name,,phone, ").rows(2, "a,b,{P},c").shape("blank_header_names"),
        Doc().row().ignored("   ").ignored(" , , ").ignored("").row().shape("blank_and_ws_rows"),
        _with_nul(),
        Doc("id,phone,name").row("a1,{P},x").ignored("a1,+14150000002,x").row("b2,{P},y")
        .shape("identical_duplicate_ids"),
        _conflict(),
        Doc("name,email").rows(2, "n,e@x").shape("no_phone_column",
                                                  unusable="has no phone column"),
        Shape("no_header_row", b"+14155550001,Ana\n+14155550002,Bob\n",
              unusable="has no header row"),
        Shape("binary_junk", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,
              unusable="not a text CSV file"),
        Shape("utf16_without_bom", "phone\n+14155550001\n".encode("utf-16-le"),
              unusable="not a text CSV file"),
    ]


def _with_nul() -> Shape:
    doc = Doc().rows(2).bad_row("nMARK,{P},x", "invalid_row").rows(2)
    return Shape("nul_byte_in_row", doc.text().encode().replace(b"MARK", b"\x00"),
                 doc.good, doc.bad)


def _conflict() -> Shape:
    doc = Doc("id,phone,name").row("a1,{P},x").row("b2,{P},y")
    doc.bad.append((doc.line, "duplicate_id_conflict"))
    doc.parts.append(f"a1,{phone_for(9)},x\n")
    return doc.shape("conflicting_duplicate_ids")


SHAPES: list[Shape] = [
    *_encodings(), *_quoting(), *_delimiters(), *_line_endings(), *_sizes(), *_contents()
]
