"""SqlStrategy write-back: batched, only the configured columns, retried when it fails,
and inside a running hub on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from sql_helpers import BACKENDS, T0, Db, lead, open_db
from structlog.testing import capture_logs

from dispatch.clock import SystemClock
from dispatch.hub import DispatchHub
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.strategies import SqlStrategy
from dispatch.strategy import Outcome
from dispatch.testing import Answer, Fail, MemoryDialer
from tests.hub.helpers import eventually, read_db

pytestmark = pytest.mark.anyio

WRITE_BACK = {"status": "status", "reason": "reason", "attempts": "attempts",
              "call_id": "call_id", "updated_at": "outcome_at"}


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    async for opened in open_db(request.param, tmp_path):
        yield opened


def _outcome(rid: str, status: str = "completed", reason: Reason = Reason.HANGUP) -> Outcome:
    record = Record(id=rid, phone="+14155553001")
    return Outcome(record, status, reason, attempts=2, call_id=f"CA-{rid}")


async def test_hub_end_to_end_writes_outcomes_back_by_id(db: Db, tmp_path: Path) -> None:
    table = await db.create(db.leads_table(), [
        lead(1), lead(2), lead(3, phone=None), lead(4, status="completed", reason="old"),
        lead(5),
    ])
    dialer = MemoryDialer(SystemClock(), default=Answer(0.01),
                          script={"+14155553002": [Fail("busy")]})
    sql = SqlStrategy(db.url, table=db.name(table.name), greeting="Hi {name}",
                      write_back=WRITE_BACK, page_size=2)
    async with sql:
        hub = DispatchHub(dialer, [sql], db=tmp_path / "hub.db", poll_interval_s=0.05,
                          max_concurrent=2)
        with anyio.fail_after(60):
            await hub.run(until_idle=True)
    assert sorted(d.to for d in dialer.dials) == ["+14155553001", "+14155553002",
                                                  "+14155553005"]
    assert {d.greeting for d in dialer.dials} == {"Hi Person 1", "Hi Person 2", "Hi Person 5"}
    rows = {r["id"]: r for r in await db.rows(table)}
    assert (rows[1]["status"], rows[1]["reason"], rows[1]["attempts"]) == (
        "completed", "hangup", 1)
    assert rows[1]["call_id"] and rows[1]["outcome_at"] is not None
    assert (rows[2]["status"], rows[2]["reason"]) == ("failed", "busy")
    assert (rows[3]["status"], rows[3]["reason"]) == ("skipped", "invalid_record")
    # a row that already had an outcome is neither dialled nor touched
    assert (rows[4]["status"], rows[4]["reason"], rows[4]["call_id"]) == (
        "completed", "old", None)
    # the columns that are not configured are never written
    for i in (1, 2, 3, 5):
        assert rows[i]["name"] == f"Person {i}" and rows[i]["updated_at"] == T0
    stored, _ = await read_db(tmp_path / "hub.db")
    assert "field 'phone' (column 'phone') is empty" in (stored["3"]["error"] or "")


async def test_aclose_writes_what_is_queued_without_a_writer_task(db: Db) -> None:
    table = await db.create(db.leads_table(), [lead(1), lead(2)])
    sql = SqlStrategy(db.url, table=db.name(table.name), write_back="status,reason")
    await sql.record_outcome(_outcome("1"))
    await sql.record_outcome(_outcome("2", "failed", Reason.NO_ANSWER))
    assert [r["status"] for r in await db.rows(table)] == [None, None], "nothing yet"
    await sql.aclose()
    rows = await db.rows(table)
    assert [(r["status"], r["reason"]) for r in rows] == [
        ("completed", "hangup"), ("failed", "no_answer")]
    assert rows[0]["attempts"] is None, "attempts is not a configured column"


async def test_an_outcome_whose_row_was_deleted_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE leads (id INTEGER PRIMARY KEY, phone TEXT, status TEXT);
            INSERT INTO leads VALUES (1, '+14155553001', NULL);
        """)
    sql = SqlStrategy(f"sqlite+aiosqlite:///{path}", table="leads", write_back="status")
    await sql.record_outcome(_outcome("1"))
    await sql.record_outcome(_outcome("2"))  # no such row any more
    with capture_logs() as logs:
        await sql.aclose()
    stats = sql.statistics().write_back
    assert stats is not None and stats.written == 2 and stats.not_found == 1
    assert any(e["event"].startswith("sql write-back: rows not found") and e["rows"] == 1
               for e in logs)


async def test_a_failing_write_back_is_retried_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE leads (id INTEGER PRIMARY KEY, phone TEXT, status TEXT, reason TEXT);
            INSERT INTO leads VALUES (1, '+14155553001', NULL, NULL);
            CREATE TABLE blocker (on_ INTEGER);
            INSERT INTO blocker VALUES (1);
            CREATE TRIGGER no_updates BEFORE UPDATE ON leads
              WHEN (SELECT count(*) FROM blocker) > 0
              BEGIN SELECT RAISE(ABORT, 'updates are blocked'); END;
        """)
    sql = SqlStrategy(f"sqlite+aiosqlite:///{path}", table="leads", write_back="status,reason",
                      writeback_retry_initial_s=0.05, writeback_retry_max_s=0.2)
    with capture_logs() as logs:
        async with sql:
            with anyio.fail_after(5):
                await sql.record_outcome(_outcome("1"))  # returns: it only enqueues
            stats = sql.statistics().write_back
            assert stats is not None and stats.pending == 1
            await eventually(lambda: _failures(sql) >= 2, timeout_s=20)
            with sqlite3.connect(path) as conn:
                conn.execute("DELETE FROM blocker")
            await eventually(lambda: _pending(sql) == 0, timeout_s=20)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT status, reason FROM leads").fetchall() == [
            ("completed", "hangup")]
    warnings = [e for e in logs if e["event"].startswith("sql write-back failed")]
    assert len(warnings) >= 2
    assert "updates are blocked" in warnings[0]["error"]
    stats = sql.statistics().write_back
    assert stats is not None and stats.written == 1 and stats.failures >= 2


async def test_write_back_gives_up_at_close_after_its_timeout_and_says_so(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE leads (id INTEGER PRIMARY KEY, phone TEXT, status TEXT);
            INSERT INTO leads VALUES (1, '+14155553001', NULL);
            CREATE TRIGGER no_updates BEFORE UPDATE ON leads
              BEGIN SELECT RAISE(ABORT, 'never'); END;
        """)
    sql = SqlStrategy(f"sqlite+aiosqlite:///{path}", table="leads", write_back="status",
                      flush_timeout_s=0.5, writeback_retry_initial_s=0.05)
    with capture_logs() as logs:
        await sql.record_outcome(_outcome("1"))
        with anyio.fail_after(10):
            await sql.aclose()
    gave_up = [e for e in logs if e["event"].startswith("sql write-back gave up")]
    assert len(gave_up) == 1 and gave_up[0]["unwritten"] == 1


async def test_newer_outcome_replaces_a_queued_one(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE leads (id TEXT PRIMARY KEY, phone TEXT, status TEXT, reason TEXT);
            INSERT INTO leads VALUES ('a', '+14155553001', NULL, NULL);
        """)
    sql = SqlStrategy(f"sqlite+aiosqlite:///{path}", table="leads", write_back="status,reason")
    await sql.record_outcome(_outcome("a", "failed", Reason.BUSY))
    await sql.record_outcome(_outcome("a", "completed", Reason.HANGUP))
    assert _pending(sql) == 1
    await sql.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT status, reason FROM leads").fetchall() == [
            ("completed", "hangup")]


def _failures(sql: SqlStrategy) -> int:
    stats = sql.statistics().write_back
    return stats.failures if stats else 0


def _pending(sql: SqlStrategy) -> int:
    stats = sql.statistics().write_back
    return stats.pending if stats else 0


async def test_write_back_to_another_table_in_query_mode(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE people (id INTEGER PRIMARY KEY, phone TEXT, status TEXT);
            INSERT INTO people VALUES (7, '+14155553007', NULL), (8, '+14155553008', 'x');
        """)
    url = f"sqlite+aiosqlite:///{path}"
    sql = SqlStrategy(url, query="SELECT id, phone, status FROM people",
                      write_back="status", writeback_table="people")
    await sql.preflight()
    records = await sql.poll()
    assert [r.id for r in records] == ["7"], "the status column still filters"
    await sql.record_outcome(_outcome("7"))
    await sql.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id, status FROM people ORDER BY id").fetchall() == [
            (7, "completed"), (8, "x")]


async def test_a_failing_write_back_never_holds_up_dialling(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE leads (id INTEGER PRIMARY KEY, phone TEXT, status TEXT, reason TEXT);
            CREATE TABLE blocker (on_ INTEGER);
            INSERT INTO blocker VALUES (1);
            CREATE TRIGGER no_updates BEFORE UPDATE ON leads
              WHEN (SELECT count(*) FROM blocker) > 0
              BEGIN SELECT RAISE(ABORT, 'updates are blocked'); END;
        """)
        conn.executemany("INSERT INTO leads (id, phone) VALUES (?, ?)",
                         [(i, f"+1415555{3000 + i:04d}") for i in range(1, 9)])
    dialer = MemoryDialer(SystemClock(), default=Answer(0.01))
    sql = SqlStrategy(f"sqlite+aiosqlite:///{path}", table="leads", write_back="status,reason",
                      writeback_retry_initial_s=0.05, writeback_retry_max_s=0.1, page_size=3)
    async with sql:
        hub = DispatchHub(dialer, [sql], db=tmp_path / "hub.db", poll_interval_s=0.05,
                          max_concurrent=4)
        with anyio.fail_after(60):
            await hub.run(until_idle=True)
        # every record was dialled and is terminal in our store while no write succeeded
        assert len(dialer.dials) == 8
        stored, _ = await read_db(tmp_path / "hub.db")
        assert {r["status"] for r in stored.values()} == {"completed"}
        await eventually(lambda: _failures(sql) >= 1, timeout_s=20)
        stats = sql.statistics().write_back
        assert stats is not None and stats.failures >= 1 and stats.written == 0
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM leads WHERE status IS NOT NULL"
                                ).fetchone() == (0,)
            conn.execute("DELETE FROM blocker")
    # closing writes what was held back
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM leads WHERE status = 'completed'"
                            ).fetchone() == (8,)


async def test_a_full_outbox_waits_for_room_and_then_takes_the_outcome(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE leads (id INTEGER PRIMARY KEY, phone TEXT, status TEXT);
            INSERT INTO leads (id, phone) VALUES (1, '+1'), (2, '+1'), (3, '+1');
            CREATE TABLE blocker (on_ INTEGER);
            INSERT INTO blocker VALUES (1);
            CREATE TRIGGER no_updates BEFORE UPDATE ON leads
              WHEN (SELECT count(*) FROM blocker) > 0
              BEGIN SELECT RAISE(ABORT, 'updates are blocked'); END;
        """)
    sql = SqlStrategy(f"sqlite+aiosqlite:///{path}", table="leads", write_back="status",
                      writeback_max_pending=2, writeback_retry_initial_s=0.05,
                      writeback_retry_max_s=0.05)
    third_queued = anyio.Event()

    async def third() -> None:
        await sql.record_outcome(_outcome("3"))
        third_queued.set()

    async with sql, anyio.create_task_group() as tg:
        await sql.record_outcome(_outcome("1"))
        await sql.record_outcome(_outcome("2"))
        tg.start_soon(third)
        await eventually(lambda: _failures(sql) >= 2, timeout_s=20)
        assert not third_queued.is_set() and _pending(sql) == 2, "the outbox is bounded"
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM blocker")
        with anyio.fail_after(20):
            await third_queued.wait()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM leads WHERE status = 'completed'"
                            ).fetchone() == (3,)
