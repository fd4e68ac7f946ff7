"""Campaigns: a first-class row with a state and limits; records belong to one.

- ``campaigns``: id, state (``running|paused|cancelled|done``), limits, who changed
  the state last and when, which state a running hub last acknowledged;
- ``records.campaign_id``: existing rows go to the campaign ``default``, which is
  created (``running``) when the database already holds records.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEFAULT = "default"  # dispatch.store.models.DEFAULT_CAMPAIGN (a migration is frozen)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("max_per_minute", sa.Integer(), nullable=True),
        sa.Column("max_per_second", sa.Integer(), nullable=True),
        sa.Column("max_concurrent", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("state_changed_at", sa.Float(), nullable=False),
        sa.Column("state_changed_by", sa.String(), nullable=False),
        sa.Column("acked_state", sa.String(16), nullable=True),
        sa.Column("acked_at", sa.Float(), nullable=True),
        sa.Column("acked_by", sa.String(), nullable=True),
    )
    # plain ADD COLUMN with a constant default: every existing row joins ``default``
    op.add_column(
        "records",
        sa.Column("campaign_id", sa.String(), nullable=False,
                  server_default=sa.text(f"'{_DEFAULT}'")),
    )
    op.create_index("ix_records_campaign_id", "records", ["campaign_id"])
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM records LIMIT 1")).first() is None:
        return
    now = time.time()
    bind.execute(
        sa.text(
            "INSERT INTO campaigns (id, state, created_at, updated_at, state_changed_at,"
            " state_changed_by) VALUES (:id, 'running', :now, :now, :now, 'migration 0003')"
        ),
        {"id": _DEFAULT, "now": now},
    )


def downgrade() -> None:
    op.drop_index("ix_records_campaign_id", table_name="records")
    op.drop_column("records", "campaign_id")  # SQLite >= 3.35: ALTER TABLE DROP COLUMN
    op.drop_table("campaigns")
