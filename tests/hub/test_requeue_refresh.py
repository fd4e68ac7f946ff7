"""Requeued records are taken from the source again (or re-checked) before any dial:
recovering from a greeting typo, national numbers read without a region, and a
campaign-wide error that must not eat the retry budget across a restart."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from dispatch.errors import CampaignError
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sdk.errors import ConfigurationError
from dispatch.store import RequeueFilter, Store
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy, Raise

from .helpers import read_db

pytestmark = pytest.mark.anyio


async def _run(db: Path, records: list[Record], clock: FakeClock, dialer: MemoryDialer,
               raises: str | None = None, **options: object) -> None:
    hub = DispatchHub(dialer, [MemoryStrategy(records)], clock=clock, db=db,
                      poll_interval_s=1000, drain_timeout_s=None, **options)  # type: ignore[arg-type]
    async with clock.autojump():
        with anyio.fail_after(30):
            if raises is None:
                await hub.run(until_idle=True)
                return
            with pytest.raises(CampaignError, match=raises):
                await hub.run(until_idle=True)


async def _requeue(db: Path, selection: RequeueFilter) -> int:
    store = await Store.open(db)
    try:
        result = await store.requeue(selection, now=10.0, user="ops@test", pid=1)
    finally:
        await store.close()
    return result.count


async def test_a_fixed_source_row_replaces_the_requeued_payload(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(5.0))
    typo = [Record(id=f"r{i}", phone=f"+1555000010{i}",
                   metadata={"_invalid": "row 2: --greeting field 'first_name' is empty"})
            for i in range(3)]
    await _run(db, typo, clock, dialer)
    assert dialer.dials == []  # positive control: the mistake skipped every record
    assert await _requeue(db, RequeueFilter(reasons=("invalid_record",))) == 3

    fixed = [Record(id=f"r{i}", phone=f"+1555000010{i}", greeting=f"Hi person {i}")
             for i in range(3)]
    await _run(db, fixed, clock, dialer)
    assert sorted(d.to for d in dialer.dials) == [f"+1555000010{i}" for i in range(3)]
    assert {d.greeting for d in dialer.dials} == {f"Hi person {i}" for i in range(3)}
    rows, _ = await read_db(db)
    assert all(r["status"] == "completed" for r in rows.values())


async def test_a_held_record_no_source_returns_is_rechecked_with_this_runs_region(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.db"
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(5.0))
    national = [Record(id="n1", phone="(415) 555-0100"), Record(id="n2", phone="415 555 0101")]
    await _run(db, national, clock, dialer)
    assert dialer.dials == []
    assert await _requeue(db, RequeueFilter(reasons=("invalid_phone",))) == 2

    await _run(db, [], clock, dialer, default_region="US")  # the source is gone now
    assert sorted(d.to for d in dialer.dials) == ["+14155550100", "+14155550101"]


async def test_a_requeued_record_that_is_still_bad_is_skipped_again_not_dialled(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(5.0))
    await _run(db, [Record(id="n1", phone="415 555 0100"), Record(id="ok", phone="+15550000101")],
               clock, dialer)
    assert [d.to for d in dialer.dials] == ["+15550000101"]
    assert await _requeue(db, RequeueFilter(ids=("n1",))) == 1

    await _run(db, [], clock, dialer)  # still no region: still not dialable
    assert [d.to for d in dialer.dials] == ["+15550000101"]
    rows, _ = await read_db(db)
    assert (rows["n1"]["status"], rows["n1"]["last_reason"]) == ("skipped", "invalid_phone")


async def test_campaign_errors_stay_uncounted_after_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    clock = FakeClock()
    no_caller_id = ConfigurationError("No phone numbers registered on agent")
    dialer = MemoryDialer(clock, script={"+15550000101": [Raise(no_caller_id)] * 3})
    record = Record(id="r1", phone="+15550000101")
    await _run(db, [record], clock, dialer, "No phone numbers", retry_attempts=0)
    rows, attempts = await read_db(db)
    assert rows["r1"]["status"] == "pending" and len(attempts) == 3  # 3 refused dials stored

    # the refused dials are not counted after the restart either: the one retry the
    # record is owed after a busy still happens
    dialer2 = MemoryDialer(clock, script={"+15550000101": ["busy", Answer(5.0)]})
    await _run(db, [record], clock, dialer2, retry_attempts=1)
    assert [d.to for d in dialer2.dials] == ["+15550000101"] * 2
    rows, _ = await read_db(db)
    assert rows["r1"]["status"] == "completed"
