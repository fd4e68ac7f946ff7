"""The group writer's SQLite fast path writes what the SQLAlchemy path writes; updates
of one row in a batch are coalesced; counts by status come from counters the
database keeps (migration 0008), flat in the number of records, and exact."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.store import (
    Store,
    WriteOp,
    insert_attempt,
    insert_record,
    refresh_record,
    update_attempt,
    update_record,
)
from dispatch.store.counters import TRIGGERS
from dispatch.store.engine import create_engine, resolve_url
from dispatch.store.migrate import upgrade
from dispatch.store.writer import GroupWriter

pytestmark = pytest.mark.anyio


def _rec(rid: str, status: str = "pending", payload: dict[str, Any] | None = None) -> WriteOp:
    return insert_record(id=rid, phone="+15550000001", strategy="s", status=status,
                         payload={"greeting": "hé", "n": [1, 2.5]} if payload is None else payload,
                         now=1.0)


def _status(rid: str, status: str, attempts: int = 1, now: float = 2.0) -> WriteOp:
    return update_record(source="s", id=rid, status=status, attempts=attempts,
                         last_reason="hangup" if status == "completed" else None,
                         last_call_id="CA1", next_attempt_at=None, disposition=None,
                         error=None, now=now)


def _ended(rid: str, tool_results: list[Any] | None) -> WriteOp:
    return update_attempt(source="s", record_id=rid, attempt_no=1, call_id="CA1",
                          dialed_at=2.0, dialing_at=2.1, answered_at=2.2, ended_at=3.0,
                          reason="hangup", raw_reason="hangup", duration_s=0.8, error=None,
                          tool_results=tool_results, disposition="ok")


def _claim(rid: str) -> list[WriteOp]:
    return [_status(rid, "dialing"),
            insert_attempt(source="s", record_id=rid, attempt_no=1, run_id=None,
                           phone="+15550000001", claimed_at=2.0)]


_BATCHES: list[list[list[WriteOp]]] = [
    [[_rec("a"), _rec("b"), _rec("c", payload={})], [_rec("a", status="skipped")]],
    [_claim("a"), _claim("b")],
    [[_ended("a", [{"tool": "x", "ok": True}]), _status("a", "completed")],
     [_ended("b", None), _status("b", "failed")]],
    [[refresh_record(source="s", id="c", phone="+15550000002", payload={"x": 1}, now=4.0)]],
]


async def _write_all(path: Path, *, fast: bool) -> None:
    store = await Store.open(path)
    writer = GroupWriter(store.engine, sqlite_path=str(path) if fast else None)
    async with anyio.create_task_group() as tg:
        await tg.start(writer.run)
        for batch in _BATCHES:
            tickets = [writer.submit(ops) for ops in batch]
            for ticket in tickets:
                await ticket.wait()
        writer.close()
    await store.close()


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as conn:
        return {table: list(conn.execute(f"SELECT * FROM {table} ORDER BY 1"))
                for table in ("records", "attempts", "record_counts")}


async def test_the_fast_path_writes_the_rows_the_sqlalchemy_path_writes(tmp_path: Path):
    await _write_all(tmp_path / "fast.db", fast=True)
    await _write_all(tmp_path / "slow.db", fast=False)
    fast, slow = _dump(tmp_path / "fast.db"), _dump(tmp_path / "slow.db")
    assert fast == slow
    assert len(fast["records"]) == 3 and len(fast["attempts"]) == 2
    async with await Store.open(tmp_path / "fast.db", read_only=True) as reader:
        attempts = {a.record_id: a for a in await reader.attempts()}
        rows = {r["id"]: r for r in await reader.report_rows()}
    assert attempts["a"].tool_results == [{"tool": "x", "ok": True}]
    assert attempts["b"].tool_results is None
    assert rows["a"]["status"] == "completed" and rows["b"]["status"] == "failed"


async def test_updates_of_one_row_in_a_batch_are_coalesced_last_one_wins(tmp_path: Path):
    path = tmp_path / "c.db"
    store = await Store.open(path)
    async with anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        await store.write([_rec("a"), _rec("b")])
        await store.write(_claim("a"))
        with sqlite3.connect(path) as conn:  # every row update executed, in order
            conn.execute("CREATE TABLE audit (id TEXT, status TEXT)")
            conn.execute("CREATE TRIGGER audit_records AFTER UPDATE ON records BEGIN"
                         " INSERT INTO audit VALUES (NEW.id, NEW.status); END")
        before = store.writer.batches
        # all submitted before the writer runs again: one batch, four updates of "a"
        tickets = [store.submit([_status("a", status, now=float(i))])
                   for i, status in enumerate(("in_call", "pending", "dialing", "completed"))]
        tickets.append(store.submit([_status("b", "skipped", attempts=0)]))
        for ticket in tickets:
            await ticket.wait()
        assert store.writer.batches == before + 1
        store.close_writer()
    await store.close()
    with sqlite3.connect(path) as conn:
        rows = dict(conn.execute("SELECT id, status || '@' || updated_at FROM records"))
        executed = list(conn.execute("SELECT id, status FROM audit ORDER BY rowid"))
    assert rows == {"a": "completed@3.0", "b": "skipped@2.0"}
    assert executed == [("a", "completed"), ("b", "skipped")]  # one update per row


def _truth(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM records GROUP BY status"))


async def test_counts_come_from_counters_kept_exact_by_every_writer(tmp_path: Path):
    path = tmp_path / "n.db"
    store = await Store.open(path)
    async with anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        await store.write([_rec(f"r{i}") for i in range(5)] + [_rec("r0", status="skipped")])
        await store.write(_claim("r1") + _claim("r2"))
        await store.write([_status("r1", "completed"), _status("r2", "failed")])
        store.close_writer()
    with sqlite3.connect(path) as conn:  # other writers: a requeue, a campaign move, a delete
        conn.execute("UPDATE records SET status = 'pending' WHERE id = 'r2'")
        conn.execute("UPDATE records SET campaign_id = 'other' WHERE id = 'r3'")
        conn.execute("UPDATE records SET updated_at = 9.0")  # no status change
        conn.execute("DELETE FROM records WHERE id = 'r4'")
    assert await store.counts() == _truth(path) == {"pending": 3, "completed": 1}
    with sqlite3.connect(path) as conn:  # a requeue: a finished record back in play
        conn.execute("UPDATE records SET status = 'pending' WHERE id = 'r1'")
        assert conn.execute("SELECT sum(n) FROM record_counts").fetchone() == (0,)
        conn.execute("UPDATE records SET status = 'completed' WHERE id = 'r1'")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE records SET campaign_id = 'other' WHERE id = 'r1'")
        per_campaign = dict(conn.execute(
            "SELECT campaign_id || ':' || status, n FROM record_counts WHERE n > 0"))
        assert per_campaign == {"other:completed": 1}  # finished records only
        plan = " ".join(str(row) for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT status, count(*) FROM records WHERE status IN"
            " ('dialing', 'in_call', 'pending', 'scheduled') GROUP BY status"))
        assert "ix_records_status_next" in plan  # the records in play: an index range
        # positive control: counts() really reads the counters...
        conn.execute("UPDATE record_counts SET n = n + 999 WHERE status = 'completed'"
                     " AND campaign_id = 'other'")
    assert (await store.counts())["completed"] == 1000
    with sqlite3.connect(path) as conn:  # ...and only while every trigger is in place
        conn.execute(f"DROP TRIGGER {TRIGGERS[1]}")
    assert await store.counts() == _truth(path)
    await store.close()


async def test_upgrading_to_0008_counts_the_records_already_stored(tmp_path: Path):
    path = tmp_path / "u.db"
    engine = create_engine(resolve_url(path))
    await upgrade(engine, "0004")
    await engine.dispose()
    with sqlite3.connect(path) as conn:
        for i, status in enumerate(("completed", "completed", "failed", "pending")):
            conn.execute("INSERT INTO records (source, id, phone, strategy, status, attempts,"
                         " payload, seq, created_at, updated_at) VALUES ('s', ?, '+1', 's', ?,"
                         " 0, '{}', ?, 1.0, 1.0)", (f"r{i}", status, i + 1))
    async with await Store.open(path) as store:
        assert await store.counts() == {"completed": 2, "failed": 1, "pending": 1}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT sum(n) FROM record_counts").fetchone() == (3,)


def _stored_status(path: Path, rid: str) -> str | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT status FROM records WHERE id = ?", (rid,)).fetchone()
    return None if row is None else str(row[0])


async def test_a_deferred_submission_rides_with_the_next_commit_in_order(tmp_path: Path):
    path = tmp_path / "d.db"
    store = await Store.open(path)
    async with anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        await store.write([_rec("a"), _rec("b")])
        before = store.writer.batches
        deferred = store.submit([_status("a", "in_call")], defer_s=60.0)
        for _ in range(20):  # the writer runs, and holds it
            await anyio.lowlevel.checkpoint()
        assert store.writer.batches == before and not deferred.done
        assert _stored_status(path, "a") == "pending"  # positive control below
        # a later update of the same row that must commit now: one batch, last one wins
        await store.write([_status("a", "completed"), _status("b", "dialing")])
        assert deferred.done
        assert store.writer.batches == before + 1
        assert _stored_status(path, "a") == "completed"
        assert _stored_status(path, "b") == "dialing"
        store.close_writer()
    await store.close()


async def test_a_deferred_submission_commits_alone_once_due_and_at_close(tmp_path: Path):
    path = tmp_path / "e.db"
    store = await Store.open(path)
    async with anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        await store.write([_rec("a"), _rec("b")])
        with anyio.fail_after(5):
            await store.submit([_status("a", "in_call")], defer_s=0.05).wait()
        assert _stored_status(path, "a") == "in_call"
        held = store.submit([_status("b", "in_call")], defer_s=3600.0)
        store.close_writer()  # what is held is committed before the writer returns
    await store.close()
    assert held.done
    assert _stored_status(path, "b") == "in_call"
