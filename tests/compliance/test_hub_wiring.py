"""The admission step wired into the hub (issue 9): a fake clock, a MemoryDialer and a
real SQLite file. Deferrals wake at the opening and are not attempts; DNC hits (file
and internal list) are never dialled; caps come from the stored attempts."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch import DispatchHub
from dispatch.compliance import ComplianceSettings
from dispatch.hub.admission import Compliance
from dispatch.records import Record
from dispatch.store import Store
from dispatch.store import compliance as store_compliance
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy
from tests.compliance.helpers import at, local
from tests.hub.helpers import eventually

pytestmark = pytest.mark.anyio
NY = "America/New_York"


def _ny(n: int) -> str:
    return f"+1212555{n:04d}"


def _hub(tmp_path: Path, recs: list[Record], clock: FakeClock, dialer: MemoryDialer,
         compliance: Any, **kwargs: Any) -> DispatchHub:
    # a long poll interval: an overnight deferral on the fake clock is not 8,000 polls
    kwargs.setdefault("poll_interval_s", 900.0)
    return DispatchHub(dialer, [MemoryStrategy(recs)], clock=clock, db=tmp_path / "c.db",
                       drain_timeout_s=None, compliance=compliance, **kwargs)


def _rows(db: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {r["id"]: dict(r) for r in conn.execute("SELECT * FROM records")}


def _attempts(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM attempts ORDER BY claimed_at")]


async def _run(hub: DispatchHub, clock: FakeClock, settle_s: float = 0.05) -> None:
    # the admission step reads the store before a claim: give those reads time to
    # finish before the fake clock jumps (autojump treats a thread wait as blocked)
    async with clock.autojump(settle_s=settle_s):
        with anyio.fail_after(60):
            await hub.run(until_idle=True)


async def test_started_at_2055_dials_until_2100_and_resumes_at_0800(tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-10T20:55:00", NY))
    dialer = MemoryDialer(clock, default=Answer(100))  # each call holds the line 100 s
    recs = [Record(id=f"r{i}", phone=_ny(i)) for i in range(6)]
    hub = _hub(tmp_path, recs, clock, dialer, ComplianceSettings(), max_concurrent=1,
               poll_interval_s=3600.0)
    await _run(hub, clock, settle_s=0.3)  # exact times asserted: a generous settle

    dialled = [local(d.at, NY)[:16] for d in dialer.dials]
    assert len(dialled) == 6  # everyone dialled exactly once
    before = [t for t in dialled if t < "2026-03-10T21:00"]
    after = [t for t in dialled if t >= "2026-03-11T08:00"]
    assert len(before) == 3 and len(after) == 3, dialled  # 20:55, 20:56:40, 20:58:20
    assert after[0] == "2026-03-11T08:00"  # woken at the exact opening minute
    rows = _rows(tmp_path / "c.db")
    assert all(r["status"] == "completed" and r["attempts"] == 1 for r in rows.values())
    attempts = _attempts(tmp_path / "c.db")
    assert len(attempts) == 6 and all(a["attempt_no"] == 1 for a in attempts)  # not attempts
    assert {a["campaign_id"] for a in attempts} == {hub.campaign}
    # the last decision is stored: the deferred ones were allowed at the opening
    late = [r for r in rows.values() if r["decision_at"] >= at("2026-03-11T08:00:00", NY)]
    assert len(late) == 3 and all(r["decision"] == "allow" for r in late)


async def test_deferred_record_is_stored_with_its_decision(tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-10T22:00:00", NY))
    dialer = MemoryDialer(clock, default=Answer(10))
    recs = [Record(id=f"r{i}", phone=_ny(i)) for i in range(3)]
    hub = _hub(tmp_path, recs, clock, dialer, ComplianceSettings())
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: hub.statistics().scheduled == 3)
        store = hub.store
        assert store is not None
        await store.flush()
        rows = _rows(tmp_path / "c.db")
        opening = at("2026-03-11T08:00:00", NY)
        for row in rows.values():
            assert (row["status"], row["attempts"], row["decision"]) == ("scheduled", 0, "defer")
            assert row["decision_reason"] == "outside_calling_hours"
            assert row["decision_until"] == opening
            assert "America/New_York" in row["decision_detail"]
        stats = hub.statistics()
        assert stats.waiting_on == "compliance"  # the panel says when the window opens
        assert stats.next_dial_eta_s is not None
        assert abs(stats.next_dial_eta_s - (opening - clock.now())) < 1.0
        preview = await hub.preview()
        assert preview.dial_now == 0 and sum(preview.deferred.values()) == 3
        later = await hub.preview(at=at("2026-03-11T10:00:00", NY))
        assert later.dial_now == 3
        assert dialer.dials == []  # the positive control is the next test's dials
        hub.request_stop(drain=False)
    assert _attempts(tmp_path / "c.db") == []
    # not running: a hub previews the database's records to dial
    idle = _hub(tmp_path, recs, clock, dialer, ComplianceSettings())
    assert (await idle.preview()).dial_now == 0
    morning = await idle.preview(at=at("2026-03-11T09:00:00", NY))
    assert morning.dial_now == 3 and not morning.deferred and dialer.dials == []


async def test_dnc_file_and_internal_list_are_never_dialled(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with await Store.open(db) as store:
        await store_compliance.dnc_add(store.engine, _ny(1), reason="asked", source="test",
                                       at_s=1.0)
    dnc_file = tmp_path / "dnc.txt"
    dnc_file.write_text(f"# do not call\n{_ny(2)}\nnot a number\n", encoding="utf-8")
    clock = FakeClock(at("2026-03-10T10:00:00", NY))
    dialer = MemoryDialer(clock, default=Answer(5))
    recs = [Record(id=f"r{i}", phone=_ny(i)) for i in range(4)]
    hub = _hub(tmp_path, recs, clock, dialer, Compliance(dnc_files=[dnc_file]))
    await _run(hub, clock)
    assert sorted(d.to for d in dialer.dials) == [_ny(0), _ny(3)]
    async with await Store.open(db, read_only=True) as store:
        (run,) = await store.runs()
    audit = run["config"]["compliance"]  # which rules this run dialled under
    assert audit["calling_hours"] == "every day 08:00-21:00" and audit["phone_cap"] == 3
    assert audit["dnc_lists"] == [{"name": "internal", "numbers": 1},
                                  {"name": "dnc.txt", "numbers": 1}]
    rows = _rows(db)
    assert (rows["r1"]["status"], rows["r1"]["last_reason"]) == ("skipped", "dnc")
    assert "'internal'" in rows["r1"]["error"]
    assert (rows["r2"]["status"], rows["r2"]["last_reason"]) == ("skipped", "dnc")
    assert "'dnc.txt'" in rows["r2"]["error"] and rows["r2"]["decision"] == "skip"


async def test_opt_out_suppresses_the_next_record_of_that_number(tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-10T10:00:00", NY))
    dialer = MemoryDialer(clock, default=Answer(5))
    start = at("2026-03-10T10:00:00", NY)
    later = dt.datetime.fromtimestamp(start + 600, dt.UTC)  # after the first call's callback
    recs = [Record(id="first", phone=_ny(7)), Record(id="second", phone=_ny(7),
                                                     not_before=later)]

    async def opted_out(record: Record, call_id: str, reason: Any) -> None:
        core = hub._core
        assert core is not None
        # the positional shape helper `refuse` calls (HubCore.opt_out_sink)
        await core.compliance.opt_out_sink(record.phone, hub.campaign, record.id, "test")

    hub = _hub(tmp_path, recs, clock, dialer, ComplianceSettings(), on_completed=opted_out)
    await _run(hub, clock)
    assert [d.to for d in dialer.dials] == [_ny(7)]
    rows = _rows(tmp_path / "c.db")
    assert rows["second"]["last_reason"] == "dnc"
    async with await Store.open(tmp_path / "c.db", read_only=True) as store:
        entries = await store_compliance.dnc_entries(store.engine)
    assert [(e.phone, e.reason, e.record_id) for e in entries] == [(_ny(7), "opt_out", "first")]


async def test_phone_cap_defers_until_the_oldest_attempt_leaves_the_window(
        tmp_path: Path) -> None:
    start = at("2026-03-10T10:00:00", NY)
    clock = FakeClock(start)
    dialer = MemoryDialer(clock, default=Answer(60))
    recs = [Record(id=f"r{i}", phone=_ny(9)) for i in range(4)]  # one phone, four records
    hub = _hub(tmp_path, recs, clock, dialer, ComplianceSettings(phone_cap=3))
    await _run(hub, clock)
    times = [d.at - start for d in dialer.dials]
    assert len(times) == 4 and times[2] < 3600
    assert times[3] >= 86_400 + times[0] - 1e-6  # 24 h after the first counted attempt
    rows = _rows(tmp_path / "c.db")
    assert all(r["attempts"] == 1 for r in rows.values())


async def test_unknown_zone_is_skipped_and_a_fallback_zone_dials(tmp_path: Path) -> None:
    clock = FakeClock(at("2026-03-10T10:00:00", NY))
    dialer = MemoryDialer(clock, default=Answer(5))
    recs = [Record(id="nozone", phone="+15550000001")]
    hub = _hub(tmp_path, recs, clock, dialer, ComplianceSettings())
    await _run(hub, clock)
    assert dialer.dials == []
    assert _rows(tmp_path / "c.db")["nozone"]["last_reason"] == "unknown_timezone"
    (tmp_path / "c.db").unlink()
    hub = _hub(tmp_path, recs, clock, dialer, ComplianceSettings(fallback_zone=NY))
    await _run(hub, clock)
    assert [d.to for d in dialer.dials] == ["+15550000001"]


async def test_campaign_cap_counts_this_campaigns_stored_attempts(tmp_path: Path) -> None:
    start = at("2026-03-10T10:00:00", NY)
    clock = FakeClock(start)
    dialer = MemoryDialer(clock, default=Answer(30))
    recs = [Record(id=f"r{i}", phone=_ny(20 + i)) for i in range(3)]
    hub = _hub(tmp_path, recs, clock, dialer, ComplianceSettings(campaign_cap=2),
               max_concurrent=1)
    await _run(hub, clock)
    times = sorted(d.at - start for d in dialer.dials)
    assert len(times) == 3 and times[1] < 3600
    assert times[2] >= 86_400 + times[0] - 1e-6  # the oldest counted attempt left the day
    rows = _rows(tmp_path / "c.db")
    assert rows["r2"]["decision"] == "allow" and rows["r2"]["attempts"] == 1


async def test_simulated_time_skips_the_night_even_for_a_stored_deferral(
        tmp_path: Path) -> None:
    night = at("2026-03-10T22:00:00", NY)
    clock = FakeClock(night)
    dialer = MemoryDialer(clock, default=Answer(5))
    recs = [Record(id=f"r{i}", phone=_ny(40 + i)) for i in range(3)]
    first = _hub(tmp_path, recs, clock, dialer, Compliance())  # the real clock: it waits
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.run)
        await eventually(lambda: first.statistics().scheduled == 3)
        first.request_stop(drain=False)
    assert dialer.dials == []  # stored: scheduled 10 h of hub time away
    # again on simulated time (the embedded sandbox): the stored wake-ups are stale
    again = _hub(tmp_path, recs, clock, dialer, Compliance(sandbox_time_s=night))
    rerun_at = clock.now()
    await _run(again, clock)
    assert len(dialer.dials) == 3
    # the 10 h night was jumped over (the bound allows autojump to leap a few poll
    # intervals of 15 min while the store is read in a worker thread)
    assert all(d.at - rerun_at < 3 * 3600 for d in dialer.dials)
    rows = _rows(tmp_path / "c.db")
    assert {local(r["decision_at"], NY)[:16] for r in rows.values()} == {"2026-03-11T08:00"}
    assert all(r["attempts"] == 1 for r in rows.values())


class _LeadClock(FakeClock):
    """A fake clock that says it runs 600x real time: the hub then claims a rate-bound
    dial up to 50 ms real = 30 s of this clock ahead of its token. Never advanced here,
    so every decision below is made at the start instant."""

    def real_seconds(self, seconds: float) -> float:
        return seconds / 600.0


@pytest.mark.parametrize(("start", "dialled"), [("20:59:29", 2), ("20:59:31", 0)])
async def test_a_dial_claimed_ahead_must_be_allowed_when_it_may_leave(
        tmp_path: Path, start: str, dialled: int) -> None:
    # 31 s before 21:00 a claim may leave up to 30 s later: still inside the hours;
    # 29 s before, it could leave after the close, so it is deferred to the morning
    clock = _LeadClock(at(f"2026-03-10T{start}", NY))
    dialer = MemoryDialer(clock, default=Answer(1))
    recs = [Record(id=f"r{i}", phone=_ny(i)) for i in range(2)]
    hub = DispatchHub(dialer, [MemoryStrategy(recs)], clock=clock, db=tmp_path / "c.db",
                      compliance=ComplianceSettings(), max_calls_per_minute=10,
                      poll_interval_s=900.0, drain_timeout_s=None)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: hub.statistics().scheduled + len(dialer.dials) == 2)
        await hub.stop(drain=False)
    assert len(dialer.dials) == dialled
    if not dialled:
        rows = _rows(tmp_path / "c.db")
        assert {(r["status"], r["decision_reason"]) for r in rows.values()} == {
            ("scheduled", "outside_calling_hours")}
