"""The store side of compliance (migration 0006) on a real SQLite file: the internal
list and its audit trail, the attempt window the caps read (from indexes), decisions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from dispatch.compliance import Decision
from dispatch.compliance.caps import cap_release_s
from dispatch.hub.state import AttemptState
from dispatch.store import Store, WriteOp, insert_attempt, insert_record
from dispatch.store import compliance as sc

pytestmark = pytest.mark.anyio


async def test_internal_list_scopes_duplicates_and_audit(tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "d.db") as store:
        engine = store.engine
        assert await sc.dnc_add(engine, "+14155550101", reason="asked", source="cli a@b",
                                at_s=10.0)
        assert not await sc.dnc_add(engine, "+14155550101", reason="again", source="x",
                                    at_s=11.0)  # the first entry (and its audit) is kept
        assert await sc.dnc_add(engine, "+14155550102", scope="spring", reason="opt_out",
                                source="call", record_id="r7", at_s=12.0)
        assert await sc.dnc_phones(engine, "spring") == {"+14155550101", "+14155550102"}
        assert await sc.dnc_phones(engine, "autumn") == {"+14155550101"}
        entries = await sc.dnc_entries(engine)
        assert [(e.phone, e.scope, e.reason, e.record_id) for e in entries] == [
            ("+14155550101", "*", "asked", None), ("+14155550102", "spring", "opt_out", "r7")]
        before = await sc.dnc_fingerprint(engine)
        assert await sc.dnc_remove(engine, "+14155550102", scope="autumn") == 0
        assert await sc.dnc_remove(engine, "+14155550102") == 1
        assert await sc.dnc_fingerprint(engine) != before


def _claimed(n: int, phone: str = "+14155550101") -> list[WriteOp]:
    """``n`` finished records of campaign c1 on one phone, attempt i claimed at 100 + i."""
    ops = [insert_record(id=f"r{i}", phone=phone, strategy="s", status="completed",
                         payload={}, now=1.0, campaign_id="c1") for i in range(n)]
    return ops + [insert_attempt(source="s", record_id=f"r{i}", attempt_no=1, run_id=None,
                                 phone=phone, claimed_at=100.0 + i) for i in range(n)]


async def test_attempt_window_reads_indexes_and_feeds_the_caps(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    async with await Store.open(db) as store:
        async with anyio.create_task_group() as tg:
            await tg.start(store.run_writer)
            await store.write(_claimed(5))
            store.close_writer()
        window = await sc.attempt_window(store.engine, ["+14155550101", "+14155550199"], "c1",
                                         101.5, shift_s=1000.0, tail=2)
    assert list(window.phone_attempts_since("+14155550101", 1101.5)) == [1102.0, 1103.0,
                                                                         1104.0]
    assert list(window.phone_attempts_since("+14155550199", 1101.5)) == []
    with pytest.raises(KeyError):
        window.phone_attempts_since("+19999999999", 1101.5)  # never a silent zero
    with pytest.raises(ValueError):
        window.phone_attempts_since("+14155550101", 0.0)  # older than prefetched
    campaign = window.campaign_attempts_since("c1", 1101.5)
    assert len(campaign) == 3  # counted in full, only the newest 2 read
    assert cap_release_s(campaign, 2, 86_400) == 1103.0 + 86_400
    with sqlite3.connect(db) as conn:
        plans = [" ".join(str(r) for r in conn.execute(
            f"EXPLAIN QUERY PLAN SELECT count(*) FROM attempts WHERE {where}"))
            for where in ("phone IN ('+1', '+2') AND coalesce(dialed_at, claimed_at) > 5",
                          "campaign_id = 'c1' AND coalesce(dialed_at, claimed_at) > 5")]
        (campaign_ids,) = set(conn.execute("SELECT campaign_id FROM attempts"))
    assert "ix_attempts_phone_start" in plans[0]
    assert "ix_attempts_campaign_start" in plans[1]
    assert campaign_ids == ("c1",)  # filled at claim from the record


async def test_a_dial_counts_from_the_instant_it_left_not_from_its_claim(
        tmp_path: Path) -> None:
    async with await Store.open(tmp_path / "late.db") as store:
        async with anyio.create_task_group() as tg:
            await tg.start(store.run_writer)
            await store.write(_claimed(3))
            # r0 left 900 s after its claim (a reconnect); r2 never left at all
            await store.write([
                AttemptState(record_id=rid, attempt_no=1, phone="+14155550101",
                             claimed_at=claimed, source="s", dialed_at=sent).update_op()
                for rid, claimed, sent in (("r0", 100.0, 1000.0), ("r1", 101.0, 101.0))])
            store.close_writer()
        window = await sc.attempt_window(store.engine, ["+14155550101"], "c1", 100.5)
        count = await sc.attempt_count_since(store.engine, "+14155550101", 101.5)
    # by claim, r0 (claimed at 100) would have left a window starting at 100.5
    assert list(window.phone_attempts_since("+14155550101", 100.5)) == [101.0, 102.0,
                                                                        1000.0]
    assert list(window.campaign_attempts_since("c1", 100.5)) == [101.0, 102.0, 1000.0]
    assert count == 2  # r2 by its claim (never sent: still counted), r0 by its send
    assert cap_release_s(window.phone_attempts_since("+14155550101", 100.5), 3,
                         86_400) == 101.0 + 86_400


async def test_decision_op_is_stored_with_the_record(tmp_path: Path) -> None:
    db = tmp_path / "o.db"
    async with await Store.open(db) as store:
        decision = Decision.defer("calling_hours", 5000.0, "outside_calling_hours", "why")
        await store.write_now([
            insert_record(id="r", phone="+14155550101", strategy="s", status="scheduled",
                          payload={}, now=1.0)])
        await store.write_now([sc.decision_op(source="s", id="r", decision=decision,
                                              at_s=42.0)])
        deferred = await sc.deferrals(store.engine)
    assert deferred == [("outside_calling_hours", 1, 5000.0)]
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT decision, decision_reason, decision_until, decision_at,"
                           " decision_detail FROM records").fetchone()
    assert row == ("defer", "outside_calling_hours", 5000.0, 42.0, "why")


async def test_migration_0006_and_the_window_on_postgresql() -> None:
    import uuid

    asyncpg = pytest.importorskip("asyncpg")
    try:
        admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test", timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    name = f"admit_{uuid.uuid4().hex[:10]}"
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        store = await Store.open(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(store.run_writer)
                await store.write([
                    insert_record(id="r", phone="+14155550101", strategy="s",
                                  status="completed", payload={}, now=1.0, campaign_id="c1"),
                    insert_attempt(source="s", record_id="r", attempt_no=1, run_id=None,
                                   phone="+14155550101", claimed_at=5.0)])
                store.close_writer()
            assert await sc.dnc_add(store.engine, "+14155550101", reason="r", source="s",
                                    at_s=1.0)
            assert not await sc.dnc_add(store.engine, "+14155550101", reason="r", source="s",
                                        at_s=2.0)
            window = await sc.attempt_window(store.engine, ["+14155550101"], "c1", 0.0)
            assert list(window.phone_attempts_since("+14155550101", 0.0)) == [5.0]
            assert list(window.campaign_attempts_since("c1", 0.0)) == [5.0]
        finally:
            await store.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()
