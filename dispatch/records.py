"""The unit of work: one call record, as a strategy hands it to the hub."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from dispatch.phone import InvalidPhone, normalize_phone
from dispatch.reasons import Reason

__all__ = ["DEFAULT_MAX_RECORD_BYTES", "Record", "json_problem"]

#: the default per-record limit on the serialised size of what goes on the wire
#: (metadata, greeting, prompt vars and config): far below the voice server's frame
#: limit (the sandbox allows 4 MiB), so that one record can never close the socket
DEFAULT_MAX_RECORD_BYTES = 65_536

#: containers nested deeper than this are refused (and recursion stays bounded)
_MAX_DEPTH = 64


def json_problem(
    value: object, path: str, _depth: int = 0, _seen: tuple[int, ...] = ()
) -> str | None:
    """Why ``value`` cannot be sent as JSON (``"field 'metadata.when': not JSON-serialisable
    (set)"``), or ``None``. Only dicts (keys: strings, or numbers, booleans and ``None``
    that JSON turns into strings), lists/tuples, strings, finite numbers, booleans and
    ``None``; no cycles. :meth:`Record.wire_problem` calls it to explain why
    ``json.dumps`` refused a record."""
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"field {path!r}: not a finite number ({value})"
    if not isinstance(value, dict | list | tuple):
        return f"field {path!r}: not JSON-serialisable ({type(value).__name__})"
    if id(value) in _seen:
        return f"field {path!r}: not JSON-serialisable (it contains itself)"
    if _depth >= _MAX_DEPTH:
        return f"field {path!r}: nested more than {_MAX_DEPTH} levels deep"
    seen = (*_seen, id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str | int | float | bool) and key is not None:
                return f"field {path!r}: key {key!r} is not a string"
            problem = json_problem(item, f"{path}.{key}", _depth + 1, seen)
            if problem:
                return problem
        return None
    for index, item in enumerate(value):
        problem = json_problem(item, f"{path}[{index}]", _depth + 1, seen)
        if problem:
            return problem
    return None


class Record(BaseModel):
    """A person to call, with everything the call needs.

    Building a ``Record`` never fails because of a bad phone number: the raw text
    is kept, :attr:`phone_error` says what is wrong, and the hub marks the record
    ``skipped`` with reason ``invalid_phone``. Other fields are validated normally
    (a missing ``id`` is a :class:`pydantic.ValidationError` that names the field).

    ``not_before`` is the earliest time the record may be dialled; a naive datetime
    is taken as UTC.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1)
    phone: str
    greeting: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    prompt_vars: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    not_before: dt.datetime | None = None
    default_region: str | None = Field(default=None, exclude=True, repr=False)

    _phone_error: str | None = PrivateAttr(default=None)

    @field_validator("id", "phone", mode="before")
    @classmethod
    def _coerce_text(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(int(value)) if float(value).is_integer() else str(value)
        return "" if value is None else value

    @field_validator("prompt_vars", mode="before")
    @classmethod
    def _vars_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value

    @field_validator("not_before")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value

    @model_validator(mode="after")
    def _normalise_phone(self) -> Record:
        self.normalize(self.default_region)
        return self

    def normalize(self, default_region: str | None) -> bool:
        """Try to put :attr:`phone` in E.164 form; return True on success.

        Called at construction with the record's own ``default_region`` and again
        by the hub with its own default when the record had none.
        """
        try:
            self.phone = normalize_phone(self.phone, default_region)
        except InvalidPhone as exc:
            self._phone_error = exc.why
            return False
        self._phone_error = None
        return True

    @property
    def phone_error(self) -> str | None:
        """Why :attr:`phone` cannot be dialled, or ``None`` when it is valid E.164."""
        return self._phone_error

    @property
    def invalid_detail(self) -> str | None:
        """Why this record must not be dialled because of bad input, else ``None``.

        A strategy that cannot map a row cleanly (e.g. a greeting template field is
        empty) still returns a Record and puts the explanation, naming the row and
        the field, in ``metadata["_invalid"]``; the hub then skips the record with
        reason ``invalid_record`` so that nothing is lost silently.
        """
        detail = self.metadata.get("_invalid")
        return str(detail) if detail else None

    @property
    def invalid_reason(self) -> Reason:
        """The reason to skip an invalid record with (``metadata["_invalid_reason"]``).

        Defaults to ``invalid_record``; a strategy may say ``invalid_row``,
        ``invalid_encoding`` or ``duplicate_id_conflict`` instead.
        """
        raw = self.metadata.get("_invalid_reason")
        try:
            return Reason(str(raw)) if raw else Reason.INVALID_RECORD
        except ValueError:
            return Reason.INVALID_RECORD

    @property
    def not_before_ts(self) -> float | None:
        """``not_before`` as epoch seconds."""
        return self.not_before.timestamp() if self.not_before else None

    def wire_problem(
        self, max_bytes: int | None = DEFAULT_MAX_RECORD_BYTES
    ) -> tuple[Reason, str] | None:
        """Why this record cannot be sent to the voice server, or ``None``.

        ``invalid_record`` when metadata, greeting, prompt vars or config are not
        plain JSON (the field is named); ``record_too_large`` when, serialised, they
        are over ``max_bytes`` (``None``: no limit). Fields may have been assigned
        after validation, so this is checked again by the hub before a record is
        stored or dialled.
        """
        fields = {"metadata": self.metadata, "greeting": self.greeting,
                  "prompt_vars": self.prompt_vars, "config": self.config}
        for name in ("metadata", "prompt_vars", "config"):
            if not isinstance(fields[name], dict):
                return Reason.INVALID_RECORD, (
                    f"field {name!r}: expected a dict, got {type(fields[name]).__name__}")
        try:  # the fast path, in C; the walk below only explains a refusal
            text = json.dumps(fields, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError) as exc:
            for name, value in fields.items():
                problem = json_problem(value, name)
                if problem:
                    return Reason.INVALID_RECORD, problem
            return Reason.INVALID_RECORD, f"not JSON-serialisable ({exc})"
        size = len(text.encode())
        if max_bytes is not None and size > max_bytes:
            return Reason.RECORD_TOO_LARGE, (
                f"metadata, greeting, prompt vars and config take {size:,} bytes; "
                f"the limit is {max_bytes:,} bytes (max_record_bytes)")
        return None

    def payload(self) -> dict[str, Any]:
        """What the store keeps besides id and phone (JSON-safe)."""
        return self.model_dump(mode="json", exclude={"id", "phone", "default_region"})
