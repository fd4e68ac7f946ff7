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
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "ACTIVE_STATUSES",
    "LIVE_STATUSES",
    "STATUSES",
    "TERMINAL_STATUSES",
    "AttemptRow",
    "Base",
    "RecordRow",
    "RunRow",
]

STATUSES = ("pending", "scheduled", "dialing", "in_call", "completed", "failed", "skipped")
TERMINAL_STATUSES = frozenset({"completed", "failed", "skipped"})
#: statuses a crash can leave behind with a dial possibly on the wire
LIVE_STATUSES = frozenset({"dialing", "in_call"})
#: statuses that still need work
ACTIVE_STATUSES = frozenset({"pending", "scheduled", "dialing", "in_call"})


class Base(DeclarativeBase):
    """Declarative base; ``Base.metadata`` is the migration target."""


class RecordRow(Base):
    """One record (a person to call) and where it is in its life."""

    __tablename__ = "records"
    __table_args__ = (Index("ix_records_status_next", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String, primary_key=True)
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


class AttemptRow(Base):
    """One dial: claimed (row inserted) before the dial frame leaves."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("record_id", "attempt_no", name="uq_attempts_record_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("records.id"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
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
