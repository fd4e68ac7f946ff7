"""Turning CSV rows into :class:`~dispatch.records.Record` objects.

The default mapping (no ``map_row``):

* phone: the first column named ``phone``, ``phone_number``, ``number``, ``mobile``
  or ``tel`` (any case; spaces and dashes count as ``_``), or ``phone_column=``;
* id: the ``id`` column when there is one (blank -> content id), else
  :func:`content_id` -- a blake2b digest of the row's non-empty fields, sorted by
  column name, without the status/write-back columns. It does not depend on row
  order, column order, empty columns, polars or the process;
* greeting: ``greeting=`` template, ``str.format`` fields naming columns;
* metadata and prompt vars: every other column (empty -> ``""``);
* not_before: the ``not_before`` column, an ISO-8601 datetime, when present.

A row that cannot be mapped (empty greeting field, bad ``not_before``) still
becomes a Record, carrying ``metadata["_invalid"] = "line 7: ..."`` (the file
line the row starts on); the hub skips such records with reason ``invalid_record``.
Values are never expanded as templates: a name of ``{phone}`` stays literal.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dispatch.records import Record

__all__ = [
    "INVALID_KEY",
    "PHONE_COLUMN_NAMES",
    "DefaultMapper",
    "MappingError",
    "RowMapper",
    "content_id",
    "find_phone_column",
    "greeting_problem",
    "missing_phone_message",
]

INVALID_KEY = "_invalid"
PHONE_COLUMN_NAMES = ("phone", "phone_number", "number", "mobile", "tel")
_ID_DIGEST_BYTES = 12
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-]{7,}")

Row = dict[str, str | None]
RowMapper = Callable[[Row], "Record | Mapping[str, Any] | None"]


class MappingError(Exception):
    """The file's columns cannot be mapped (e.g. no phone column)."""


def _fold(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def find_phone_column(columns: Iterable[str], explicit: str | None = None) -> str | None:
    """The phone column among ``columns`` (``explicit`` wins; matched after folding)."""
    folded = {_fold(c): c for c in reversed(list(columns))}
    for wanted in (explicit,) if explicit else PHONE_COLUMN_NAMES:
        if _fold(wanted) in folded:
            return folded[_fold(wanted)]
    return None


def content_id(row: Mapping[str, str | None], exclude: Iterable[str] = ()) -> str:
    """A stable id for a row: blake2b of its non-empty (stripped) fields by column name."""
    skip = set(exclude)
    digest = hashlib.blake2b(digest_size=_ID_DIGEST_BYTES)
    for name in sorted(row):
        value = (row[name] or "").strip()
        if value and name not in skip:
            digest.update(f"{name.strip()}\x1f{value}\x1e".encode())
    return digest.hexdigest()


def _template_fields(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def missing_phone_message(source: str, columns: list[str], wanted: str | None = None) -> str:
    """One line saying why ``source`` has no usable phone column (or no header at all)."""
    names = wanted or ", ".join(PHONE_COLUMN_NAMES)
    found = ", ".join(columns) or "(none)"
    if any(_PHONE_LIKE.fullmatch(c.strip()) for c in columns):
        return (
            f"{source} has no header row: its first line looks like data ({found}); "
            f"expected a header line naming the phone column ({names})"
        )
    return f"{source} has no phone column: expected one of {names}; found columns: {found}"


def greeting_problem(template: str, columns: list[str], source: str) -> str | None:
    """Why ``template`` cannot be rendered from ``source``'s columns, or ``None``."""
    listed = ", ".join(columns)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"--greeting template is not valid: {exc} (write a literal brace as {{{{ or }}}})"
    for field in fields:
        if not field or field.isdigit() or "." in field or "[" in field:
            return f"--greeting field {{{field}}} must name a column, e.g. {{name}}"
        if field not in columns:
            return (
                f"--greeting uses {{{field}}} but {source} has no column {field!r} "
                f"(columns: {listed})"
            )
    try:
        template.format_map({c: "x" for c in columns})
    except (ValueError, KeyError, IndexError) as exc:
        return f"--greeting template cannot be rendered: {exc}"
    return None


class DefaultMapper:
    """The mapping used when no ``map_row`` is given (see the module docstring).

    Call :meth:`bind` with the header's columns before mapping rows.
    """

    def __init__(
        self,
        *,
        greeting: str | None = None,
        phone_column: str | None = None,
        id_column: str = "id",
        not_before_column: str = "not_before",
        default_region: str | None = None,
        exclude: Iterable[str] = (),
        source: str = "the csv file",
    ) -> None:
        self.source = source
        self._greeting = greeting
        self._phone_wanted = phone_column
        self._id_wanted = id_column
        self._not_before_wanted = not_before_column
        self._default_region = default_region
        self._exclude = frozenset(exclude)
        self._phone = ""
        self._id: str | None = None
        self._not_before: str | None = None
        self._data_columns: list[str] = []

    def bind(self, columns: list[str]) -> list[str]:
        """Resolve columns; return warnings. Raises :class:`MappingError` without a phone column."""
        phone = find_phone_column(columns, self._phone_wanted)
        if phone is None:
            raise MappingError(missing_phone_message(self.source, columns, self._phone_wanted))
        self._phone = phone
        self._id = self._id_wanted if self._id_wanted in columns else None
        self._not_before = self._not_before_wanted if self._not_before_wanted in columns else None
        special = {phone, self._id} | self._exclude
        self._data_columns = [c for c in columns if c not in special]
        unknown = [f for f in _template_fields(self._greeting or "") if f not in columns]
        return [f"greeting field {f!r} is not a column" for f in unknown]

    def __call__(self, row_no: int, row: Row) -> Record:
        """Map one row; never raises (problems become an ``_invalid`` record)."""
        fields = {c: (row.get(c) or "").strip() for c in self._data_columns}
        problem, greeting, not_before = None, None, None
        try:
            greeting = self._render_greeting(row)
            not_before = self._parse_not_before(row)
        except ValueError as exc:
            problem = f"line {row_no}: {exc}"
        metadata: dict[str, Any] = dict(fields)
        if problem:
            metadata[INVALID_KEY] = problem
        return Record(
            id=self._record_id(row),
            phone=row.get(self._phone) or "",
            greeting=greeting,
            metadata=metadata,
            prompt_vars=fields,
            not_before=not_before,
            default_region=self._default_region,
        )

    def explicit_id(self, row: Row) -> bool:
        """Whether this row's id comes from the id column (not from its content)."""
        return bool(self._id and (row.get(self._id) or "").strip())

    def _record_id(self, row: Row) -> str:
        explicit = (row.get(self._id) or "").strip() if self._id else ""
        return explicit or content_id(row, self._exclude)

    def _render_greeting(self, row: Row) -> str | None:
        if self._greeting is None:
            return None
        for field in _template_fields(self._greeting):
            if field not in row:
                raise ValueError(f"greeting field {field!r} is not a column")
            if not (row[field] or "").strip():
                raise ValueError(f"greeting field {field!r} is empty")
        values = {k: (v or "").strip() for k, v in row.items()}
        try:
            return self._greeting.format_map(values)
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            raise ValueError(f"greeting template cannot be rendered: {exc!r}") from exc

    def _parse_not_before(self, row: Row) -> dt.datetime | None:
        raw = (row.get(self._not_before) or "").strip() if self._not_before else ""
        if not raw:
            return None
        try:
            return dt.datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(f"not_before {raw!r} is not an ISO-8601 datetime") from None


def call_row_mapper(map_row: RowMapper, row: Row) -> Record | None:
    """Run a user ``map_row``; a mapping result is validated into a :class:`Record`.

    Raises whatever ``map_row`` raises, :class:`pydantic.ValidationError` for a bad
    mapping and :class:`TypeError` for any other return type.
    """
    result = map_row(row)
    if result is None or isinstance(result, Record):
        return result
    if isinstance(result, Mapping):
        return Record.model_validate(dict(result))
    raise TypeError(f"map_row returned {type(result).__name__}, expected Record, dict or None")
