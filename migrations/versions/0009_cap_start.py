"""Rolling caps count a dial from the instant it left, not from its claim.

Migration 0006 indexed attempts by ``(phone, claimed_at)`` and ``(campaign_id,
claimed_at)``, and the per-phone and per-campaign caps counted from the claim. A
dial leaves after its claim (a token claimed ahead, a reconnect of the voice link,
a global token in a cluster), so it stays in the carrier's 24 h window longer than
it stayed in ours: the next dial could be let through before the window had really
freed. The caps now count from ``coalesce(dialed_at, claimed_at)`` -- the send
instant, or the claim for a dial that never left (still counted, to be safe) -- the
same start the per-minute window is rebuilt from (``ix_attempts_start``). These two
indexes replace 0006's, so the counts stay index range reads and there are no more
indexes than before. They hold ``dialed_at``, so an attempt update now rewrites their
entries too (0006's were untouched by updates); on the paced benchmark (2.5 attempt
updates per dial) hub CPU per dial did not measurably change.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_START = "coalesce(dialed_at, claimed_at)"


# ``IF [NOT] EXISTS`` throughout: SQLite runs DDL outside the migration's transaction,
# so a later step that fails (0004's downgrade refusing) leaves these applied and the
# step is run again on the next try


def _create(name: str, columns: str) -> None:
    op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON attempts ({columns})")


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_attempts_phone_claimed")
    op.execute("DROP INDEX IF EXISTS ix_attempts_campaign_claimed")
    _create("ix_attempts_phone_start", f"phone, {_START}")
    _create("ix_attempts_campaign_start", f"campaign_id, {_START}")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_attempts_campaign_start")
    op.execute("DROP INDEX IF EXISTS ix_attempts_phone_start")
    _create("ix_attempts_phone_claimed", "phone, claimed_at")
    _create("ix_attempts_campaign_claimed", "campaign_id, claimed_at")
