"""Cluster mode: several dispatcher processes on one PostgreSQL act as one dispatcher.

- ``nodes``: one row per dispatcher process (membership; ``heartbeat_at`` on the
  database clock);
- ``leases``: one holder per role (``poll:<campaign>:<source key>``,
  ``sweep:<campaign>``), taken only when free, expired or already ours;
  ``dry`` is set by a poll-lease holder whose last poll found nothing new;
- ``rate_tokens``: exactly ``max_per_minute`` rows (``kind='m'``) and
  ``max_per_second`` rows (``kind='s'``) per campaign; a dial takes one whose
  ``used_at`` is a window old (``FOR UPDATE SKIP LOCKED``);
- ``call_slots``: ``max_concurrent`` rows per campaign; a live attempt holds one
  (``record_pk``), renewed by its node's heartbeat;
- ``records.lease_node`` / ``records.lease_expires_at``: the claim of a record as
  a lease (database-clock epoch seconds).

The tables exist harmlessly on SQLite (the embedded single-process path never
writes them). The partial unique index "one live call per phone" is PostgreSQL
only: on SQLite the run lock already makes the hub the only writer.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(), primary_key=True),
        sa.Column("host", sa.String(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("node_id", sa.String(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("dry", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "rate_tokens",
        sa.Column("campaign_id", sa.String(), primary_key=True),
        sa.Column("kind", sa.String(1), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("used_at", sa.Float(), nullable=False, server_default=sa.text("0")),
        sa.Column("record_pk", sa.Integer(), nullable=True),
    )
    op.create_table(
        "call_slots",
        sa.Column("campaign_id", sa.String(), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("record_pk", sa.Integer(), nullable=True),
        sa.Column("node_id", sa.String(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
    )
    op.add_column("records", sa.Column("lease_node", sa.String(), nullable=True))
    op.add_column("records", sa.Column("lease_expires_at", sa.Float(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ux_records_live_phone", "records", ["phone"], unique=True,
            postgresql_where=sa.text("status IN ('dialing', 'in_call')"),
        )
        op.create_index(
            "ix_records_lease", "records", ["campaign_id", "lease_expires_at"],
            postgresql_where=sa.text("status IN ('dialing', 'in_call')"),
        )


def downgrade() -> None:
    """Drops only what exists: on SQLite, DDL outside a DML transaction commits at once,
    so a downgrade that failed further down (0004 refusing) may have run this already."""
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    tables = set(inspector.get_table_names())
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_records_lease")
        op.execute("DROP INDEX IF EXISTS ux_records_live_phone")
    columns = {c["name"] for c in inspector.get_columns("records")}
    for name in ("lease_expires_at", "lease_node"):
        if name in columns:
            op.drop_column("records", name)
    for name in ("call_slots", "rate_tokens", "leases", "nodes"):
        if name in tables:
            op.drop_table(name)
