"""Record identity is (source, record id), behind a surrogate integer key.

- ``records.pk``: a surrogate ``INTEGER PRIMARY KEY`` (what other tables reference);
  ``records.source``: the producing strategy's key; ``(source, id)`` is unique
  (``uq_records_source_id``) instead of ``id`` alone. Existing rows get the source
  of their stored ``strategy`` column (the hub matches them to the strategy of that
  name, so upgrading never re-dials anyone).
- ``attempts.record_pk`` and ``requeue_items.record_pk`` replace ``record_id``.
- ``ix_attempts_start``: an index on a dial's start, ``coalesce(dialed_at,
  claimed_at)``, so reading the last minute's dials at start-up is a range scan.

SQLite cannot change a primary key in place, and ``records`` is referenced by
``attempts`` and ``requeue_items`` with ``PRAGMA foreign_keys=ON`` (which cannot be
switched off inside the migration's transaction): dropping ``records`` first fails.
So the three tables are rebuilt by hand, children dropped before their parent:
create the ``*_new`` tables (their columns reflected from the current ones, so
columns added by other revisions are kept), copy, drop the old children, drop the
old ``records`` (nothing references it any more), rename the new tables (SQLite
rewrites the foreign keys to the new names), then recreate the indexes. The same
steps run on PostgreSQL.

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: the columns 0004 replaces (never copied as they were)
_RECORD_KEYS = {"id"}
_CHILD_KEYS = {"record_id"}


def _reflect(name: str) -> sa.Table:
    with warnings.catch_warnings():  # expression indexes are recreated by hand
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        return sa.Table(name, sa.MetaData(), autoload_with=op.get_bind())


def _copy(column: sa.Column[object], *, primary_key: bool | None = None) -> sa.Column[object]:
    default = column.server_default
    arg = getattr(default, "arg", None) if default is not None else None
    if column.primary_key:
        arg = None  # a serial key gets its own sequence (PostgreSQL), not the old one
    return sa.Column(
        column.name, column.type, nullable=column.nullable,
        primary_key=column.primary_key if primary_key is None else primary_key,
        autoincrement=False if not column.primary_key else "auto",
        server_default=arg,
    )


def _kept(table: sa.Table, dropped: set[str]) -> list[str]:
    return [c.name for c in table.columns if c.name not in dropped]


def _free_constraint_name() -> None:
    """PostgreSQL names constraints per schema: the old table's must go first."""
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("uq_attempts_record_round_no", "attempts", type_="unique")


def upgrade() -> None:
    records, attempts, items = _reflect("records"), _reflect("attempts"), _reflect("requeue_items")
    _free_constraint_name()
    _build_records(records)
    _build_attempts(attempts)
    _build_items(items)
    for name in ("requeue_items", "attempts", "records"):  # children before their parent
        op.drop_table(name)
    for name in ("records", "attempts", "requeue_items"):
        op.rename_table(f"{name}_new", name)
    _recreate_indexes("records", records, _RECORD_KEYS)
    _recreate_indexes("attempts", attempts, _CHILD_KEYS)
    op.create_index("ix_attempts_record_pk", "attempts", ["record_pk"])
    op.create_index("ix_attempts_start", "attempts",
                    [sa.text("coalesce(dialed_at, claimed_at)")])


def _build_records(old: sa.Table) -> None:
    columns = [_copy(c, primary_key=False) for c in old.columns if c.name not in _RECORD_KEYS]
    op.create_table(
        "records_new",
        sa.Column("pk", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        *columns,
        sa.UniqueConstraint("source", "id", name="uq_records_source_id"),
    )
    kept = ", ".join(_kept(old, _RECORD_KEYS))
    op.execute(f"INSERT INTO records_new (source, id, {kept}) "
               f"SELECT strategy, id, {kept} FROM records ORDER BY seq, created_at, id")


def _build_attempts(old: sa.Table) -> None:
    columns = [_copy(c) for c in old.columns if c.name not in _CHILD_KEYS]
    op.create_table(
        "attempts_new",
        *columns,
        sa.Column("record_pk", sa.Integer(), sa.ForeignKey("records_new.pk"), nullable=False),
        sa.UniqueConstraint("record_pk", "requeue_round", "attempt_no",
                            name="uq_attempts_record_round_no"),
    )
    kept = _kept(old, _CHILD_KEYS)
    op.execute(
        f"INSERT INTO attempts_new ({', '.join(kept)}, record_pk) "
        f"SELECT {', '.join('a.' + c for c in kept)}, r.pk FROM attempts a "
        "JOIN records_new r ON r.id = a.record_id"
    )
    _sync_serial("attempts_new")


def _sync_serial(table: str) -> None:
    """Copied ids on PostgreSQL: move the new table's sequence past them."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                   f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")


def _build_items(old: sa.Table) -> None:
    columns = [_copy(c, primary_key=False) for c in old.columns
               if c.name not in _CHILD_KEYS | {"requeue_id"}]
    op.create_table(
        "requeue_items_new",
        sa.Column("requeue_id", sa.Integer(), sa.ForeignKey("requeues.id"), primary_key=True),
        sa.Column("record_pk", sa.Integer(), sa.ForeignKey("records_new.pk"), primary_key=True),
        *columns,
    )
    kept = _kept(old, _CHILD_KEYS | {"requeue_id"})
    op.execute(
        f"INSERT INTO requeue_items_new (requeue_id, record_pk, {', '.join(kept)}) "
        f"SELECT i.requeue_id, r.pk, {', '.join('i.' + c for c in kept)} FROM requeue_items i "
        "JOIN records_new r ON r.id = i.record_id"
    )


def _recreate_indexes(name: str, old: sa.Table, dropped: set[str]) -> None:
    """The plain indexes the old table had, except those on replaced columns."""
    for index in old.indexes:
        columns = [c.name for c in index.columns]
        if not columns or dropped & set(columns):
            continue
        op.create_index(str(index.name), name, columns, unique=bool(index.unique))


def downgrade() -> None:
    """Back to ids unique on their own: refused when two sources share an id."""
    clash = op.get_bind().execute(sa.text(
        "SELECT id FROM records GROUP BY id HAVING count(*) > 1 LIMIT 1")).scalar()
    if clash is not None:
        raise RuntimeError(f"cannot downgrade below 0004: record id {clash!r} exists in "
                           "several sources")
    records, attempts, items = _reflect("records"), _reflect("attempts"), _reflect("requeue_items")
    _free_constraint_name()
    _old_records(records)
    _old_child("attempts", attempts, "a", [
        sa.UniqueConstraint("record_id", "requeue_round", "attempt_no",
                            name="uq_attempts_record_round_no")])
    _old_child("requeue_items", items, "i", [])
    for name in ("requeue_items", "attempts", "records"):
        op.drop_table(name)
    for name in ("records", "attempts", "requeue_items"):
        op.rename_table(f"{name}_old", name)
    _recreate_indexes("records", records, {"pk", "source", "id"})
    _recreate_indexes("attempts", attempts, {"record_pk"})
    op.create_index("ix_attempts_record_id", "attempts", ["record_id"])


def _old_records(new: sa.Table) -> None:
    keep = [c for c in new.columns if c.name not in {"pk", "source", "id"}]
    op.create_table("records_old", sa.Column("id", sa.String(), primary_key=True),
                    *[_copy(c, primary_key=False) for c in keep])
    names = ", ".join(c.name for c in keep)
    op.execute(f"INSERT INTO records_old (id, {names}) SELECT id, {names} FROM records "
               "ORDER BY pk")


def _old_child(name: str, new: sa.Table, alias: str, extra: list[sa.schema.SchemaItem]) -> None:
    """``name`` back to ``record_id`` (a composite primary key keeps its other part)."""
    keep = [c for c in new.columns if c.name != "record_pk"]
    in_pk = new.c.record_pk.primary_key
    op.create_table(f"{name}_old", *[_copy(c) for c in keep],
                    sa.Column("record_id", sa.String(), sa.ForeignKey("records_old.id"),
                              nullable=False, primary_key=in_pk), *extra)
    names = [c.name for c in keep]
    op.execute(f"INSERT INTO {name}_old ({', '.join(names)}, record_id) "
               f"SELECT {', '.join(f'{alias}.{c}' for c in names)}, r.id FROM {name} {alias} "
               f"JOIN records r ON r.pk = {alias}.record_pk")
    if "id" in new.c:
        _sync_serial(f"{name}_old")
