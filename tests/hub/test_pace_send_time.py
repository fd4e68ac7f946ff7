"""Rate tokens are spent when the dial frame leaves, on the hub's clock (FakeClock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.hub import DispatchHub
from dispatch.testing import Answer, Fail, FakeClock, MemoryDialer, MemoryStrategy

from .helpers import T0, max_in_window, read_db, records

pytestmark = pytest.mark.anyio


async def run(tmp_path: Path, dialer: MemoryDialer, clock: FakeClock, recs: list[Any],
              **kwargs: Any) -> DispatchHub:
    """Run to idle under autojump. A store write runs in a worker thread, and autojump
    may leap to the next sleeper meanwhile, so a dial can leave a little later than its
    token allows: the tests bound times from below exactly and from above loosely."""
    hub = DispatchHub(dialer, [MemoryStrategy(recs)], db=tmp_path / "hub.db", clock=clock,
                      drain_timeout_s=None, poll_interval_s=600.0, **kwargs)
    async with clock.autojump(settle_s=0.05):
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    return hub


def in_window_1s(times: list[float]) -> int:
    ordered = sorted(times)
    return max(sum(1 for t in ordered if s <= t < s + 1.0) for s in ordered)


async def test_the_window_is_stamped_when_the_frame_leaves_not_at_the_claim(tmp_path: Path):
    recs = records(10)
    slow = {r.phone for r in recs[:5]}  # the first batch waits 10 s behind a busy socket
    clock = FakeClock(T0)
    dialer = MemoryDialer(clock, default=Answer(1.0),
                          send_delay_s=lambda to: 10.0 if to in slow else 0.0)
    hub = await run(tmp_path, dialer, clock, recs, max_calls_per_minute=5)
    sent = sorted(d.at for d in dialer.dials)
    claimed = min(a.claimed_at for a in (await read_db(tmp_path / "hub.db"))[1])
    # claimed together, left >= 10 s later: the next five leave 60 s after the *send*
    first = sent[0]
    assert first >= claimed + 10.0 and sent[:5] == [first] * 5
    assert all(first + 60.0 <= t < first + 70.0 for t in sent[5:])
    assert max_in_window(sent) == 5
    _rows, attempts = await read_db(tmp_path / "hub.db")
    assert sorted(a.dialed_at for a in attempts) == sent  # stored start = send instant
    assert hub.statistics().dials_total == 10


async def test_a_dial_cancelled_before_its_frame_left_uses_no_token(tmp_path: Path):
    stuck, free = records(2)
    clock = FakeClock(T0)
    # the first dial never gets its frame out: the hub gives up at 10 + 30 s (grace)
    dialer = MemoryDialer(clock, default=Answer(1.0),
                          send_delay_s=lambda to: 1e6 if to == stuck.phone else 0.0)
    hub = await run(tmp_path, dialer, clock, [stuck, free], max_calls_per_minute=1,
                    dial_timeout_s=10.0, retry_attempts=0)
    rows, attempts = await read_db(tmp_path / "hub.db")
    by_record = {a.record_id: a for a in attempts}
    assert (by_record["r0"].reason, by_record["r0"].raw_reason) == ("timeout", "dial_deadline")
    assert by_record["r0"].dialed_at is None  # never sent
    assert rows["r1"]["status"] == "completed"
    # its token came back when it was given up (40 s after its dial began): the other
    # dial leaves then, not 60 s after the claim
    given_up_at = by_record["r0"].ended_at
    assert given_up_at is not None and given_up_at >= by_record["r0"].claimed_at + 40.0
    assert [d.to for d in dialer.dials] == [free.phone]
    assert given_up_at <= dialer.dials[0].at < given_up_at + 10.0
    assert hub.statistics().dials_total == 1


async def test_a_refused_dial_still_spends_its_token(tmp_path: Path):
    refused, other = records(2)
    clock = FakeClock(T0)
    dialer = MemoryDialer(clock, default=Answer(1.0),
                          script={refused.phone: [Fail("failed", with_call_id=False)]})
    await run(tmp_path, dialer, clock, [refused, other], max_calls_per_minute=1,
              retry_attempts=0)
    first, second = dialer.dials
    assert (first.to, second.to) == (refused.phone, other.phone)
    assert second.at - first.at >= 60.0


async def test_per_second_cap(tmp_path: Path):
    clock = FakeClock(T0)
    dialer = MemoryDialer(clock, default=Answer(5.0))
    hub = await run(tmp_path, dialer, clock, records(7), max_calls_per_second=2)
    sent = sorted(d.at for d in dialer.dials)
    assert in_window_1s(sent) == 2  # reached, never exceeded
    assert 3.0 <= sent[-1] - sent[0] < 10.0  # 7 dials at 2 per second
    stats = hub.statistics()
    assert (stats.max_calls_per_second, stats.dials_total) == (2, 7)


async def test_per_second_and_per_minute_together(tmp_path: Path):
    clock = FakeClock(T0)
    dialer = MemoryDialer(clock, default=Answer(0.5))
    await run(tmp_path, dialer, clock, records(8), max_calls_per_second=2,
              max_calls_per_minute=4)
    sent = sorted(d.at for d in dialer.dials)
    assert in_window_1s(sent) == 2 and max_in_window(sent) == 4
    assert sent[4] - sent[0] >= 60.0 and sent[1] - sent[0] < 1.0 <= sent[2] - sent[0]


async def test_statistics_show_the_per_second_limit(tmp_path: Path):
    clock = FakeClock(T0)
    seen: list[tuple[int | None, int]] = []
    dialer = MemoryDialer(clock, default=Answer(5.0))

    async def on_dispatched(*_: Any) -> None:
        stats = hub.statistics()
        seen.append((stats.max_calls_per_second, stats.dials_last_1s))

    hub = DispatchHub(dialer, [MemoryStrategy(records(3))], db=tmp_path / "hub.db",
                      clock=clock, drain_timeout_s=None, max_calls_per_second=3,
                      on_dispatched=on_dispatched)
    assert hub.statistics().max_calls_per_second == 3  # before the run too
    async with clock.autojump(settle_s=0.05):
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    assert seen and all(cap == 3 and 1 <= last <= 3 for cap, last in seen)


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_per_second_cap_is_refused(tmp_path: Path, bad: int):
    with pytest.raises(ValueError, match="max_calls_per_second"):
        DispatchHub(MemoryDialer(FakeClock()), [], db=tmp_path / "x.db",
                    max_calls_per_second=bad)
