"""Store: migrations, group commit, reports, read-only opening, the db command."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from dispatch.cli.main import main as cli_main
from dispatch.store import (
    REPORT_COLUMNS,
    Store,
    StoreClosed,
    StoreError,
    head_revision,
    insert_attempt,
    insert_record,
    open_store,
    update_record,
)
from dispatch.store.models import Base

pytestmark = pytest.mark.anyio


def _record(rid: str, status: str = "pending", now: float = 1.0):
    return insert_record(id=rid, phone="+15550000001", strategy="s", status=status,
                         payload={"greeting": "hi"}, now=now)


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
async def test_migration_matches_models(tmp_path: Path):
    store = await Store.open(tmp_path / "m.db")
    await store.close()
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        # alembic skips expression indexes: check the dial-start one by hand
        start_index = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_attempts_start'").scalar()
    engine.dispose()
    assert start_index is not None and "coalesce(dialed_at, claimed_at)" in start_index
    assert diff == []
    assert mode == "wal"
    assert head_revision() == "0009"


async def test_group_commit_batches_and_orders(tmp_path: Path):
    store = await Store.open(tmp_path / "g.db")
    async with anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        tickets = [store.submit([_record(f"r{i}")]) for i in range(200)]
        tickets.append(store.submit([
            update_record(source="s", id="r0", status="dialing", attempts=1, last_reason=None,
                          last_call_id=None, next_attempt_at=None, disposition=None,
                          error=None, now=2.0),
            insert_attempt(source="s",
                           record_id="r0", attempt_no=1, run_id=None, phone="+1", claimed_at=2.0),
        ]))
        for ticket in tickets:
            await ticket.wait()
        assert store.writer.batches < 20
        await store.write([_record("r0", status="skipped")])  # insert-or-ignore
        store.close_writer()
    assert (await store.counts()) == {"pending": 199, "dialing": 1}
    with pytest.raises(StoreClosed):
        store.submit([_record("late")])
    await store.close()


async def test_failed_batch_raises_store_error(tmp_path: Path):
    store = await Store.open(tmp_path / "e.db")
    async with anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        bad = insert_attempt(source="s", record_id="missing", attempt_no=1, run_id=None, phone="+1",
                             claimed_at=1.0)
        with pytest.raises(StoreError, match="database write failed"):
            await store.write([bad])  # foreign key: no such record
        store.close_writer()
    await store.close()


async def test_report_rows_and_read_only(tmp_path: Path):
    path = tmp_path / "r.db"
    async with open_store(path) as store, anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        await store.write([_record("a"), _record("b", status="skipped")])
        store.close_writer()
    async with open_store(path, read_only=True) as reader:
        rows = await reader.report_rows()
        assert [r["id"] for r in rows] == ["a", "b"]
        assert tuple(rows[0]) == (*REPORT_COLUMNS, "lead")
        assert await reader.counts() == {"pending": 1, "skipped": 1}
        with pytest.raises(StoreError):
            await reader.write_now([_record("c")])
    with pytest.raises(StoreError, match="does not exist"):
        await Store.open(tmp_path / "absent.db", read_only=True)


async def test_runs_are_recorded_and_crashed_ones_marked(tmp_path: Path):
    async with open_store(tmp_path / "runs.db") as store:
        first = await store.start_run(started_at=1.0, pid=1, config={"a": 1})
        second = await store.start_run(started_at=2.0, pid=2, config={})
        await store.end_run(second, ended_at=3.0, status="completed")
        runs = await store.runs()
    assert [(r["id"], r["status"]) for r in runs] == [(first, "crashed"), (second, "completed")]


def test_db_upgrade_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "cli.db"
    assert cli_main(["db", "upgrade", "--db", str(path)]) == 0
    assert "0009" in capsys.readouterr().out
    assert cli_main(["db", "current", "--db", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "0009"
