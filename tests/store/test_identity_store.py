"""The store's identity is (source, id): insert-or-ignore on it, chunked lookups of
which ids a source has, and migration 0004 keeping an older database's data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine as create_sync_engine

import dispatch.store.queries as queries
from dispatch.store import Store, insert_record
from dispatch.store.engine import create_engine, resolve_url
from dispatch.store.migrate import alembic_config, upgrade

pytestmark = pytest.mark.anyio


def _rec(source: str, rid: str, status: str = "completed"):
    return insert_record(source=source, id=rid, phone="+15550000001", strategy="csv",
                         status=status, payload={}, now=1.0)


async def test_same_id_two_sources_two_records_and_chunked_lookups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(queries, "LOOKUP_CHUNK", 7)
    async with await Store.open(tmp_path / "s.db") as store:
        await store.write_now([_rec("a", f"r{i}") for i in range(20)] + [_rec("b", "r3")])
        await store.write_now([_rec("a", "r3", "pending")])  # ignored: (a, r3) exists
        rows = {(r["source"], r["id"]): r["status"] for r in await store.report_rows()}
        asked = [f"r{i}" for i in range(25)]
        found_a = await store.existing_keys(["a"], asked)
        found_ab = await store.existing_keys(["a", "b"], ["r3", "r99"])
        assert await store.has_source("b") and not await store.has_source("c")
    assert len(rows) == 21 and rows[("a", "r3")] == "completed" and rows[("b", "r3")]
    assert found_a == {("a", f"r{i}") for i in range(20)}
    assert found_ab == {("a", "r3"), ("b", "r3")}


async def test_0004_keeps_an_older_databases_rows_and_links(tmp_path: Path):
    path = tmp_path / "old.db"
    engine = create_engine(resolve_url(path))
    await upgrade(engine, "0002")
    await engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA foreign_keys=ON")
        for seq, rid in enumerate(("z", "a"), start=1):
            conn.execute("INSERT INTO records (id, phone, strategy, status, attempts, payload,"
                         " seq, created_at, updated_at) VALUES (?, '+15550000001', 'csv',"
                         " 'completed', 1, '{}', ?, 1.0, 1.0)", (rid, seq))
        conn.execute("INSERT INTO attempts (record_id, attempt_no, phone, claimed_at, reason)"
                     " VALUES ('a', 1, '+15550000001', 5.0, 'busy')")
        conn.execute("INSERT INTO requeues (at, user, pid, filter, count)"
                     " VALUES (2.0, 'op@h', 1, '{}', 1)")
        conn.execute("INSERT INTO requeue_items (requeue_id, record_id, prev_status,"
                     " prev_attempts) VALUES (1, 'z', 'failed', 1)")
    await (await Store.open(path)).close()  # migrates to head under the run lock
    with sqlite3.connect(path) as conn:
        records = list(conn.execute("SELECT pk, source, id FROM records ORDER BY pk"))
        attempt = conn.execute("SELECT r.id, a.reason FROM attempts a JOIN records r"
                               " ON r.pk = a.record_pk").fetchall()
        item = conn.execute("SELECT r.id, i.prev_status FROM requeue_items i JOIN records r"
                            " ON r.pk = i.record_pk").fetchall()
        plan = " ".join(str(row) for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT coalesce(dialed_at, claimed_at) FROM attempts"
            " WHERE coalesce(dialed_at, claimed_at) >= 4.0"))
    assert records == [(1, "csv", "z"), (2, "csv", "a")]  # source row order kept
    assert attempt == [("a", "busy")] and item == [("z", "failed")]
    assert "ix_attempts_start" in plan  # the dial-start read is a range scan
    async with await Store.open(path, read_only=True) as reader:
        assert await reader.recent_dial_starts(4.0) == [5.0]


def test_0004_downgrade_is_refused_while_two_sources_share_an_id(tmp_path: Path):
    path = tmp_path / "d.db"
    sync = create_sync_engine(f"sqlite:///{path}")

    def migrate(fn: object, revision: str) -> None:
        with sync.begin() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            fn(cfg, revision)  # type: ignore[operator]

    migrate(command.upgrade, "head")
    with sqlite3.connect(path) as conn:
        for source in ("a", "b"):
            conn.execute("INSERT INTO records (source, id, phone, strategy, status, attempts,"
                         " payload, seq, created_at, updated_at) VALUES (?, '1', '+1', 's',"
                         " 'completed', 0, '{}', 1, 1.0, 1.0)", (source,))
    with pytest.raises(RuntimeError, match="record id '1' exists in several sources"):
        migrate(command.downgrade, "0002")
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM records WHERE source = 'b'")
    migrate(command.downgrade, "0002")
    with sqlite3.connect(path) as conn:
        assert list(conn.execute("SELECT id, strategy FROM records")) == [("1", "s")]
    sync.dispose()
