"""Source row order, requeue rounds and the requeue audit.

- ``records.seq``: insertion order (the source's row order), backfilled from the
  old creation order; ``records.requeue_count`` / ``requeued_at``.
- ``attempts.requeue_round``: attempts of a requeued record start again at 1, so
  the unique key becomes ``(record_id, requeue_round, attempt_no)``.
- ``requeues`` / ``requeue_items``: who requeued what, when, from which state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ZERO = sa.text("0")


def upgrade() -> None:
    # plain ADD COLUMN: recreating ``records`` would break the foreign keys onto it
    op.add_column("records", sa.Column("seq", sa.Integer(), nullable=False, server_default=_ZERO))
    op.add_column(
        "records", sa.Column("requeue_count", sa.Integer(), nullable=False, server_default=_ZERO)
    )
    op.add_column("records", sa.Column("requeued_at", sa.Float(), nullable=True))
    _backfill_seq()
    op.create_index("ix_records_seq", "records", ["seq"])
    # nothing references ``attempts``: it can be recreated with the new unique key
    with op.batch_alter_table("attempts", recreate=_recreate()) as batch:
        batch.add_column(
            sa.Column("requeue_round", sa.Integer(), nullable=False, server_default=_ZERO)
        )
        batch.drop_constraint("uq_attempts_record_no", type_="unique")
        batch.create_unique_constraint(
            "uq_attempts_record_round_no", ["record_id", "requeue_round", "attempt_no"]
        )
    op.create_table(
        "requeues",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("user", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("filter", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
    )
    op.create_table(
        "requeue_items",
        sa.Column("requeue_id", sa.Integer(), sa.ForeignKey("requeues.id"), primary_key=True),
        sa.Column("record_id", sa.String(), sa.ForeignKey("records.id"), primary_key=True),
        sa.Column("prev_status", sa.String(16), nullable=False),
        sa.Column("prev_reason", sa.String(32), nullable=True),
        sa.Column("prev_attempts", sa.Integer(), nullable=False),
        sa.Column("prev_error", sa.Text(), nullable=True),
    )


def _recreate() -> Literal["auto", "always"]:
    """SQLite cannot change a unique constraint in place: copy the table."""
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def _backfill_seq() -> None:
    """Existing rows keep their insertion order (SQLite ``rowid``; elsewhere creation
    time, then id)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("UPDATE records SET seq = rowid")
        return
    op.execute(
        "UPDATE records SET seq = o.n FROM (SELECT id, row_number() OVER"
        " (ORDER BY created_at, id) AS n FROM records) AS o WHERE records.id = o.id"
    )


def downgrade() -> None:
    op.drop_table("requeue_items")
    op.drop_table("requeues")
    with op.batch_alter_table("attempts", recreate=_recreate()) as batch:
        batch.drop_constraint("uq_attempts_record_round_no", type_="unique")
        batch.create_unique_constraint("uq_attempts_record_no", ["record_id", "attempt_no"])
        batch.drop_column("requeue_round")
    op.drop_index("ix_records_seq", table_name="records")
    for column in ("requeued_at", "requeue_count", "seq"):
        op.drop_column("records", column)  # SQLite >= 3.35: ALTER TABLE DROP COLUMN
