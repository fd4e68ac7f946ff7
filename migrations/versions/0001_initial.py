"""Initial schema: records, attempts, runs.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("strategy", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_reason", sa.String(32), nullable=True),
        sa.Column("last_call_id", sa.String(), nullable=True),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("disposition", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_records_phone", "records", ["phone"])
    op.create_index("ix_records_status_next", "records", ["status", "next_attempt_at"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("record_id", sa.String(), sa.ForeignKey("records.id"), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("call_id", sa.String(), nullable=True),
        sa.Column("claimed_at", sa.Float(), nullable=False),
        sa.Column("dialed_at", sa.Float(), nullable=True),
        sa.Column("dialing_at", sa.Float(), nullable=True),
        sa.Column("answered_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("raw_reason", sa.String(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tool_results", sa.JSON(), nullable=True),
        sa.Column("disposition", sa.String(), nullable=True),
        sa.UniqueConstraint("record_id", "attempt_no", name="uq_attempts_record_no"),
    )
    op.create_index("ix_attempts_record_id", "attempts", ["record_id"])
    op.create_index("ix_attempts_call_id", "attempts", ["call_id"])
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("runs")
    op.drop_index("ix_attempts_call_id", table_name="attempts")
    op.drop_index("ix_attempts_record_id", table_name="attempts")
    op.drop_table("attempts")
    op.drop_index("ix_records_status_next", table_name="records")
    op.drop_index("ix_records_phone", table_name="records")
    op.drop_table("records")
