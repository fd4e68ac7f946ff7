"""Retry schedules of :class:`RetryPolicy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dispatch.hub import DEFAULT_DELAYS_S, DispatchHub, RetryPolicy
from dispatch.reasons import Reason
from dispatch.sdk.errors import ConnectionLost
from dispatch.testing import Answer, Fail, FakeClock, MemoryDialer, MemoryStrategy, Raise

from .helpers import read_db, records


@pytest.mark.parametrize(
    ("reason", "answered", "attempts", "retry_attempts", "expected"),
    [
        (Reason.BUSY, False, 1, 1, 120.0),
        (Reason.NO_ANSWER, False, 1, 2, 600.0),
        (Reason.FAILED, False, 1, 1, 900.0),
        (Reason.TIMEOUT, False, 1, 1, 600.0),
        (Reason.BUSY, False, 2, 1, None),  # retry_attempts used up
        (Reason.BUSY, False, 1, 0, None),  # JS default: no retries
        (Reason.HANGUP, True, 1, 3, None),  # answered: never
        (Reason.DISCONNECTED, True, 1, 3, None),  # answered disconnect: never
        (Reason.CANCELED, False, 1, 3, None),  # not retryable by default
        (Reason.ERROR, False, 1, 3, None),
        (Reason.INTERRUPTED, False, 1, 0, 300.0),  # infra: despite retry_attempts=0
        (Reason.DISCONNECTED, False, 1, 0, 120.0),
        (Reason.INTERRUPTED, False, 5, 9, None),  # lifetime cap (5)
    ],
)
def test_default_schedule(
    reason: Reason, answered: bool, attempts: int, retry_attempts: int, expected: float | None
):
    policy = RetryPolicy()
    got = policy.next_delay_s(
        reason, answered=answered, attempts=attempts, retry_attempts=retry_attempts
    )
    assert got == expected


def test_backoff_and_cap():
    policy = RetryPolicy(
        delays_s={Reason.BUSY: 10.0}, backoff=2.0, max_delay_s=50.0, max_attempts=9
    )
    delays = [
        policy.next_delay_s(Reason.BUSY, answered=False, attempts=n, retry_attempts=8)
        for n in range(1, 6)
    ]
    assert delays == [10.0, 20.0, 40.0, 50.0, 50.0]


def test_lifetime_cap_limits_retry_attempts():
    policy = RetryPolicy(max_attempts=2)
    assert policy.next_delay_s(Reason.BUSY, answered=False, attempts=1, retry_attempts=5) == 120.0
    assert policy.next_delay_s(Reason.BUSY, answered=False, attempts=2, retry_attempts=5) is None


def test_interrupted_never_immediate():
    with pytest.raises(ValueError, match="never redial immediately"):
        RetryPolicy(delays_s={**DEFAULT_DELAYS_S, Reason.INTERRUPTED: 0.0})
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(delays_s={Reason.BUSY: -1.0})


def test_max_attempts_alone_is_the_knob():
    policy = RetryPolicy(max_attempts=3)
    delays = [policy.next_delay_s(Reason.BUSY, answered=False, attempts=n) for n in (1, 2, 3)]
    assert delays == [120.0, 120.0, None]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("options", "dials"),
    [
        ({"retry_policy": RetryPolicy(max_attempts=3)}, 3),  # main: 1 (retry_attempts needed)
        ({"retry_attempts": 2}, 3),
        ({"retry_attempts": 1, "retry_policy": RetryPolicy(max_attempts=3)}, 2),  # narrows
        ({}, 1),
    ],
)
async def test_a_record_gets_the_dials_the_one_knob_says(
    tmp_path: Path, options: dict[str, Any], dials: int
):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default="busy")
    hub = DispatchHub(dialer, [MemoryStrategy(records(1))], db=tmp_path / "hub.db", clock=clock,
                      **options)
    async with clock.autojump():
        await hub.run(until_idle=True)
    assert len(dialer.dials) == dials
    rows, _ = await read_db(tmp_path / "hub.db")
    assert (rows["r0"]["status"], rows["r0"]["attempts"]) == ("failed", dials)


def test_asking_for_more_dials_than_the_policy_allows_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match=r"retry_attempts=4 asks for 5 dials.*max_attempts=3"):
        DispatchHub(MemoryDialer(FakeClock()), [], retry_attempts=4,
                    retry_policy=RetryPolicy(max_attempts=3), db=tmp_path / "x.db")


@pytest.mark.anyio
async def test_an_interrupted_attempt_is_retried_within_the_lifetime_cap(tmp_path: Path):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Fail("canceled"))
    phone = records(1)[0].phone
    dialer.set_script(phone, [Raise(ConnectionLost("socket dropped")), Answer(1)])
    hub = DispatchHub(dialer, [MemoryStrategy(records(1))], db=tmp_path / "hub.db", clock=clock)
    async with clock.autojump():
        await hub.run(until_idle=True)  # default: no retries for callee outcomes
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert rows["r0"]["status"] == "completed"
    assert [a.reason for a in attempts] == ["disconnected", "hangup"]
