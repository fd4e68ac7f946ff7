"""Write operations queued to the group-commit writer.

Each op is a kind plus one row of parameters. Within a batch, ops are grouped
by kind and executed as one ``executemany`` per kind, in :data:`KIND_ORDER`
(inserts before updates), which keeps every write order that matters: updates
always carry the full mutable state of their row, so for a given row the last
update queued wins. Record inserts get their ``seq`` (insertion order) from the
writer, in the order they were queued.

Attempts belong to the record's current requeue round: an attempt insert takes
``requeue_round`` from the record's ``requeue_count`` and an attempt update
matches it, so the hub keeps numbering attempts from 1 after a requeue.

Every op addresses a record by its identity ``(source, id)`` (see
:mod:`dispatch.store.models`); attempt ops resolve the record's surrogate key
``records.pk`` in SQL (one lookup on the unique index), so callers never need it.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from dispatch.store import webhook_tables
from dispatch.store.models import DEFAULT_CAMPAIGN, AttemptRow, RecordRow

__all__ = [
    "KIND_ORDER",
    "OpKind",
    "WriteOp",
    "build_statements",
    "insert_attempt",
    "insert_record",
    "refresh_record",
    "update_attempt",
    "update_record",
]

_records = cast(Table, RecordRow.__table__)
_attempts = cast(Table, AttemptRow.__table__)


class OpKind(enum.Enum):
    INSERT_RECORD = "insert_record"
    REFRESH_RECORD = "refresh_record"
    INSERT_ATTEMPT = "insert_attempt"
    UPDATE_RECORD = "update_record"
    UPDATE_ATTEMPT = "update_attempt"
    # webhooks (issue 10): rows of dispatch.store.webhook_tables, built in dispatch.webhooks
    INSERT_INTAKE = "insert_intake"
    INSERT_IDEMPOTENCY = "insert_idempotency"
    INSERT_OUTBOX = "insert_outbox"
    DELETE_INTAKE = "delete_intake"
    UPDATE_DECISION = "update_decision"  # the record's last admission decision


KIND_ORDER = (
    OpKind.INSERT_RECORD,
    OpKind.REFRESH_RECORD,
    OpKind.INSERT_ATTEMPT,
    OpKind.UPDATE_RECORD,
    OpKind.UPDATE_ATTEMPT,
    OpKind.INSERT_INTAKE,
    OpKind.INSERT_IDEMPOTENCY,
    OpKind.INSERT_OUTBOX,
    OpKind.DELETE_INTAKE,
    OpKind.UPDATE_DECISION,
)


@dataclasses.dataclass(frozen=True, slots=True)
class WriteOp:
    """One row to write; build with the helpers below."""

    kind: OpKind
    params: dict[str, Any]


def insert_record(
    *,
    id: str,
    phone: str,
    strategy: str,
    status: str,
    payload: dict[str, Any],
    now: float,
    source: str | None = None,
    attempts: int = 0,
    last_reason: str | None = None,
    next_attempt_at: float | None = None,
    error: str | None = None,
    campaign_id: str = DEFAULT_CAMPAIGN,
) -> WriteOp:
    """Insert a record unless ``(source, id)`` exists (insert-or-ignore: enqueue is
    idempotent). ``source`` defaults to ``strategy`` (the strategy's name)."""
    return WriteOp(
        OpKind.INSERT_RECORD,
        {
            "source": strategy if source is None else source,
            "id": id,
            "phone": phone,
            "strategy": strategy,
            "status": status,
            "attempts": attempts,
            "last_reason": last_reason,
            "last_call_id": None,
            "next_attempt_at": next_attempt_at,
            "payload": payload,
            "disposition": None,
            "error": error,
            "created_at": now,
            "updated_at": now,
            "campaign_id": campaign_id,
        },
    )


def refresh_record(
    *, source: str, id: str, phone: str, payload: dict[str, Any], now: float
) -> WriteOp:
    """Replace the phone and payload of a requeued record not yet dialled again.

    For a source row fixed after a requeue (a corrected greeting field, a phone now
    read with ``--region``). A no-op unless the record is ``pending`` in a requeue
    round with no attempt yet (``requeue_count > 0``, ``attempts = 0``), so it can
    never rewrite a record that is being dialled or was never requeued.
    """
    return WriteOp(
        OpKind.REFRESH_RECORD,
        {"b_source": source, "b_id": id, "phone": phone, "payload": payload, "updated_at": now},
    )


def update_record(
    *,
    source: str,
    id: str,
    status: str,
    attempts: int,
    last_reason: str | None,
    last_call_id: str | None,
    next_attempt_at: float | None,
    disposition: str | None,
    error: str | None,
    now: float,
) -> WriteOp:
    """Overwrite the mutable columns of a record (full state, last write wins)."""
    return WriteOp(
        OpKind.UPDATE_RECORD,
        {
            "b_source": source,
            "b_id": id,
            "status": status,
            "attempts": attempts,
            "last_reason": last_reason,
            "last_call_id": last_call_id,
            "next_attempt_at": next_attempt_at,
            "disposition": disposition,
            "error": error,
            "updated_at": now,
        },
    )


def insert_attempt(
    *, source: str, record_id: str, attempt_no: int, run_id: int | None, phone: str,
    claimed_at: float,
) -> WriteOp:
    """The claim row of a dial (unique per record, requeue round and ``attempt_no``)."""
    return WriteOp(
        OpKind.INSERT_ATTEMPT,
        {
            "b_source": source,
            "b_id": record_id,
            "attempt_no": attempt_no,
            "run_id": run_id,
            "phone": phone,
            "claimed_at": claimed_at,
        },
    )


_ATTEMPT_FIELDS = (
    "call_id",
    "dialed_at",
    "dialing_at",
    "answered_at",
    "ended_at",
    "reason",
    "raw_reason",
    "duration_s",
    "error",
    "tool_results",
    "disposition",
)


_ATTEMPT_FIELD_SET = frozenset(_ATTEMPT_FIELDS)


def update_attempt(*, source: str, record_id: str, attempt_no: int, **fields: Any) -> WriteOp:
    """Overwrite the mutable columns of an attempt; every field must be given."""
    if fields.keys() != _ATTEMPT_FIELD_SET:  # one comparison on the hot path
        missing = _ATTEMPT_FIELD_SET - fields.keys()
        extra = fields.keys() - _ATTEMPT_FIELD_SET
        raise ValueError(f"update_attempt: missing {sorted(missing)}, unknown {sorted(extra)}")
    return WriteOp(OpKind.UPDATE_ATTEMPT,
                   {"b_source": source, "b_id": record_id, "b_no": attempt_no, **fields})


def _this_record() -> Any:
    """The record the op names: ``(:b_source, :b_id)``."""
    return (_records.c.source == bindparam("b_source")) & (_records.c.id == bindparam("b_id"))


def _of_record(column: Any) -> Any:
    return select(column).where(_this_record()).scalar_subquery()


def build_statements(dialect_name: str) -> dict[OpKind, Executable]:
    """One compiled-once statement per op kind, for ``executemany``."""
    insert_fn: Any = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect_name)
    if insert_fn is not None:
        insert_records: Executable = insert_fn(_records).on_conflict_do_nothing(
            index_elements=["source", "id"]
        )
    else:  # pragma: no cover - other dialects: plain insert
        insert_records = insert(_records)
    return {
        **_webhook_statements(insert_fn),
        OpKind.INSERT_RECORD: insert_records,
        OpKind.REFRESH_RECORD: update(_records).where(
            _this_record()
            & (_records.c.status == "pending")
            & (_records.c.attempts == 0)
            & (_records.c.requeue_count > 0)
        ),
        OpKind.INSERT_ATTEMPT: insert(_attempts).values(
            record_pk=_of_record(_records.c.pk), requeue_round=_of_record(_records.c.requeue_count),
            campaign_id=_of_record(_records.c.campaign_id),  # caps by campaign index
        ),
        OpKind.UPDATE_RECORD: update(_records).where(_this_record()),
        OpKind.UPDATE_ATTEMPT: update(_attempts).where(
            (_attempts.c.record_pk == _of_record(_records.c.pk))
            & (_attempts.c.attempt_no == bindparam("b_no"))
            & (_attempts.c.requeue_round == _of_record(_records.c.requeue_count))
        ),
        OpKind.UPDATE_DECISION: update(_records).where(_this_record()),
    }


def _webhook_statements(insert_fn: Any) -> dict[OpKind, Executable]:
    """Statements of the webhook op kinds (issue 10; insert-or-ignore where keyed)."""
    intake = cast(Table, webhook_tables.IntakeRow.__table__)
    keys = cast(Table, webhook_tables.IdempotencyRow.__table__)
    outbox = cast(Table, webhook_tables.OutboxRow.__table__)
    if insert_fn is not None:
        insert_keys: Executable = insert_fn(keys).on_conflict_do_nothing(
            index_elements=["source", "key"])
        insert_outbox: Executable = insert_fn(outbox).on_conflict_do_nothing(
            index_elements=["id"])
    else:  # pragma: no cover - other dialects: plain insert
        insert_keys, insert_outbox = insert(keys), insert(outbox)
    return {
        OpKind.INSERT_INTAKE: insert(intake),
        OpKind.INSERT_IDEMPOTENCY: insert_keys,
        OpKind.INSERT_OUTBOX: insert_outbox,
        OpKind.DELETE_INTAKE: delete(intake).where(
            (intake.c.source == bindparam("b_source")) & (intake.c.seq <= bindparam("b_upto"))
        ),
    }
