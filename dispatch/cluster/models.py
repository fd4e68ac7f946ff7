"""Tables of cluster mode (migration 0005); see :mod:`dispatch.cluster`.

Times are epoch seconds of the PostgreSQL clock (``clock_timestamp()``), never of a
dispatcher's own clock, so nodes on several machines need no clock sync.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.store.models import Base

__all__ = ["CallSlotRow", "LeaseRow", "NodeRow", "RateTokenRow"]


class NodeRow(Base):
    """One dispatcher process of a cluster (membership and liveness)."""

    __tablename__ = "nodes"

    node_id: Mapped[str] = mapped_column(String, primary_key=True)
    host: Mapped[str] = mapped_column(String)
    pid: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[str] = mapped_column(String)
    started_at: Mapped[float] = mapped_column(Float)
    heartbeat_at: Mapped[float] = mapped_column(Float)


class LeaseRow(Base):
    """One holder per role: ``poll:<campaign>:<source key>``, ``sweep:<campaign>``."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String, primary_key=True)
    node_id: Mapped[str] = mapped_column(String)
    expires_at: Mapped[float] = mapped_column(Float)
    #: a poll lease: the holder's last poll of the source found nothing new
    dry: Mapped[bool] = mapped_column(Boolean, server_default=false())


class RateTokenRow(Base):
    """One start of a sliding window (``kind`` ``m``: 60 s, ``s``: 1 s)."""

    __tablename__ = "rate_tokens"

    campaign_id: Mapped[str] = mapped_column(String, primary_key=True)
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    used_at: Mapped[float] = mapped_column(Float, server_default=text("0"))
    record_pk: Mapped[int | None] = mapped_column(Integer)


class CallSlotRow(Base):
    """One unit of the campaign's concurrency budget, held by a live attempt."""

    __tablename__ = "call_slots"

    campaign_id: Mapped[str] = mapped_column(String, primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_pk: Mapped[int | None] = mapped_column(Integer)
    node_id: Mapped[str | None] = mapped_column(String)
    expires_at: Mapped[float | None] = mapped_column(Float)
