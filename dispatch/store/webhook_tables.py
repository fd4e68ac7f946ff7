"""Tables of the webhook intake and the result-webhook outbox (migration 0007).

- ``webhook_intake``: records accepted over HTTP, committed before the ``202`` and
  read by :class:`~dispatch.strategies.WebhookStrategy`'s ``poll()``; a row is deleted
  once the hub has stored its record (the hub dedups by ``(source, id)``, so a row
  read twice after a crash is harmless).
- ``webhook_idempotency``: the first answer given to a ``webhook-id`` /
  ``Idempotency-Key`` of a source, so a replay (also after a restart) gets it again.
- ``webhook_outbox``: one row per (terminal outcome, endpoint URL), written in the
  same commit as the outcome; ``id`` is the ``webhook-id`` sent on every retry.
- ``webhook_endpoints``: endpoints a ``410 Gone`` disabled.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from dispatch.store.models import Base

__all__ = ["OUTBOX_STATES", "EndpointRow", "IdempotencyRow", "IntakeRow", "OutboxRow"]

#: ``pending`` (to deliver, at ``next_attempt_at``) -> ``delivered`` | ``failed``
#: (gave up after the retry horizon) | ``disabled`` (its endpoint answered 410)
OUTBOX_STATES = ("pending", "delivered", "failed", "disabled")


class IntakeRow(Base):
    """A record accepted by the intake, waiting for the hub to store it."""

    __tablename__ = "webhook_intake"
    __table_args__ = (Index("ix_webhook_intake_source_seq", "source", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String)
    record_id: Mapped[str] = mapped_column(String)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)


class IdempotencyRow(Base):
    """The first answer to an idempotency key (``webhook-id`` or ``Idempotency-Key``)."""

    __tablename__ = "webhook_idempotency"

    source: Mapped[str] = mapped_column(String, primary_key=True)
    key: Mapped[str] = mapped_column(String, primary_key=True)
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float, index=True)


class OutboxRow(Base):
    """One result webhook to deliver to one endpoint."""

    __tablename__ = "webhook_outbox"
    __table_args__ = (Index("ix_webhook_outbox_status_next", "status", "next_attempt_at"),)

    #: the ``webhook-id`` header, the same on every retry
    id: Mapped[str] = mapped_column(String, primary_key=True)
    url: Mapped[str] = mapped_column(String)
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    last_attempt_at: Mapped[float | None] = mapped_column(Float)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[float | None] = mapped_column(Float)


class EndpointRow(Base):
    """A result-webhook endpoint disabled by a ``410 Gone``."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String, primary_key=True)
    disabled_at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
