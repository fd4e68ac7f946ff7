"""Admitting polled records: validation, phone re-normalisation, dedup by id.

Pure (no I/O): :func:`admit` sorts a poll's items into new records to dial and
records to skip, given which of their ids the strategy's source already has
(the caller asks the store: :func:`dispatch.hub.polling.admit_items`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from dispatch.phone import is_dialable
from dispatch.reasons import Reason
from dispatch.records import DEFAULT_MAX_RECORD_BYTES, Record

__all__ = ["Admission", "Skip", "admit", "describe_validation_error", "item_id", "recheck"]


@dataclasses.dataclass(frozen=True, slots=True)
class Skip:
    """A record that will never be dialled, and why."""

    record: Record
    reason: Reason
    error: str
    persist: bool  # False for in-poll duplicates (the id belongs to the first row)


@dataclasses.dataclass(slots=True)
class Admission:
    new: list[Record] = dataclasses.field(default_factory=list)
    skipped: list[Skip] = dataclasses.field(default_factory=list)
    rejected: list[str] = dataclasses.field(default_factory=list)  # errors with no usable id
    #: ids of the records to store (new and persisted skips), in the poll's order
    order: list[str] = dataclasses.field(default_factory=list)


def item_id(item: object) -> str | None:
    """The id a poll item claims (before validation), or ``None`` if it has none."""
    if isinstance(item, Record):
        return item.id if isinstance(item.id, str) and item.id else None
    if isinstance(item, dict):
        raw = item.get("id")
        return None if raw in (None, "") else str(raw).strip()
    return None


def describe_validation_error(exc: ValidationError, record_id: object) -> str:
    """``record 'x': field 'phone': Input should be a valid string`` (first error)."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or "?"
    return f"record {record_id!r}: field {field!r}: {first.get('msg', 'invalid')}"


def _placeholder(item: dict[str, Any], record_id: str) -> Record:
    phone = item.get("phone")
    return Record.model_construct(
        id=record_id,
        phone=str(phone) if phone is not None else "",
        greeting=None,
        metadata={},
        prompt_vars={},
        config={},
        not_before=None,
        default_region=None,
    )


def _coerce(
    index: int, item: object, admission: Admission, seen: set[str], known: set[str]
) -> Record | None:
    if isinstance(item, Record):
        if isinstance(item.id, str) and item.id:
            return item
        admission.rejected.append(f"item {index} of the poll: a Record without a usable id "
                                  f"({item.id!r})")
        return None
    if not isinstance(item, dict):
        admission.rejected.append(
            f"item {index} of the poll: {type(item).__name__}, expected a Record or a dict")
        return None
    try:
        return Record.model_validate(item)
    except ValidationError as exc:
        raw_id = item.get("id")
        text = describe_validation_error(exc, raw_id)
        record_id = str(raw_id).strip() if raw_id not in (None, "") else ""
        if record_id in known:
            return None  # reported when first seen; strategies may return rows again
        if not record_id or record_id in seen:
            admission.rejected.append(text)
            return None
        seen.add(record_id)
        placeholder = _placeholder(item, record_id)
        admission.skipped.append(Skip(placeholder, Reason.INVALID_RECORD, text, persist=True))
        admission.order.append(record_id)
        return None


def admit(
    items: Iterable[object],
    *,
    known: set[str],
    default_region: str | None,
    max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES,
) -> Admission:
    """Classify one poll's items.

    - an id in ``known`` (stored already for this source) is ignored (strategies may
      return records again);
    - a second row with an id already seen in this poll is skipped ``duplicate``
      (reported once: on the next poll both ids are known);
    - a bad phone (after re-normalising with ``default_region`` when the record had
      no region of its own) is skipped ``invalid_phone``;
    - a dict failing validation, or a record a strategy marked invalid
      (``metadata["_invalid"]``, e.g. an empty greeting field), is skipped
      ``invalid_record`` with the row and field named;
    - metadata, greeting, prompt vars or config that are not plain JSON are skipped
      ``invalid_record`` naming the field; over ``max_record_bytes`` serialised, they
      are skipped ``record_too_large`` (nothing of such a record is sent);
    - an item that is neither a ``Record`` nor a dict is rejected (``rejected``),
      naming its index and type; the rest of the poll goes on.
    """
    admission = Admission()
    seen: set[str] = set()
    for index, item in enumerate(items):
        record = _coerce(index, item, admission, seen, known)
        if record is None or record.id in known:
            continue
        if record.id in seen:
            error = f"record {record.id!r}: duplicate id in the same poll"
            admission.skipped.append(Skip(record, Reason.DUPLICATE, error, persist=False))
            continue
        seen.add(record.id)
        admission.order.append(record.id)
        skip = recheck(record, default_region, max_record_bytes)
        if skip is not None:
            admission.skipped.append(skip)
            continue
        admission.new.append(record)
    return admission


def recheck(record: Record, default_region: str | None, max_bytes: int | None) -> Skip | None:
    """Everything but the id: a strategy's own verdict (``metadata["_invalid"]``), the
    phone, then what goes on the wire. A :class:`Skip`, or ``None`` to dial."""
    if record.invalid_detail is not None:
        error = f"record {record.id!r}: {record.invalid_detail}"
        return Skip(record, record.invalid_reason, error, persist=True)
    return _check(record, default_region, max_bytes)


def _check(record: Record, default_region: str | None, max_bytes: int | None) -> Skip | None:
    """The phone, then what goes on the wire: a :class:`Skip`, or ``None`` to dial."""
    if record.phone_error is not None and default_region and not record.default_region:
        record.normalize(default_region)
    if record.phone_error is None and not is_dialable(record.phone):
        record.normalize(default_region)  # assigned after validation: check it now
    if record.phone_error is not None:
        error = f"record {record.id!r}: field 'phone': {record.phone_error}"
        return Skip(record, Reason.INVALID_PHONE, error, persist=True)
    problem = record.wire_problem(max_bytes)
    if problem is None:
        return None
    reason, text = problem
    if reason is Reason.RECORD_TOO_LARGE:
        record = _placeholder({"phone": record.phone}, record.id)  # never store the bulk
    return Skip(record, reason, f"record {record.id!r}: {text}", persist=True)
