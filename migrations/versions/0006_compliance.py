"""Dial-time compliance (issue 9): the internal do-not-call list, each record's last
admission decision, and indexes that make rolling caps index range scans.

- ``dnc_entries``: one suppressed phone (E.164) per scope (``*``: every campaign, or
  a campaign id), with its reason, source, the record that caused it and when;
- ``records.decision`` / ``decision_reason`` / ``decision_until`` / ``decision_at`` /
  ``decision_detail``: the record's last admission answer (``allow``, ``defer``,
  ``skip``), shown by ``status`` and ``report``;
- ``attempts.campaign_id`` (filled at claim from the record; existing rows back-filled)
  with ``ix_attempts_phone_claimed`` ``(phone, claimed_at)`` and
  ``ix_attempts_campaign_claimed`` ``(campaign_id, claimed_at)``: the per-phone and
  per-campaign counts of the last 24 h read only the rows they count.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DECISION_COLUMNS = (
    sa.Column("decision", sa.String(8), nullable=True),
    sa.Column("decision_reason", sa.String(32), nullable=True),
    sa.Column("decision_until", sa.Float(), nullable=True),
    sa.Column("decision_at", sa.Float(), nullable=True),
    sa.Column("decision_detail", sa.Text(), nullable=True),
)


def upgrade() -> None:
    op.create_table(
        "dnc_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("record_id", sa.String(), nullable=True),
        sa.Column("added_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("phone", "scope", name="uq_dnc_phone_scope"),
    )
    for column in _DECISION_COLUMNS:
        op.add_column("records", column)
    op.add_column("attempts", sa.Column("campaign_id", sa.String(), nullable=True))
    op.execute(
        "UPDATE attempts SET campaign_id = (SELECT records.campaign_id FROM records "
        "WHERE records.pk = attempts.record_pk)"
    )
    op.create_index("ix_attempts_phone_claimed", "attempts", ["phone", "claimed_at"])
    op.create_index("ix_attempts_campaign_claimed", "attempts", ["campaign_id", "claimed_at"])


def downgrade() -> None:
    # idempotent: a later revision's downgrade that fails in the same run may leave this
    # one half-applied on SQLite (its DDL is not always rolled back with it)
    inspector = sa.inspect(op.get_bind())
    op.execute("DROP INDEX IF EXISTS ix_attempts_campaign_claimed")
    op.execute("DROP INDEX IF EXISTS ix_attempts_phone_claimed")
    if "campaign_id" in {c["name"] for c in inspector.get_columns("attempts")}:
        op.drop_column("attempts", "campaign_id")
    present = {c["name"] for c in inspector.get_columns("records")}
    for column in _DECISION_COLUMNS:
        if column.name in present:
            op.drop_column("records", column.name)
    if inspector.has_table("dnc_entries"):
        op.drop_table("dnc_entries")
