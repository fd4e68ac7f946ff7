"""Webhook intake, idempotency keys and the result-webhook outbox.

- ``webhook_intake``: records accepted by the HTTP intake, until the hub stores them;
- ``webhook_idempotency``: the first answer per ``(source, key)``;
- ``webhook_outbox``: result webhooks to deliver (one row per outcome and endpoint);
- ``webhook_endpoints``: endpoints disabled by ``410 Gone``.

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_intake",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_webhook_intake_source_seq", "webhook_intake", ["source", "seq"])
    op.create_table(
        "webhook_idempotency",
        sa.Column("source", sa.String(), primary_key=True),
        sa.Column("key", sa.String(), primary_key=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_webhook_idempotency_created_at", "webhook_idempotency",
                    ["created_at"])
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_webhook_outbox_status_next", "webhook_outbox",
                    ["status", "next_attempt_at"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("url", sa.String(), primary_key=True),
        sa.Column("disabled_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    # IF EXISTS: on SQLite the DDL of a downgrade that a later revision's downgrade
    # refused is not always rolled back, so this one may run twice (indexes go with
    # their tables)
    for table in ("webhook_endpoints", "webhook_outbox", "webhook_idempotency",
                  "webhook_intake"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
