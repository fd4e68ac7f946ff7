"""DispatchHub behaviour with the shipped test kit (MemoryDialer, FakeClock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.hub import DispatchHub, RetryPolicy
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.sdk.errors import ConnectionLost
from dispatch.strategy import RecordFailed
from dispatch.testing import Answer, Fail, FakeClock, Hang, MemoryDialer, MemoryStrategy, Raise

from .helpers import eventually, max_in_window, read_db, records

pytestmark = pytest.mark.anyio


def make(tmp_path: Path, recs: list[Any], *, clock: FakeClock | None = None,
         dialer: MemoryDialer | None = None, **kwargs: Any):
    clock = clock or FakeClock()
    dialer = dialer or MemoryDialer(clock, default=Answer(30))
    strategy = MemoryStrategy(recs)
    kwargs.setdefault("db", tmp_path / "hub.db")
    # autojump can leap to a drain deadline while a store write runs in a worker thread;
    # tests that exercise the drain timeout pass one explicitly
    kwargs.setdefault("drain_timeout_s", None)
    hub = DispatchHub(dialer, [strategy], clock=clock, **kwargs)
    return hub, dialer, strategy, clock


async def run_idle(hub: DispatchHub, clock: FakeClock) -> None:
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)


async def test_limits_and_phone_dedup_with_many_records(tmp_path: Path):
    hub, dialer, _strategy, clock = make(
        tmp_path, records(120, phones=30), max_calls_per_minute=40, max_concurrent=6
    )
    await run_idle(hub, clock)
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"}
    assert len(dialer.dials) == 120
    assert dialer.max_live <= 6
    assert dialer.max_live_per_phone == 1
    assert max_in_window([a.dialed_at for a in attempts if a.dialed_at]) <= 40
    assert max_in_window([d.at for d in dialer.dials]) <= 40
    assert len({(a.record_id, a.attempt_no) for a in attempts}) == len(attempts) == 120
    stats = hub.statistics()
    assert (stats.completed, stats.pending, stats.active, stats.running) == (120, 0, 0, False)


async def test_rate_token_dials_at_once(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(0.0))
    hub, dialer, _, clock = make(tmp_path, records(3), clock=clock, dialer=dialer,
                                 max_calls_per_minute=1, poll_interval_s=1000)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: len(dialer.dials) == 1)
        assert hub.statistics().next_dial_eta_s == pytest.approx(60.0)
        clock.advance(59.5)
        await anyio.sleep(0.05)
        assert len(dialer.dials) == 1
        clock.advance(0.5)
        await eventually(lambda: len(dialer.dials) == 2)
        assert dialer.dials[1].at - dialer.dials[0].at == 60.0
        await hub.stop()


async def test_freed_slot_dials_without_clock_moving(tmp_path: Path):
    hub, dialer, _, clock = make(tmp_path, records(3), max_concurrent=1, poll_interval_s=1000)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: len(dialer.dials) == 1)
        await eventually(lambda: clock.next_deadline() == dialer.dials[0].at + 30)
        clock.advance(30)  # the first call ends; nothing else moves the clock
        await eventually(lambda: len(dialer.dials) == 2)
        assert dialer.dials[1].at == dialer.dials[0].at + 30
        await hub.stop(drain=False)
    assert not hub.running


async def test_retry_schedule_then_success(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, script={"+15550000000": ["busy", "no-answer", Answer(5)]})
    hub, dialer, strategy, clock = make(tmp_path, records(1), clock=clock, dialer=dialer,
                                        retry_attempts=2)
    await run_idle(hub, clock)
    times = [d.at for d in dialer.dials]
    assert times[1] - times[0] >= 120 and times[2] - times[1] >= 600
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert rows["r0"]["status"] == "completed" and rows["r0"]["attempts"] == 3
    assert [a.reason for a in attempts] == ["busy", "no_answer", "hangup"]
    outcome = strategy.outcome_of("r0")
    assert outcome is not None and outcome.status == "completed" and outcome.attempts == 3


async def test_retries_exhausted_fail_once(tmp_path: Path):
    failed: list[RecordFailed] = []
    clock = FakeClock()
    dialer = MemoryDialer(clock, default="busy")
    hub, dialer, _strategy, clock = make(
        tmp_path, records(2), clock=clock, dialer=dialer, retry_attempts=1,
        retry_policy=RetryPolicy(delays_s={Reason.BUSY: 30.0}),
        on_failed=lambda record, error: failed.append(error),
    )
    await run_idle(hub, clock)
    assert len(dialer.dials) == 4
    assert sorted(e.record_id for e in failed) == ["r0", "r1"]
    assert all(e.reason is Reason.BUSY and e.attempts == 2 for e in failed)
    rows, _ = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"failed"}
    assert {r["last_reason"] for r in rows.values()} == {"busy"}


async def test_many_retry_attempts_are_not_cut_by_the_default_cap(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default="busy")
    hub, dialer, _strategy, clock = make(tmp_path, records(1), clock=clock, dialer=dialer,
                                         retry_attempts=7)
    await run_idle(hub, clock)
    assert len(dialer.dials) == 8
    rows, _ = await read_db(tmp_path / "hub.db")
    assert rows["r0"]["status"] == "failed" and rows["r0"]["attempts"] == 8


async def test_scheduled_record_is_visible_with_next_time(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default="no-answer")
    hub, dialer, _, clock = make(tmp_path, records(1), clock=clock, dialer=dialer,
                                 retry_attempts=1, poll_interval_s=1000)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: hub.statistics().scheduled == 1)
        assert hub.store is not None
        await hub.store.flush()  # the status change is group-committed; wait for it
        (row,) = await hub.store.report_rows()
        assert row["status"] == "scheduled"
        assert row["next_attempt_at"] == pytest.approx(clock.now() + 600)
        assert hub.statistics().waiting_on == "schedule"
        await hub.stop()


async def test_not_before_is_honoured(tmp_path: Path):
    clock = FakeClock()
    import datetime as dt

    later = dt.datetime.fromtimestamp(clock.now() + 3600, tz=dt.UTC)
    recs = [Record(id="late", phone="+15550000001", not_before=later), *records(1)]
    hub, dialer, _, clock = make(tmp_path, recs, clock=clock, poll_interval_s=1000)
    await run_idle(hub, clock)
    at = {d.to: d.at for d in dialer.dials}
    assert at["+15550000001"] >= later.timestamp()
    assert at["+15550000000"] < later.timestamp()


async def test_raising_callbacks_never_stop_the_hub(tmp_path: Path):
    def boom(*_: Any) -> None:
        raise RuntimeError("user bug")

    async def aboom(*_: Any) -> None:
        raise RuntimeError("async user bug")

    recs = [*records(5), Record(id="bad", phone="nope")]
    hub, _dialer, strategy, clock = make(
        tmp_path, recs, on_dispatched=boom, on_completed=aboom, on_skipped=boom
    )
    strategy.on_dispatched = aboom
    strategy.on_completed = boom
    strategy.on_skipped = aboom
    await run_idle(hub, clock)
    stats = hub.statistics()
    assert (stats.completed, stats.skipped) == (5, 1)
    assert len(strategy.outcomes) == 6


async def test_bad_input_is_skipped_once_with_a_reason(tmp_path: Path):
    skipped: list[tuple[str, Reason]] = []
    recs: list[Any] = [
        *records(2),
        Record(id="r0", phone="+15559999999"),  # same id, same poll
        Record(id="badphone", phone="12"),
        {"id": "nogreeting", "phone": "+15550000007", "greeting": ["not", "text"]},
        {"phone": "+15550000008"},  # no id at all: logged, cannot be stored
        Record(id="row9", phone="+15550000009",
               metadata={"_invalid": "row 9: greeting field 'name' is empty"}),
    ]
    hub, dialer, strategy, clock = make(
        tmp_path, recs, poll_interval_s=1.0,
        on_skipped=lambda record, reason: skipped.append((record.id, reason)),
    )
    await run_idle(hub, clock)
    assert strategy.polls >= 2
    assert sorted(skipped) == [
        ("badphone", Reason.INVALID_PHONE),
        ("nogreeting", Reason.INVALID_RECORD),
        ("r0", Reason.DUPLICATE),
        ("row9", Reason.INVALID_RECORD),
    ]
    rows, _ = await read_db(tmp_path / "hub.db")
    assert rows["row9"]["status"] == "skipped"
    assert "row 9: greeting field 'name' is empty" in rows["row9"]["error"]
    assert rows["badphone"]["status"] == "skipped"
    assert "field 'phone'" in rows["badphone"]["error"]
    assert rows["nogreeting"]["last_reason"] == "invalid_record"
    assert "greeting" in rows["nogreeting"]["error"]
    assert rows["r0"]["status"] == "completed"
    assert [d.to for d in dialer.dials].count("+15559999999") == 0
    assert "+15550000009" not in [d.to for d in dialer.dials]


async def test_default_region_renormalises_national_numbers(tmp_path: Path):
    recs = [Record(id="us", phone="(415) 555-0100")]
    hub, dialer, _, clock = make(tmp_path, recs, default_region="US")
    await run_idle(hub, clock)
    assert [d.to for d in dialer.dials] == ["+14155550100"]


async def test_dial_carries_greeting_metadata_config_and_prompt_vars(tmp_path: Path):
    rec = Record(id="x", phone="+15550000001", greeting="Hi", metadata={"k": 1},
                 config={"language": "es"}, prompt_vars={"name": "Ana"})
    hub, dialer, _, clock = make(tmp_path, [rec], from_="+15550009999")
    await run_idle(hub, clock)
    (dial,) = dialer.dials
    assert (dial.from_, dial.greeting, dial.config) == ("+15550009999", "Hi", {"language": "es"})
    assert dial.metadata["k"] == 1 and dial.metadata["dispatch_record_id"] == "x"
    assert dialer.calls[0].prompt_vars == {"name": "Ana"}


async def test_prompt_vars_failure_is_noted_not_fatal(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(5, prompt_vars_error="call not found"))
    rec = Record(id="x", phone="+15550000001", prompt_vars={"a": "b"})
    hub, dialer, _, clock = make(tmp_path, [rec], clock=clock, dialer=dialer)
    await run_idle(hub, clock)
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert rows["x"]["status"] == "completed"
    assert "set_prompt_vars failed" in (attempts[0].error or "")


async def test_dialer_errors_settle_records(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, script={
        "+15550000000": [Raise(ConnectionLost("socket dropped")), Answer(1)],
        "+15550000001": [Raise(ValueError("weird"))],
    })
    hub, dialer, _, clock = make(tmp_path, records(2), clock=clock, dialer=dialer,
                                 retry_policy=RetryPolicy(delays_s={Reason.DISCONNECTED: 5.0}))
    await run_idle(hub, clock)
    rows, _attempts = await read_db(tmp_path / "hub.db")
    assert rows["r0"]["status"] == "completed" and rows["r0"]["attempts"] == 2
    assert rows["r1"]["status"] == "failed" and "weird" in rows["r1"]["error"]


async def test_graceful_drain_waits_then_hangs_up(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Hang())
    hub, dialer, _, clock = make(tmp_path, records(3), clock=clock, dialer=dialer,
                                 max_concurrent=2)
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: dialer.live == 2)
        start = clock.now()
        await hub.stop(drain=True, timeout_s=45)
        assert clock.now() - start >= 45
    assert all(call.hung_up for call in dialer.calls)
    rows, _ = await read_db(tmp_path / "hub.db")
    assert sorted(r["status"] for r in rows.values()) == ["completed", "completed", "pending"]


async def test_drain_has_a_default_timeout(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Hang())  # callees who never hang up
    hub, dialer, _, clock = make(tmp_path, records(1), clock=clock, dialer=dialer,
                                 drain_timeout_s=120.0)
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: dialer.live == 1)
        start = clock.now()
        await hub.stop()
        assert 120 <= clock.now() - start < 200
    assert all(call.hung_up for call in dialer.calls)


async def test_drain_lets_live_calls_finish(tmp_path: Path):
    hub, dialer, _strategy, clock = make(tmp_path, records(4), max_concurrent=2)
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: dialer.live == 2)
        await hub.stop()
    assert not any(call.hung_up for call in dialer.calls)
    rows, _ = await read_db(tmp_path / "hub.db")
    assert sorted(r["status"] for r in rows.values()) == ["completed"] * 2 + ["pending"] * 2


async def test_stop_now_leaves_records_consistent(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, script={"+15550000000": [Hang()],
                                         "+15550000001": [Fail("no-answer", ring_s=500)]})
    hub, dialer, _, clock = make(tmp_path, records(2), clock=clock, dialer=dialer)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: dialer.live == 2)
        await hub.stop(drain=False)
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert rows["r0"]["status"] == "completed"
    # the hub hung the answered call up itself: recorded as interrupted, wire word kept
    assert rows["r0"]["last_reason"] == "interrupted"
    (cut,) = [a for a in attempts if a.record_id == "r0"]
    assert (cut.reason, cut.raw_reason) == ("interrupted", "hangup")
    assert rows["r1"]["status"] == "scheduled" and rows["r1"]["last_reason"] == "interrupted"
    assert rows["r1"]["next_attempt_at"] >= clock.now() + 1
    assert all(a.ended_at is not None for a in attempts)


async def test_restart_continues_where_it_stopped(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(1))
    recs = records(10)
    hub, dialer, _, clock = make(tmp_path, recs, clock=clock, dialer=dialer,
                                 max_calls_per_minute=4)
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: len(dialer.dials) >= 4)
        await hub.stop()
    first = len(dialer.dials)
    assert 4 <= first < 10
    hub2 = DispatchHub(dialer, [MemoryStrategy(recs)], db=tmp_path / "hub.db", clock=clock,
                       max_calls_per_minute=4)
    await run_idle(hub2, clock)
    assert sorted(d.to for d in dialer.dials) == sorted(r.phone for r in recs)
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"}
    assert len(attempts) == 10
    assert hub2.statistics().completed == 10


async def test_until_idle_with_nothing_to_do_returns(tmp_path: Path):
    hub, dialer, strategy, clock = make(tmp_path, [])
    await run_idle(hub, clock)
    assert dialer.dials == [] and strategy.polls >= 1


async def test_poll_errors_are_logged_and_polling_goes_on(tmp_path: Path):
    hub, _dialer, strategy, clock = make(tmp_path, records(2), poll_interval_s=1.0)
    strategy.poll_error = OSError("disk gone")
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: strategy.polls >= 2)
        strategy.poll_error = None
        await eventually(lambda: hub.statistics().completed == 2)
        await hub.stop()


def test_bad_settings_are_refused(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock)
    with pytest.raises(ValueError, match="max_concurrent"):
        DispatchHub(dialer, [], max_concurrent=0, db=tmp_path / "x.db")
    with pytest.raises(ValueError, match="retry_attempts"):
        DispatchHub(dialer, [], retry_attempts=-1, db=tmp_path / "x.db")


async def test_recovery_of_records_left_live_by_a_crash(tmp_path: Path):
    from dispatch.store import Store, insert_attempt, insert_record, update_attempt, update_record

    path = tmp_path / "hub.db"
    clock = FakeClock()
    store = await Store.open(path)
    ops = []
    for rid, phone, status in (("d", "+15550000001", "dialing"), ("c", "+15550000002", "in_call")):
        ops += [
            insert_record(id=rid, phone=phone, strategy="memory", status="pending", payload={},
                          now=clock.now()),
            update_record(source="memory", id=rid, status=status, attempts=1, last_reason=None,
                          last_call_id="CA1", next_attempt_at=None, disposition=None, error=None,
                          now=clock.now()),
            insert_attempt(source="memory", record_id=rid, attempt_no=1, run_id=None, phone=phone,
                           claimed_at=clock.now()),
        ]
    ops.append(update_attempt(source="memory",
                              record_id="c", attempt_no=1, call_id="CA1", dialed_at=1.0,
                              dialing_at=1.0, answered_at=2.0, ended_at=None, reason=None,
                              raw_reason=None, duration_s=None, error=None, tool_results=None,
                              disposition=None))
    await store.write_now(ops)
    await store.close()
    recs = [Record(id="d", phone="+15550000001"), Record(id="c", phone="+15550000002")]
    hub, dialer, strategy, clock = make(tmp_path, recs, clock=clock)
    start = clock.now()
    await run_idle(hub, clock)
    assert [d.to for d in dialer.dials] == ["+15550000001"]  # the answered one is not redialled
    assert dialer.dials[0].at >= start + 300  # interrupted: never immediately
    rows, attempts = await read_db(path)
    assert rows["c"]["status"] == "completed" and rows["c"]["last_reason"] == "interrupted"
    assert rows["d"]["status"] == "completed" and rows["d"]["attempts"] == 2
    assert [a.reason for a in attempts if a.record_id == "d"] == ["interrupted", "hangup"]
    outcome = strategy.outcome_of("c")
    assert outcome is not None and outcome.reason is Reason.INTERRUPTED
