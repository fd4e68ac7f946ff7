"""Group commit isolates a bad write; opening checks the file, the schema revision,
and migrates under the run lock; migration 0002 keeps existing data in order."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import anyio
import pytest

from dispatch.store import (
    NotADatabase,
    RunLock,
    SchemaTooNew,
    SchemaTooOld,
    Store,
    StoreError,
    StoreLocked,
    insert_attempt,
    insert_record,
    update_record,
)
from dispatch.store.engine import create_engine, resolve_url
from dispatch.store.migrate import upgrade

pytestmark = pytest.mark.anyio


def _record(rid: str):
    return insert_record(id=rid, phone="+15550000001", strategy="s", status="pending",
                         payload={}, now=1.0)


def _status(rid: str, status: str):
    return update_record(source="s",
                         id=rid, status=status, attempts=1, last_reason=None, last_call_id=None,
                         next_attempt_at=None, disposition=None, error=None, now=2.0)


async def test_one_bad_op_fails_only_its_own_submission(tmp_path: Path):
    store = await Store.open(tmp_path / "w.db")
    async with anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        bad_op = insert_attempt(source="s", record_id="missing", attempt_no=1, run_id=None,
                                phone="+1", claimed_at=1.0)  # foreign key: no such record
        # all submitted before the writer runs again: one batch
        tickets = [
            store.submit([_record("r1"), _record("r2")]),
            store.submit([_status("r1", "dialing")]),
            store.submit([_status("r2", "dialing"), bad_op]),  # atomic: neither lands
            store.submit([_status("r1", "completed")]),
            store.submit([_record("r3")]),
            store.submit([insert_record(id="bad-json", phone="+1", strategy="s",
                                        status="pending", payload={"x": object()}, now=1.0)]),
            store.submit([_record("r4")]),
        ]
        errors: list[BaseException | None] = []
        for ticket in tickets:
            try:
                await ticket.wait()
                errors.append(None)
            except StoreError as exc:
                errors.append(exc)
        store.close_writer()
    assert [e is not None for e in errors] == [False, False, True, False, False, True, False]
    assert "database write failed" in str(errors[2])
    rows = {r["id"]: r["status"] for r in await store.report_rows()}
    # r1's updates kept their order (the last one wins); r2's submission left no trace
    assert rows == {"r1": "completed", "r2": "pending", "r3": "pending", "r4": "pending"}
    await store.close()


async def test_a_file_that_is_not_sqlite_is_never_turned_into_a_database(tmp_path: Path):
    csv = tmp_path / "leads.csv"
    csv.write_text("id,phone\n1,+15550000001\n", encoding="utf-8")
    for read_only in (False, True):
        with pytest.raises(NotADatabase, match="not a SQLite database"):
            await Store.open(csv, read_only=read_only)
    assert csv.read_text(encoding="utf-8") == "id,phone\n1,+15550000001\n"
    empty = tmp_path / "empty.db"
    empty.touch()
    async with await Store.open(empty) as store:  # an empty file may become a database
        assert await store.counts() == {}


def _stamp(path: Path, revision: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))


async def test_a_newer_schema_is_refused_in_one_line(tmp_path: Path):
    path = tmp_path / "new.db"
    await (await Store.open(path)).close()
    _stamp(path, "9999")
    for read_only in (False, True):
        with pytest.raises(SchemaTooNew) as info:
            await Store.open(path, read_only=read_only)
        assert str(info.value) == (
            f"{path} was written by a newer dispatch (schema 9999); upgrade dispatch")


async def test_an_older_schema_is_upgraded_but_not_read_only(tmp_path: Path):
    path = tmp_path / "old.db"
    engine = create_engine(resolve_url(path))
    await upgrade(engine, "0001")
    await engine.dispose()
    with sqlite3.connect(path) as conn:  # rows written by the previous release
        for rid in ("z", "a", "m"):
            conn.execute(
                "INSERT INTO records (id, phone, strategy, status, attempts, payload,"
                " created_at, updated_at) VALUES (?, '+15550000001', 's', 'completed', 1,"
                " '{\"metadata\": {\"name\": \"N\"}}', 1.0, 1.0)", (rid,))
        conn.execute("INSERT INTO attempts (record_id, attempt_no, phone, claimed_at)"
                     " VALUES ('z', 1, '+15550000001', 1.0)")
    with pytest.raises(SchemaTooOld, match="dispatch db upgrade"):
        await Store.open(path, read_only=True)
    await (await Store.open(path)).close()
    async with await Store.open(path, read_only=True) as reader:
        rows = await reader.report_rows()
    assert [r["id"] for r in rows] == ["z", "a", "m"]  # insertion order survives
    assert rows[0]["lead"] == {"name": "N"} and rows[0]["requeue_count"] == 0


async def test_migrating_takes_the_run_lock(tmp_path: Path):
    path = tmp_path / "lock.db"
    holder = RunLock(resolve_url(path))
    holder.acquire()
    try:
        with pytest.raises(StoreLocked, match=f"pid {os.getpid()}"):
            await Store.open(path)  # a fresh file needs migrating: refused
        assert not path.exists() or path.stat().st_size == 0 or _revision(path) is None
    finally:
        holder.release()
    await (await Store.open(path)).close()  # free: migrates
    holder.acquire()
    try:
        # already at head: nothing to migrate, so opening beside a campaign still works
        await (await Store.open(path)).close()
    finally:
        holder.release()


def _revision(path: Path) -> str | None:
    with sqlite3.connect(path) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return None if row is None else str(row[0])


def test_only_data_errors_are_isolated_one_by_one() -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    from dispatch.store.writer import caused_by_data

    def wrapped(cause: BaseException) -> StoreError:
        error = StoreError("database write failed")
        error.__cause__ = cause
        return error

    assert caused_by_data(wrapped(IntegrityError("INSERT", {}, Exception("FOREIGN KEY"))))
    # the database itself failing (locked, disk full) is the same for every submission
    assert not caused_by_data(wrapped(OperationalError("INSERT", {}, Exception("locked"))))
    assert not caused_by_data(wrapped(OSError("disk I/O error")))
