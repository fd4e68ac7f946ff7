"""The JSON body of a result webhook (small: under :data:`MAX_BODY_BYTES`)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from dispatch.records import Record
from dispatch.strategy import Outcome

__all__ = ["MAX_BODY_BYTES", "dispatched_body", "outcome_body"]

#: bodies stay below this; a record whose own fields would pass it is sent without them
MAX_BODY_BYTES = 20_000


def outcome_body(
    outcome: Outcome, *, campaign: str, source: str, duration_s: float | None, at: float
) -> str:
    """``{"type": "record.<status>", "timestamp", "data": {...}}`` as compact JSON."""
    record = outcome.record
    data: dict[str, Any] = {
        "campaign": campaign,
        "source": source,
        "record_id": getattr(record, "id", None),
        "phone": getattr(record, "phone", None),
        "fields": getattr(record, "metadata", None),
        "status": outcome.status,
        "reason": outcome.reason.value,
        "attempts": outcome.attempts,
        "call_id": outcome.call_id,
        "duration_s": duration_s,
        "disposition": outcome.disposition,
        "detail": outcome.detail,
    }
    body = {
        "type": f"record.{outcome.status}",
        "timestamp": dt.datetime.fromtimestamp(at, tz=dt.UTC).isoformat(),
        "data": data,
    }
    text = json.dumps(body, separators=(",", ":"), default=str, ensure_ascii=False)
    if len(text.encode()) > MAX_BODY_BYTES:
        data["fields"] = None
        data["fields_truncated"] = True
        data["detail"] = (outcome.detail or "")[:1000] or None
        text = json.dumps(body, separators=(",", ":"), default=str, ensure_ascii=False)
    return text


def dispatched_body(record: Record, *, campaign: str, source: str, call_id: str,
                    attempt_no: int, at: float) -> str:
    """``{"type": "record.dispatched", ...}``: a dial left for ``record``."""
    data: dict[str, Any] = {"campaign": campaign, "source": source, "record_id": record.id,
                            "phone": record.phone, "fields": record.metadata,
                            "status": "dialing", "attempt_no": attempt_no, "call_id": call_id}
    body = {"type": "record.dispatched",
            "timestamp": dt.datetime.fromtimestamp(at, tz=dt.UTC).isoformat(), "data": data}
    text = json.dumps(body, separators=(",", ":"), default=str, ensure_ascii=False)
    if len(text.encode()) > MAX_BODY_BYTES:
        data["fields"], data["fields_truncated"] = None, True
        text = json.dumps(body, separators=(",", ":"), default=str, ensure_ascii=False)
    return text
