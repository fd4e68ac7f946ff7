"""The hub's pace after the platform's rate refusals (pure, on explicit times)."""

from __future__ import annotations

import math

from dispatch.hub.limiter import SlidingWindowLimiter
from dispatch.hub.refusals import QUIET_RETRY_S, PlatformThrottle, _quiet_until
from dispatch.hub.state import RecordEntry
from dispatch.records import Record
from tests.compliance.helpers import at, local

NY = "America/New_York"


def _window(starts: list[float]) -> SlidingWindowLimiter:
    window = SlidingWindowLimiter(None)
    for t in starts:
        window.record(t)
    return window


def test_a_hint_is_honoured_exactly_and_nothing_else() -> None:
    throttle = PlatformThrottle(_window([0.0] * 10))
    assert throttle.refused(5.0, 12.0) == 17.0
    assert throttle.available(16.9) == 0 and throttle.next_allowed_at(16.9) == 17.0
    assert throttle.available(17.0) == math.inf  # no guessed budget when the server said


def test_without_a_hint_the_hold_doubles_and_the_pace_halves() -> None:
    window = _window([float(t) for t in range(10)])  # 10 dials in the last minute
    throttle = PlatformThrottle(window, base_hold_s=2.0, max_hold_s=5.0, recover_s=300.0)
    assert throttle.refused(10.0, None) == 12.0
    assert throttle.refused(10.0, None) == 14.0  # 2 in a row: 4 s
    assert throttle.refused(10.0, None) == 15.0  # capped at max_hold_s
    assert throttle.budget == 5  # half the 10 dials per minute it had made
    assert throttle.available(15.0) == 0  # still 10 in the window
    # one dial more is allowed once only 4 of the last minute's starts remain: when the
    # 5th-newest start (t=5) leaves the window
    assert throttle.next_allowed_at(15.0) == 65.0
    assert throttle.available(64.9) == 0 and throttle.available(65.0) == 1
    throttle.accepted()
    assert throttle.streak == 0 and throttle.refused(70.0, None) == 72.0
    assert throttle.available(400.0) == math.inf  # recovered


def test_reserved_tokens_count_against_the_budget() -> None:
    throttle = PlatformThrottle(_window([0.0, 1.0]))
    throttle.refused(2.0, None, default_hold_s=0.0)
    assert throttle.budget == 1
    assert throttle.available(70.0) == 1 and throttle.available(70.0, reserved=1) == 0
    assert throttle.next_allowed_at(70.0, reserved=1) == 130.0


def _entry(phone: str, **fields: str) -> RecordEntry:
    return RecordEntry(record=Record(id="r1", phone=phone, metadata=dict(fields)), strategy=None,
                       strategy_name="m", source="m", status="dialing")


def test_quiet_hours_without_a_hint_wait_for_the_platform_window() -> None:
    night = at("2026-06-01T22:30", NY)
    until = _quiet_until(_entry("+12125550100"), night, None)
    assert local(until, NY) == "2026-06-02T08:00:00-04:00"
    assert _quiet_until(_entry("+12125550100"), night, 30.0) == night + 30.0
    noon = at("2026-06-01T12:00", NY)  # both windows open: re-check later, do not hammer
    assert _quiet_until(_entry("+12125550100"), noon, None) == noon + QUIET_RETRY_S
