"""Schema of the durable state (SQLAlchemy 2.x declarative models).

The migration in ``migrations/versions`` creates exactly these tables; a test
compares the two. Times are epoch seconds (``REAL``) so that sliding-window checks
read back from the ``attempts`` table are exact.

Record status machine::

    pending -> dialing -> in_call -> completed
       ^          |           \\-> (interrupted by a crash: completed/interrupted)
       |          +-> scheduled (retry later) -> dialing ...
       |          +-> failed
       +-- skipped (invalid phone, bad record): never dialled

``dispatch requeue`` moves a terminal record back to ``pending`` (a new *round*:
``requeue_count`` + 1, ``attempts`` back to 0); its earlier attempts stay, told
apart by ``attempts.requeue_round``, and each requeue is audited in ``requeues``
and ``requeue_items``.

Identity: a record is ``(source, id)`` -- the key of the strategy that produced it
(:attr:`dispatch.Strategy.key`) and the record's own id -- unique in ``records``
(``uq_records_source_id``: dedup is ``INSERT ... ON CONFLICT DO NOTHING`` on it).
The same id from two sources is two records. Rows point at a record through its
surrogate integer key ``records.pk`` (``attempts.record_pk``,
``requeue_items.record_pk``), so identity can grow (a campaign) without touching
the tables that reference records again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ACTIVE_STATUSES",
    "ATTEMPT_START",
    "CAMPAIGN_STATES",
    "DEFAULT_CAMPAIGN",
    "LIVE_STATUSES",
    "STATUSES",
    "TERMINAL_STATUSES",
    "AttemptRow",
    "Base",
    "CampaignRow",
    "DncEntryRow",
    "RecordCountRow",
    "RecordRow",
    "RequeueItemRow",
    "RequeueRow",
    "RunRow",
]

STATUSES = ("pending", "scheduled", "dialing", "in_call", "completed", "failed", "skipped")
TERMINAL_STATUSES = frozenset({"completed", "failed", "skipped"})
#: statuses a crash can leave behind with a dial possibly on the wire
LIVE_STATUSES = frozenset({"dialing", "in_call"})
#: statuses that still need work
ACTIVE_STATUSES = frozenset({"pending", "scheduled", "dialing", "in_call"})
#: campaign states (see :mod:`dispatch.store.campaigns` for the transitions)
CAMPAIGN_STATES = ("running", "paused", "cancelled", "done")
#: the campaign migration 0003 gives the records of a database written before campaigns
DEFAULT_CAMPAIGN = "default"


class Base(DeclarativeBase):
    """Declarative base; ``Base.metadata`` is the migration target."""


class RecordRow(Base):
    """One record (a person to call) and where it is in its life."""

    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_status_next", "status", "next_attempt_at"),
        UniqueConstraint("source", "id", name="uq_records_source_id"),
    )

    #: surrogate key (what other tables reference); never reused
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: the producing strategy's key (``Strategy.key``); rows stored before migration
    #: 0004 carry their strategy's name
    source: Mapped[str] = mapped_column(String)
    #: the record id given by the source (unique within ``source``)
    id: Mapped[str] = mapped_column(String)
    phone: Mapped[str] = mapped_column(String, index=True)
    strategy: Mapped[str] = mapped_column(String)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_reason: Mapped[str | None] = mapped_column(String(32))
    last_call_id: Mapped[str | None] = mapped_column(String)
    next_attempt_at: Mapped[float | None] = mapped_column(Float)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    disposition: Mapped[str | None] = mapped_column(String)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    #: insertion order (the source's row order): assigned by the writer, never reused
    seq: Mapped[int] = mapped_column(Integer, index=True, server_default=text("0"))
    #: how many times ``dispatch requeue`` put this record back to ``pending``
    requeue_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    requeued_at: Mapped[float | None] = mapped_column(Float)
    #: the campaign the record belongs to (``campaigns.id``)
    campaign_id: Mapped[str] = mapped_column(
        String, index=True, server_default=text(f"'{DEFAULT_CAMPAIGN}'")
    )
    # -- the last admission decision (migration 0006) ---------------------------------
    #: ``allow``, ``defer`` or ``skip`` (None: never asked)
    decision: Mapped[str | None] = mapped_column(String(8))
    decision_reason: Mapped[str | None] = mapped_column(String(32))
    #: a deferral's wake-up time (compliance time, epoch seconds)
    decision_until: Mapped[float | None] = mapped_column(Float)
    #: when the decision was taken (compliance time: the sandbox's simulated time there)
    decision_at: Mapped[float | None] = mapped_column(Float)
    decision_detail: Mapped[str | None] = mapped_column(Text)
    #: cluster mode (migration 0005): the node holding this record's live attempt, and
    #: until when (PostgreSQL clock); unused on SQLite
    lease_node: Mapped[str | None] = mapped_column(String)
    lease_expires_at: Mapped[float | None] = mapped_column(Float)


class RecordCountRow(Base):
    """Finished records per campaign and terminal status, kept by triggers on
    ``records`` (SQLite; see migration 0008 and :mod:`dispatch.store.counters`)."""

    __tablename__ = "record_counts"

    campaign_id: Mapped[str] = mapped_column(String, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class CampaignRow(Base):
    """A campaign: its state (the admission switch every dispatcher reads) and limits.

    ``state_changed_*`` say who moved the state last (``login@host`` of the CLI, or
    ``dispatch pid N@host`` for a hub); ``acked_*`` say which state a running hub last
    observed and when (hub clock): after a pause is acked, that hub claims no dial.
    """

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    max_per_minute: Mapped[int | None] = mapped_column(Integer)
    max_per_second: Mapped[int | None] = mapped_column(Integer)
    max_concurrent: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    state_changed_at: Mapped[float] = mapped_column(Float)
    state_changed_by: Mapped[str] = mapped_column(String)
    acked_state: Mapped[str | None] = mapped_column(String(16))
    acked_at: Mapped[float | None] = mapped_column(Float)
    acked_by: Mapped[str | None] = mapped_column(String)


class AttemptRow(Base):
    """One dial: claimed (row inserted) before the dial frame leaves."""

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint(
            "record_pk", "requeue_round", "attempt_no", name="uq_attempts_record_round_no"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.pk"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    #: the record's ``requeue_count`` when this attempt was claimed
    requeue_round: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    run_id: Mapped[int | None] = mapped_column(Integer)
    phone: Mapped[str] = mapped_column(String)
    call_id: Mapped[str | None] = mapped_column(String, index=True)
    claimed_at: Mapped[float] = mapped_column(Float)
    dialed_at: Mapped[float | None] = mapped_column(Float)
    dialing_at: Mapped[float | None] = mapped_column(Float)
    answered_at: Mapped[float | None] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(32))
    raw_reason: Mapped[str | None] = mapped_column(String)
    duration_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    tool_results: Mapped[list[Any] | None] = mapped_column(JSON)
    disposition: Mapped[str | None] = mapped_column(String)
    #: the record's campaign at claim time (per-campaign caps by index)
    campaign_id: Mapped[str | None] = mapped_column(String)


#: when a dial started (read back on restart to seed the rate window): indexed, so
#: start-up does not scan every finished attempt
ATTEMPT_START = func.coalesce(AttemptRow.dialed_at, AttemptRow.claimed_at)
Index("ix_attempts_start", ATTEMPT_START)
# rolling per-phone / per-campaign caps count from the same start: index range scans
Index("ix_attempts_phone_start", AttemptRow.phone, ATTEMPT_START)
Index("ix_attempts_campaign_start", AttemptRow.campaign_id, ATTEMPT_START)


class DncEntryRow(Base):
    """One number on the internal do-not-call list (issue 9): never dialled in ``scope``
    (``*``: every campaign). The audit trail: why, from where, which record, when."""

    __tablename__ = "dnc_entries"
    __table_args__ = (UniqueConstraint("phone", "scope", name="uq_dnc_phone_scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    phone: Mapped[str] = mapped_column(String)
    scope: Mapped[str] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String)
    record_id: Mapped[str | None] = mapped_column(String)
    added_at: Mapped[float] = mapped_column(Float)


class RunRow(Base):
    """One ``DispatchHub.run()``: who ran, with which settings, how it ended."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    pid: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    # running | completed | stopped | failed | crashed
    status: Mapped[str] = mapped_column(String(16))


class RequeueRow(Base):
    """One ``dispatch requeue``: who, when, which filter, how many records."""

    __tablename__ = "requeues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    user: Mapped[str] = mapped_column(String)  # "login@host"
    pid: Mapped[int] = mapped_column(Integer)
    filter: Mapped[dict[str, Any]] = mapped_column(JSON)
    count: Mapped[int] = mapped_column(Integer)


class RequeueItemRow(Base):
    """A record a requeue moved, with the state it had before."""

    __tablename__ = "requeue_items"

    requeue_id: Mapped[int] = mapped_column(ForeignKey("requeues.id"), primary_key=True)
    record_pk: Mapped[int] = mapped_column(ForeignKey("records.pk"), primary_key=True)
    prev_status: Mapped[str] = mapped_column(String(16))
    prev_reason: Mapped[str | None] = mapped_column(String(32))
    prev_attempts: Mapped[int] = mapped_column(Integer)
    prev_error: Mapped[str | None] = mapped_column(Text)


# cluster mode's tables (migration 0005) belong to the same metadata
from dispatch.cluster import models as _cluster_models  # noqa: E402,F401
