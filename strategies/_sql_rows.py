"""One database row -> one :class:`~dispatch.records.Record`, never raising.

A row that cannot be mapped cleanly still becomes a Record, with the problem in
``metadata["_invalid"]`` naming the field and its column, so the hub skips it
with a reason instead of dropping it:

* no usable id (NULL, empty, control characters, over 255 characters): reason
  ``invalid_row``, id ``row:<hash of the row>`` (no real id can look like that);
* an empty phone, a greeting field that is empty, a ``not_before`` that is not a
  datetime, a ``timezone`` that is not text: reason ``invalid_record``.

Values of other types are made JSON-safe for metadata (datetimes as ISO-8601,
decimals and UUIDs as text, bytes refused by name).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import string
import uuid
from collections.abc import Mapping
from typing import Any

from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.strategies._csv_mapping import INVALID_KEY
from dispatch.strategies._sql_config import SqlMapping

__all__ = ["BAD_ID_PREFIX", "RowMapper", "json_value"]

BAD_ID_PREFIX = "row:"
_MAX_ID_CHARS = 255
_REASON_KEY = "_invalid_reason"


def json_value(value: Any) -> Any:
    """``value`` as something JSON can hold; ``TypeError`` for bytes and other blobs."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return value
    raise TypeError(f"{type(value).__name__} values cannot be sent to the agent")


def _text(value: Any) -> str:
    value = json_value(value)
    return "" if value is None else str(value).strip()


def _safe_text(value: Any) -> str:
    try:
        return _text(value)
    except TypeError:
        return ""


def _row_hash(row: Mapping[str, Any]) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for key in sorted(row):
        digest.update(f"{key}\x1f{row[key]!r}\x1e".encode())
    return digest.hexdigest()


def _template_fields(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


class RowMapper:
    """Maps rows with a :class:`SqlMapping`; :meth:`__call__` never raises."""

    def __init__(self, mapping: SqlMapping, *, default_region: str | None) -> None:
        self.mapping = mapping
        self._default_region = default_region
        self._fields = _template_fields(mapping.greeting or "")

    def record_id(self, row: Mapping[str, Any]) -> tuple[str, str | None]:
        """The record id and, when the id column is unusable, why."""
        column = self.mapping.id_column
        raw = row.get(column)
        text = "" if raw is None or isinstance(raw, bytes) else str(raw).strip()
        why = None
        if not text:
            why = "is empty" if raw is None or not isinstance(raw, bytes) else "is binary"
        elif len(text) > _MAX_ID_CHARS:
            why = f"is longer than {_MAX_ID_CHARS} characters"
        elif any(ord(ch) < 32 for ch in text):
            why = "contains a control character"
        if why is None:
            return text, None
        return f"{BAD_ID_PREFIX}{_row_hash(row)}", f"field 'id' (column {column!r}) {why}"

    def __call__(self, row: Mapping[str, Any]) -> Record:
        rid, id_problem = self.record_id(row)
        problems: list[str] = [id_problem] if id_problem else []
        metadata, prompt_vars = self._metadata(row, problems)
        phone = _safe_text(row.get(self.mapping.phone_column))
        if not phone:
            problems.append(f"field 'phone' (column {self.mapping.phone_column!r}) is empty")
        greeting = self._greeting(row, problems)
        not_before = self._not_before(row, problems)
        self._timezone(row, metadata, problems)
        if problems:
            metadata[INVALID_KEY] = "; ".join(problems)
            metadata[_REASON_KEY] = (Reason.INVALID_ROW if id_problem
                                     else Reason.INVALID_RECORD).value
        return Record(id=rid, phone=phone, greeting=greeting, metadata=metadata,
                      prompt_vars=prompt_vars, not_before=not_before,
                      default_region=self._default_region)

    def _metadata(
        self, row: Mapping[str, Any], problems: list[str]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        wanted = self.mapping.metadata_columns
        special = self.mapping.special()
        names = list(wanted) if wanted is not None else [c for c in row if c not in special]
        metadata: dict[str, Any] = {}
        for name in names:
            try:
                metadata[name] = json_value(row.get(name))
            except TypeError as exc:
                problems.append(f"field {name!r}: {exc}")
        prompt_vars = {k: "" if v is None else str(v) for k, v in metadata.items()}
        return metadata, prompt_vars

    def _greeting(self, row: Mapping[str, Any], problems: list[str]) -> str | None:
        template = self.mapping.greeting
        if template is None:
            return None
        values: dict[str, str] = {}
        for field in self._fields:
            values[field] = _safe_text(row.get(field))
            if not values[field]:
                problems.append(f"greeting field {field!r} is empty")
                return None
        try:
            return template.format_map(values)
        except (KeyError, IndexError, AttributeError, ValueError) as exc:
            problems.append(f"greeting template cannot be rendered: {exc!r}")
            return None

    def _not_before(self, row: Mapping[str, Any], problems: list[str]) -> dt.datetime | None:
        column = self.mapping.not_before_column
        raw = row.get(column) if column else None
        if raw is None or raw == "":
            return None
        if isinstance(raw, dt.datetime):
            return raw
        try:
            return dt.datetime.fromisoformat(str(raw).strip())
        except ValueError:
            problems.append(f"field 'not_before' (column {column!r}): {str(raw)[:40]!r} "
                            "is not a datetime")
            return None

    def _timezone(
        self, row: Mapping[str, Any], metadata: dict[str, Any], problems: list[str]
    ) -> None:
        column = self.mapping.timezone_column
        if not column:
            return
        raw = row.get(column)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return
        if not isinstance(raw, str):
            problems.append(f"field 'timezone' (column {column!r}): expected a zone name "
                            f"such as America/New_York, got {type(raw).__name__}")
            return
        metadata["timezone"] = raw.strip()  # checked by the compliance policies
