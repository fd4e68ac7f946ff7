"""Write ops for the webhook tables (queued to the store's group-commit writer)."""

from __future__ import annotations

from typing import Any

from dispatch.store.ops import OpKind, WriteOp

__all__ = ["delete_intake", "insert_idempotency", "insert_intake", "insert_outbox"]


def insert_intake(*, source: str, record_id: str, record: dict[str, Any], now: float) -> WriteOp:
    """A record accepted by the intake (read back by the strategy's ``poll()``)."""
    return WriteOp(OpKind.INSERT_INTAKE, {"source": source, "record_id": record_id,
                                          "record": record, "created_at": now})


def delete_intake(*, source: str, upto_seq: int) -> WriteOp:
    """Forget intake rows of ``source`` up to ``upto_seq`` (the hub has stored them)."""
    return WriteOp(OpKind.DELETE_INTAKE, {"b_source": source, "b_upto": upto_seq})


def insert_idempotency(
    *, source: str, key: str, status_code: int, body: dict[str, Any], now: float
) -> WriteOp:
    """The first answer to ``key`` (insert-or-ignore: the first one stays)."""
    return WriteOp(OpKind.INSERT_IDEMPOTENCY, {"source": source, "key": key,
                                               "status_code": status_code, "body": body,
                                               "created_at": now})


def insert_outbox(*, id: str, url: str, event: str, body: str, now: float) -> WriteOp:
    """A result webhook to deliver to ``url`` (insert-or-ignore by its webhook-id)."""
    return WriteOp(OpKind.INSERT_OUTBOX, {
        "id": id, "url": url, "event": event, "body": body, "status": "pending",
        "attempts": 0, "created_at": now, "next_attempt_at": now, "last_attempt_at": None,
        "last_status_code": None, "last_error": None, "delivered_at": None,
    })
