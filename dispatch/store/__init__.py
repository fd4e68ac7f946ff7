"""Durable campaign state: SQLAlchemy models, the group-commit :class:`Store`,
alembic migrations and report queries."""

from dispatch.store.errors import (
    NotADatabase,
    SchemaTooNew,
    SchemaTooOld,
    StoreClosed,
    StoreError,
)
from dispatch.store.lock import RunLock, StoreLocked
from dispatch.store.migrate import current_revision, head_revision, upgrade
from dispatch.store.models import STATUSES, TERMINAL_STATUSES
from dispatch.store.ops import (
    WriteOp,
    insert_attempt,
    insert_record,
    refresh_record,
    update_attempt,
    update_record,
)
from dispatch.store.queries import (
    RecordKey,
    StoredAttempt,
    StoredRecord,
)
from dispatch.store.reports import ATTEMPT_REPORT_COLUMNS, REPORT_COLUMNS
from dispatch.store.requeue import RequeueFilter, RequeueResult
from dispatch.store.store import Store, open_store
from dispatch.store.writer import Ticket

__all__ = [
    "ATTEMPT_REPORT_COLUMNS",
    "REPORT_COLUMNS",
    "STATUSES",
    "TERMINAL_STATUSES",
    "NotADatabase",
    "RecordKey",
    "RequeueFilter",
    "RequeueResult",
    "RunLock",
    "SchemaTooNew",
    "SchemaTooOld",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreLocked",
    "StoredAttempt",
    "StoredRecord",
    "Ticket",
    "WriteOp",
    "current_revision",
    "head_revision",
    "insert_attempt",
    "insert_record",
    "open_store",
    "refresh_record",
    "update_attempt",
    "update_record",
    "upgrade",
]
