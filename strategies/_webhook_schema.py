"""Strict JSON schema of the intake: one record, ``{"records": [...]}`` or a list.

Every record is checked on its own and every problem is reported with the record's
index and the field (``records[3].phone: ...``), so a sender can fix a batch in one
round; a batch with any bad record is refused as a whole (nothing is enqueued).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from dispatch.records import Record

__all__ = ["MAX_BATCH", "BatchInvalid", "IntakeRecord", "parse_batch"]

#: records in one request at most
MAX_BATCH = 1000


class IntakeRecord(BaseModel):
    """One record as pushed to the intake (unknown fields are refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    phone: StrictStr = Field(min_length=1, max_length=64)
    greeting: StrictStr | None = Field(default=None, max_length=4000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    prompt_vars: dict[str, StrictStr] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    not_before: dt.datetime | None = Field(default=None, strict=False)


class BatchInvalid(Exception):
    """The body is JSON but not a valid batch; ``errors`` name index and field."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['loc']}: {e['error']}" for e in errors[:5]))
        self.errors = errors


def _items(data: Any) -> list[Any]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and set(data) == {"records"}:
        if not isinstance(data["records"], list):
            raise BatchInvalid([{"index": None, "field": "records", "loc": "records",
                                 "error": "must be a list of records"}])
        return data["records"]
    if isinstance(data, dict):
        return [data]
    raise BatchInvalid([{"index": None, "field": None, "loc": "body",
                         "error": "expected a record object, a list or {\"records\": [...]}"}])


def _error(index: int, field: str, text: str) -> dict[str, Any]:
    return {"index": index, "field": field, "loc": f"records[{index}].{field}", "error": text}


def _one(index: int, item: Any, region: str | None, id_prefix: str) -> tuple[Record | None,
                                                                         list[dict[str, Any]]]:
    try:
        parsed = IntakeRecord.model_validate(item)
    except ValidationError as exc:
        return None, [_error(index, ".".join(str(p) for p in e["loc"]) or "record", e["msg"])
                      for e in exc.errors(include_url=False, include_input=False)]
    fields = parsed.model_dump(exclude_none=True)
    fields["id"] = parsed.id or f"{id_prefix}{index}"
    try:
        record = Record(**fields, default_region=region)
    except ValidationError as exc:
        return None, [_error(index, ".".join(str(p) for p in e["loc"]) or "record", e["msg"])
                      for e in exc.errors(include_url=False, include_input=False)]
    if record.phone_error is not None:
        return None, [_error(index, "phone", record.phone_error)]
    return record, []


def parse_batch(data: Any, *, region: str | None, id_prefix: str | None = None) -> list[Record]:
    """Records of a parsed JSON body, or :class:`BatchInvalid` with every problem.

    A record without ``id`` gets ``<id_prefix><index>`` (the idempotency key's, so a
    replayed batch gets the same ids; a random prefix when there is none)."""
    items = _items(data)
    if not items:
        raise BatchInvalid([{"index": None, "field": "records", "loc": "records",
                             "error": "no records"}])
    if len(items) > MAX_BATCH:
        raise BatchInvalid([{"index": None, "field": "records", "loc": "records",
                             "error": f"more than {MAX_BATCH} records in one request"}])
    prefix = id_prefix if id_prefix is not None else f"wh-{uuid.uuid4().hex[:12]}-"
    records: list[Record] = []
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        record, problems = _one(index, item, region, prefix)
        errors.extend(problems)
        if record is None:
            continue
        if record.id in seen:
            errors.append(_error(index, "id", f"duplicate of records[{seen[record.id]}].id"))
            continue
        seen[record.id] = index
        records.append(record)
    if errors:
        raise BatchInvalid(errors)
    return records
