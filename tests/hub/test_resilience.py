"""Nothing stays non-terminal and run() always returns: stuck dialers, blocking
callbacks, rows that appear late, stored records that no longer validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.errors import SourceFailing
from dispatch.hub import DispatchHub
from dispatch.hub.attempt import DIAL_GRACE_S
from dispatch.hub.sources import GIVE_UP_AFTER
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.store import Store, insert_attempt, insert_record, update_record
from dispatch.strategy import RecordFailed
from dispatch.testing import Answer, FakeClock, Hang, MemoryCall, MemoryDialer, MemoryStrategy

from .helpers import eventually, read_db, records

pytestmark = pytest.mark.anyio


async def run_idle(hub: DispatchHub, clock: FakeClock) -> None:
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)


class StuckDialer(MemoryDialer):
    """Reports a call id, then never returns from ``dial`` (a wedged platform link)."""

    async def dial(self, to: str, **kwargs: Any) -> MemoryCall:
        call = MemoryCall(self, to, dict(kwargs.get("metadata") or {}))
        self.calls.append(call)
        on_dialing = kwargs["on_dialing"]
        on_dialing(call)
        await anyio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_dialer_that_never_returns_is_abandoned_and_hung_up(tmp_path: Path):
    clock = FakeClock()
    dialer = StuckDialer(clock)
    failed: list[RecordFailed] = []
    hub = DispatchHub(dialer, [MemoryStrategy(records(2))], db=tmp_path / "hub.db",
                      clock=clock, max_concurrent=1, dial_timeout_s=20,
                      on_failed=lambda record, error: failed.append(error))
    start = clock.now()
    await run_idle(hub, clock)
    assert all(call.hung_up for call in dialer.calls) and len(dialer.calls) == 2
    assert clock.now() - start >= 2 * (20 + DIAL_GRACE_S)
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"failed"}
    assert {(a.reason, a.raw_reason) for a in attempts} == {("timeout", "dial_deadline")}
    assert all(a.ended_at is not None and a.call_id for a in attempts)
    assert sorted(e.record_id for e in failed) == ["r0", "r1"]


async def test_a_callback_that_blocks_forever_does_not_keep_run_from_returning(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(5))
    seen: list[str] = []

    async def blocks(record: Record, *_: Any) -> None:
        seen.append(record.id)
        await anyio.Event().wait()

    hub = DispatchHub(dialer, [MemoryStrategy(records(3))], db=tmp_path / "hub.db",
                      clock=clock, on_completed=blocks, callback_drain_s=60)
    await run_idle(hub, clock)
    assert seen == ["r0"]  # delivery is in order, so the others were dropped (logged)
    rows, _ = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"}
    assert hub.statistics().completed == 3


class LateRowStrategy(MemoryStrategy):
    """A source that gains a row when the first call ends (a CSV appended meanwhile)."""

    def __init__(self, dialer: MemoryDialer, records: list[Record]) -> None:
        super().__init__(records)
        self._dialer = dialer

    async def poll(self) -> list[Any]:
        items = list(await super().poll())
        if self._dialer.calls and self._dialer.calls[0].ended_at is not None:
            items.append(Record(id="late", phone="+15550000077"))
        return items


async def test_until_idle_polls_again_after_the_last_call_ends(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(25))
    strategy = LateRowStrategy(dialer, records(1))
    hub = DispatchHub(dialer, [strategy], db=tmp_path / "hub.db", clock=clock,
                      poll_interval_s=10)
    await run_idle(hub, clock)
    assert strategy.polls >= 3  # dry polls happened while the first call was live
    assert [d.to for d in dialer.dials] == ["+15550000000", "+15550000077"]
    rows, _ = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"}


async def test_stored_records_that_no_longer_validate_are_closed(tmp_path: Path):
    path = tmp_path / "hub.db"
    clock = FakeClock()
    store = await Store.open(path)
    now = clock.now()
    await store.write_now([
        insert_record(id="old", phone="+15550000001", strategy="gone", status="pending",
                      payload={"field_of_an_older_version": 1}, now=now),
        insert_record(id="live", phone="+15550000002", strategy="gone", status="pending",
                      payload={"field_of_an_older_version": 1}, now=now),
        update_record(source="gone", id="live", status="dialing", attempts=1, last_reason=None,
                      last_call_id="CA1", next_attempt_at=None, disposition=None, error=None,
                      now=now),
        insert_attempt(source="gone",
                       record_id="live", attempt_no=1, run_id=None, phone="+15550000002",
                       claimed_at=now),
        insert_record(id="orphan", phone="+15550000003", strategy="gone", status="pending",
                      payload={}, now=now),
    ])
    await store.close()
    skipped: list[tuple[str, Reason]] = []
    completed: list[str] = []
    dialer = MemoryDialer(clock, default=Answer(1))
    hub = DispatchHub(dialer, [MemoryStrategy()], db=path, clock=clock,
                      on_skipped=lambda record, reason: skipped.append((record.id, reason)),
                      on_completed=lambda record, *_: completed.append(record.id))
    await run_idle(hub, clock)
    rows, attempts = await read_db(path)
    assert rows["old"]["status"] == "skipped" and rows["old"]["last_reason"] == "invalid_record"
    assert rows["live"]["status"] == "failed" and rows["live"]["attempts"] == 1
    assert [(a.record_id, a.reason) for a in attempts if a.record_id == "live"] == [
        ("live", "interrupted")
    ]
    # a valid record whose strategy is no longer configured is still dialled to the end
    assert rows["orphan"]["status"] == "completed"
    assert [d.to for d in dialer.dials] == ["+15550000003"]
    assert skipped == [("old", Reason.INVALID_RECORD)] and completed == ["orphan"]


async def test_a_phone_waiter_released_while_stopping_is_kept_for_the_next_run(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Hang())
    recs = [Record(id="a", phone="+15550000001"), Record(id="b", phone="+15550000001")]
    path = tmp_path / "hub.db"
    hub = DispatchHub(dialer, [MemoryStrategy(recs)], db=path, clock=clock)
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: hub.statistics().waiting_on == "phone")
        await hub.stop(drain=True, timeout_s=30)  # a is hung up, which frees b's phone
    assert len(dialer.dials) == 1
    rows, _ = await read_db(path)
    assert (rows["a"]["status"], rows["b"]["status"]) == ("completed", "pending")
    dialer.default = Answer(1)
    again = DispatchHub(dialer, [MemoryStrategy(recs)], db=path, clock=clock)
    await run_idle(again, clock)
    rows, _ = await read_db(path)
    assert rows["b"]["status"] == "completed"
    assert [d.metadata["dispatch_record_id"] for d in dialer.dials] == ["a", "b"]


async def test_a_poll_that_always_raises_still_lets_stored_work_finish(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(1))
    path = tmp_path / "hub.db"
    store = await Store.open(path)
    await store.write_now([insert_record(id="kept", phone="+15550000001", strategy="memory",
                                         status="pending", payload={}, now=clock.now())])
    await store.close()
    strategy = MemoryStrategy()
    strategy.poll_error = OSError("source unreachable")
    hub = DispatchHub(dialer, [strategy], db=path, clock=clock, poll_interval_s=1.0)
    # the stored work is done, but a failing source is never "idle, all done"
    async with clock.autojump():
        with pytest.raises(SourceFailing, match=r"'memory'.*source unreachable"):
            await hub.run(until_idle=True)
    rows, _ = await read_db(path)
    assert rows["kept"]["status"] == "completed" and strategy.polls >= GIVE_UP_AFTER
