"""A campaign's state in the database steers a running hub: pause, resume, cancel, done.

The state is written through a second connection to the same SQLite file, as
``dispatch campaign pause`` does from another process.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.errors import PreflightError
from dispatch.hub import DispatchHub
from dispatch.reasons import Reason
from dispatch.store import campaigns, open_store
from dispatch.store.engine import create_engine, resolve_url
from dispatch.store.migrate import upgrade
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

from .helpers import eventually, records

pytestmark = pytest.mark.anyio


def make(tmp_path: Path, n: int, **kwargs: Any) -> tuple[DispatchHub, MemoryDialer, FakeClock]:
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(0.0))
    kwargs.setdefault("max_calls_per_minute", 1)
    hub = DispatchHub(dialer, [MemoryStrategy(records(n))], clock=clock, db=tmp_path / "c.db",
                      poll_interval_s=1000, drain_timeout_s=None, **kwargs)
    return hub, dialer, clock


async def set_state(db: Path, campaign: str, action: str) -> None:
    """What another process does: one compare-and-set through its own connection."""
    async with open_store(db) as store:
        await campaigns.transition(store.engine, campaign, action, now=0.0, by="operator@test")


def acked(db: Path, campaign: str) -> str | None:
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT acked_state FROM campaigns WHERE id = ?",
                           (campaign,)).fetchone()
    return None if row is None else str(row[0])


def column(db: Path, sql: str) -> list[Any]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute(sql)]


async def dial_minutes(clock: FakeClock, dialer: MemoryDialer, minutes: int) -> None:
    """Advance one rate window at a time; each window lets one more dial start."""
    for _ in range(minutes):
        before = len(dialer.dials)
        clock.advance(60)
        await eventually(lambda b=before: len(dialer.dials) == b + 1)


async def test_pause_stops_new_dials_and_resume_lets_the_rest_go(tmp_path: Path):
    db = tmp_path / "c.db"
    hub, dialer, clock = make(tmp_path, 6, campaign="spring")
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: hub.run(until_idle=True))
        await eventually(lambda: len(dialer.dials) == 1)
        await dial_minutes(clock, dialer, 1)  # positive control: a dial per window
        await set_state(db, "spring", "pause")
        await eventually(lambda: acked(db, "spring") == "paused")
        claimed_at_ack = len(column(db, "SELECT id FROM attempts"))
        for _ in range(5):  # five windows that would each have let a dial start
            clock.advance(60)
            await anyio.sleep(0.05)
        assert len(dialer.dials) == claimed_at_ack == 2
        assert len(column(db, "SELECT id FROM attempts")) == 2
        stats = hub.statistics()
        assert (stats.campaign, stats.campaign_state, stats.waiting_on) == (
            "spring", "paused", "paused")
        assert hub.running, "a paused one-shot run waits instead of ending"
        await set_state(db, "spring", "resume")
        await eventually(lambda: acked(db, "spring") == "running")
        await dial_minutes(clock, dialer, 3)
        clock.advance(60)
    assert len(dialer.dials) == 6
    assert set(column(db, "SELECT status FROM records")) == {"completed"}
    assert column(db, "SELECT state FROM campaigns") == ["done"]
    assert set(column(db, "SELECT campaign_id FROM records")) == {"spring"}


async def test_cancel_ends_the_run_and_closes_what_was_not_dialled(tmp_path: Path):
    db = tmp_path / "c.db"
    skipped: list[Any] = []
    hub, dialer, clock = make(tmp_path, 5, on_skipped=lambda record, reason: skipped.append(
        (record.id, reason)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: hub.run(until_idle=True))
        await eventually(lambda: len(dialer.dials) == 1)
        await dial_minutes(clock, dialer, 1)
        await set_state(db, "memory", "cancel")  # the default id: the strategy's name
        await eventually(lambda: not hub.running)  # ends without the clock moving
    assert len(dialer.dials) == 2
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT status || '/' || last_reason, count(*) FROM records "
                                 "GROUP BY 1").fetchall())
        errors = [r[0] for r in conn.execute("SELECT error FROM records WHERE status = 'skipped'")]
    assert rows == {"completed/hangup": 2, "skipped/campaign_cancelled": 3}
    assert all("campaign 'memory' cancelled by operator@test" in e for e in errors)
    assert sorted(reason for _, reason in skipped) == [Reason.CAMPAIGN_CANCELLED] * 3
    assert column(db, "SELECT state FROM campaigns") == ["cancelled"]
    # a new run on the cancelled campaign dials nobody
    again, dialer2, clock2 = make(tmp_path, 7)
    async with clock2.autojump():
        with anyio.fail_after(10):
            await again.run(until_idle=True)
    assert dialer2.dials == []


async def test_one_shot_run_marks_the_campaign_done_with_its_limits(tmp_path: Path):
    db = tmp_path / "c.db"
    hub, _dialer, clock = make(tmp_path, 3, max_calls_per_minute=None, max_concurrent=2)
    assert hub.statistics().campaign == "memory"
    async with clock.autojump():
        await hub.run(until_idle=True)
    async with open_store(db) as store:
        row = await campaigns.get(store.engine, "memory")
    assert row is not None
    assert (row.state, row.max_concurrent, row.max_per_minute) == ("done", 2, None)
    assert hub.statistics().campaign_state == "done"
    # a second run on a finished campaign runs it again (and finishes it again)
    again, _, clock2 = make(tmp_path, 4, max_calls_per_minute=None)
    async with clock2.autojump():
        await again.run(until_idle=True)
    assert column(db, "SELECT state FROM campaigns") == ["done"]
    assert len(column(db, "SELECT id FROM records WHERE status = 'completed'")) == 4


async def _database_at_0002_with_a_pending_record(db: Path) -> None:
    engine = create_engine(resolve_url(db))
    try:
        await upgrade(engine, "0002")
    finally:
        await engine.dispose()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO records (id, phone, strategy, status, attempts, payload, created_at,"
            " updated_at) VALUES ('r0', '+15550000000', 'memory', 'pending', 0,"
            " '{\"id\": \"r0\", \"phone\": \"+15550000000\"}', 1, 1)")


async def test_migration_gives_existing_records_a_campaign_a_run_takes_over(tmp_path: Path):
    db = tmp_path / "c.db"
    await _database_at_0002_with_a_pending_record(db)
    async with open_store(db) as store:
        row = await campaigns.get(store.engine, "default")
    assert row is not None and row.state == "running"
    assert column(db, "SELECT campaign_id FROM records") == ["default"]
    hub, dialer, clock = make(tmp_path, 0, campaign="leads", max_calls_per_minute=None)
    async with clock.autojump():
        await hub.run(until_idle=True)
    assert [d.to for d in dialer.dials] == ["+15550000000"]
    assert column(db, "SELECT campaign_id || '/' || status FROM records") == ["leads/completed"]


async def test_a_paused_campaign_with_unfinished_records_is_not_taken_over(tmp_path: Path):
    db = tmp_path / "c.db"
    await _database_at_0002_with_a_pending_record(db)
    await set_state(db, "default", "pause")
    hub, dialer, _clock = make(tmp_path, 0, campaign="leads")
    with pytest.raises(PreflightError, match="campaign 'default' is paused with 1 unfinished"):
        await hub.run(until_idle=True)
    assert dialer.dials == []
    assert column(db, "SELECT campaign_id || '/' || status FROM records") == ["default/pending"]


def test_campaign_ids_are_checked() -> None:
    with pytest.raises(ValueError, match="not a campaign id"):
        DispatchHub(MemoryDialer(FakeClock()), [MemoryStrategy([])], campaign=" \n")
