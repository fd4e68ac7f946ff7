"""Slow callbacks hold admission back: the callback queue has a bound."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.hub import DispatchHub
from dispatch.hub.notify import Hooks, Notifier
from dispatch.records import Record
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

from .helpers import eventually, records

pytestmark = pytest.mark.anyio

RECORDS = 20
CONCURRENT = 2


def _hub(tmp_path: Path, bound: int, on_completed: Any) -> tuple[DispatchHub, MemoryDialer,
                                                               FakeClock]:
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(5))
    hub = DispatchHub(dialer, [MemoryStrategy(records(RECORDS))], clock=clock,
                      db=tmp_path / "hub.db", max_concurrent=CONCURRENT,
                      drain_timeout_s=None, on_completed=on_completed,
                      max_pending_callbacks=bound)
    return hub, dialer, clock


@pytest.mark.parametrize("bound", [3, 1000])
async def test_a_stuck_callback_stops_new_dials_until_it_returns(tmp_path: Path,
                                                                 bound: int) -> None:
    release = anyio.Event()
    delivered: list[str] = []

    async def on_completed(record: Record, *_: Any) -> None:
        await release.wait()  # the user's CRM is down
        delivered.append(record.id)

    hub, dialer, clock = _hub(tmp_path, bound, on_completed)
    with anyio.fail_after(60):
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(hub.run, until_idle=True))
            await _stall_then_release(hub, dialer, bound, release, delivered)
    assert len(dialer.dials) == RECORDS
    assert sorted(delivered) == sorted(f"r{i}" for i in range(RECORDS))
    stats = hub.statistics()
    assert (stats.completed, stats.callbacks_pending) == (RECORDS, 0)


async def _stall_then_release(hub: DispatchHub, dialer: MemoryDialer, bound: int,
                              release: anyio.Event, delivered: list[str]) -> None:
    if bound == 1000:  # control: an unbounded-enough queue lets every record dial
        await eventually(lambda: len(dialer.dials) == RECORDS and not dialer.live)
        assert hub.statistics().waiting_on != "callbacks"
    else:
        await eventually(lambda: hub.statistics().waiting_on == "callbacks"
                         and not dialer.live)
        # the queue filled, then only what was already in flight was added (the
        # calls live then, and the claim of the step that saw the last slot free)
        assert len(dialer.dials) <= bound + 2 * CONCURRENT
        assert hub.statistics().callbacks_pending <= bound + 2 * CONCURRENT
        assert hub.statistics().pending >= RECORDS - bound - 2 * CONCURRENT
    assert delivered == []
    release.set()


async def test_room_waits_for_delivery_and_returns_when_the_notifier_finishes() -> None:
    gate = anyio.Event()
    seen: list[str] = []

    async def on_skipped(record: Record, _reason: Any) -> None:
        await gate.wait()
        seen.append(record.id)

    from dispatch.reasons import Reason
    from dispatch.strategy import Outcome

    notifier = Notifier(Hooks(on_skipped=on_skipped), max_pending=2)
    outcome = [Outcome(record=Record(id=f"s{i}", phone="+15550000001"), status="skipped",
                       reason=Reason.INVALID_RECORD, attempts=0) for i in range(3)]
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        notifier.terminal(outcome[0], None)
        await notifier.room()  # under the bound: at once
        notifier.terminal(outcome[1], None)
        assert notifier.full
        waited = anyio.Event()

        async def producer() -> None:
            await notifier.room()
            notifier.terminal(outcome[2], None)
            waited.set()

        tg.start_soon(producer)
        await eventually(lambda: notifier.full_waits == 1)
        assert not waited.is_set()
        gate.set()  # deliveries drain the queue: the producer goes on
        await waited.wait()
        notifier.close()
    assert seen == ["s0", "s1", "s2"]
    await notifier.room()  # finished: never waits again
    with pytest.raises(ValueError, match="max_pending"):
        Notifier(Hooks(), max_pending=0)


async def test_a_dispatched_event_nobody_listens_to_is_not_queued() -> None:
    from dispatch.testing import MemoryStrategy

    seen: list[str] = []
    quiet = Notifier(Hooks())
    strategy = MemoryStrategy([])
    record = Record(id="d1", phone="+15550000001")
    quiet.dispatched(record, strategy, object())
    assert quiet.pending == 0
    strategy.on_dispatched = lambda rec, _call: seen.append(rec.id)  # now someone does
    async with anyio.create_task_group() as tg:
        await tg.start(quiet.run)
        quiet.dispatched(record, strategy, object())
        assert quiet.pending == 1
        quiet.close()
    assert seen == ["d1"] and quiet.pending == 0


async def test_waiters_resume_below_three_quarters_and_an_episode_is_logged_once() -> None:
    from structlog.testing import capture_logs

    from dispatch.reasons import Reason
    from dispatch.strategy import Outcome

    gate = anyio.Event()

    async def on_skipped(_record: Record, _reason: Any) -> None:
        await gate.wait()

    def skipped(i: int) -> Outcome:
        return Outcome(record=Record(id=f"s{i}", phone="+15550000001"), status="skipped",
                       reason=Reason.INVALID_RECORD, attempts=0)

    notifier = Notifier(Hooks(on_skipped=on_skipped), max_pending=4)
    assert notifier.resume_below == 3
    resumed: list[int] = []
    with capture_logs() as logs:
        await _fill_then_release(notifier, skipped, gate, resumed)
    assert all(p < 3 for p in resumed), "waiters go on only under three quarters"
    assert not notifier.full
    warnings = [e for e in logs if e["event"].startswith("callbacks are behind")]
    assert len(warnings) == 1, "one warning per episode, not one per waiting loop"


async def _fill_then_release(notifier: Notifier, skipped: Any, gate: anyio.Event,
                             resumed: list[int]) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        for i in range(4):
            notifier.terminal(skipped(i), None)

        async def loop(n: int) -> None:
            await notifier.room()
            resumed.append(notifier.pending)

        tg.start_soon(loop, 1)
        tg.start_soon(loop, 2)
        await eventually(lambda: notifier.full_waits == 2)
        assert notifier.full and resumed == []
        gate.set()
        await eventually(lambda: len(resumed) == 2)
        notifier.close()
