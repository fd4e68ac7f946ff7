"""Counts of finished records by campaign and status, kept by the database (SQLite).

The hub's start-up and ``dispatch status`` read counts by status. A ``GROUP BY``
over ``records`` costs ~50 ms per million finished records; ``record_counts`` holds
one row per (campaign, terminal status), kept exact by triggers on ``records``
(insert, status or campaign change, delete), so reading it costs the same whatever
the number of finished records. The records still in play are counted from the
``(status, next_attempt_at)`` index: they are few, and counting them there keeps the
triggers off the hot path (one run per dial, when its record ends).

Triggers rather than counters maintained by the hub: every writer (the group
writer, ``dispatch requeue``, the campaign commands, a later release's SQL) keeps
them right without knowing about them.

SQLite only: with several processes on one PostgreSQL, a hot counter row updated by
every commit would serialise their writes (and two commits moving records between
the same statuses in opposite orders would deadlock), so PostgreSQL keeps the
``GROUP BY`` (the table is created there too, for one schema, but stays empty and
is never read). A later table rebuild of ``records`` drops its triggers: the store
checks they exist before trusting the table (:mod:`dispatch.store.counters`).

Revision ID: 0008
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the statuses counted (a record reaches one once per round: one trigger run per
#: dial, not one per status change; the records still in play are few and indexed)
_TERMINAL = "('completed', 'failed', 'skipped')"


def _finished(row: str) -> str:
    # comparisons, not ``IN (...)``: a trigger program rebuilds an IN list's
    # ephemeral table on every row (measured: ~25 % more per status update)
    return (f"({row}.status = 'completed' OR {row}.status = 'failed'"
            f" OR {row}.status = 'skipped')")


_ADD = (
    "INSERT INTO record_counts (campaign_id, status, n) SELECT {row}.campaign_id,"
    " {row}.status, 1 WHERE {finished}"
    " ON CONFLICT (campaign_id, status) DO UPDATE SET n = n + 1;"
)
_REMOVE = (
    "UPDATE record_counts SET n = n - 1"
    " WHERE campaign_id = {row}.campaign_id AND status = {row}.status;"
)

TRIGGERS = {
    "record_counts_insert": (
        "CREATE TRIGGER record_counts_insert AFTER INSERT ON records"
        f" WHEN {_finished('NEW')} BEGIN"
        f" {_ADD.format(row='NEW', finished='1')} END"
    ),
    "record_counts_update": (
        "CREATE TRIGGER record_counts_update AFTER UPDATE OF status, campaign_id ON records"
        " WHEN (OLD.status IS NOT NEW.status OR OLD.campaign_id IS NOT NEW.campaign_id)"
        f" AND ({_finished('OLD')} OR {_finished('NEW')}) BEGIN"
        f" {_REMOVE.format(row='OLD')} {_ADD.format(row='NEW', finished=_finished('NEW'))} END"
    ),
    "record_counts_delete": (
        "CREATE TRIGGER record_counts_delete AFTER DELETE ON records"
        f" WHEN {_finished('OLD')} BEGIN {_REMOVE.format(row='OLD')} END"
    ),
}


def upgrade() -> None:
    op.create_table(
        "record_counts",
        sa.Column("campaign_id", sa.String(), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("n", sa.Integer(), nullable=False),
    )
    if op.get_bind().dialect.name != "sqlite":
        return  # the table exists (one schema everywhere) but is neither filled nor read
    op.execute(
        "INSERT INTO record_counts (campaign_id, status, n) SELECT campaign_id, status,"
        f" count(*) FROM records WHERE status IN {_TERMINAL} GROUP BY campaign_id, status"
    )
    for sql in TRIGGERS.values():
        op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    # idempotent: SQLite may have dropped it already in an earlier, refused downgrade
    # whose later step failed (its DDL is not always rolled back with the version)
    op.execute("DROP TABLE IF EXISTS record_counts")
