"""Refused dials become record decisions; preview tallies decisions."""

from __future__ import annotations

import pytest

from dispatch.compliance import (
    PreviewSummary,
    RefusalKind,
    Verdict,
    default_admission,
    reasons,
    refusal_decision,
)
from tests.compliance.helpers import at, ctx, local

NY = "America/New_York"
PHONE = "+12125550100"
K = RefusalKind


@pytest.mark.parametrize(("kind", "verdict", "reason", "delay_s"), [
    (K.SLOW_DOWN, Verdict.DEFER, reasons.PLATFORM_RATE_LIMITED, 60.0),
    (K.PAUSE_DAY, Verdict.DEFER, reasons.PLATFORM_RATE_LIMITED, 3600.0),
    (K.DEFER_DAY, Verdict.DEFER, reasons.PLATFORM_TOO_OFTEN, 86_400.0),
    (K.DNC, Verdict.SKIP, reasons.DNC, None),
    (K.NO_CONSENT, Verdict.SKIP, reasons.NO_CONSENT, None),
    (K.STRANGER, Verdict.SKIP, reasons.STRANGER, None),
])
def test_refusal_decisions(kind: RefusalKind, verdict: Verdict, reason: str,
                           delay_s: float | None) -> None:
    now = at("2026-06-01T12:00", NY)
    decision = refusal_decision(kind, ctx(now, PHONE))
    assert decision is not None
    assert (decision.verdict, decision.reason) == (verdict, reason)
    assert decision.until_s == (None if delay_s is None else now + delay_s)


def test_quota_and_other_are_not_record_decisions() -> None:
    assert refusal_decision(K.QUOTA, ctx(0.0, PHONE)) is None
    assert refusal_decision(K.OTHER, ctx(0.0, PHONE)) is None


def test_quiet_hours_uses_the_number_zones_even_when_the_record_says_otherwise() -> None:
    # the record says Los Angeles (open at 22:00 NY = 19:00 LA), the platform looks at
    # the number's zone (New York, closed): wait for 08:00 LA, when both are open
    now = at("2026-06-01T22:00", NY)
    decision = refusal_decision(K.QUIET_HOURS, ctx(now, PHONE, timezone="America/Los_Angeles"))
    assert decision is not None and decision.reason == reasons.PLATFORM_QUIET_HOURS
    assert local(decision.until_s, "America/Los_Angeles") == "2026-06-02T08:00:00-07:00"
    # when both windows look open, re-check later rather than hammer the server
    noon = at("2026-06-01T12:00", NY)
    again = refusal_decision(K.QUIET_HOURS, ctx(noon, PHONE), quiet_retry_s=900.0)
    assert again is not None and again.until_s == noon + 900.0


def test_preview_summary() -> None:
    admission = default_admission()
    summary = PreviewSummary(examples_per_group=1)
    now = at("2026-06-01T22:00", NY)
    for i, phone in enumerate(["+12125550100", "+12125550101", "+19995550100", "+34912345678"]):
        context = ctx(now, phone)
        summary.add(f"r{i}", admission.decide(context), zone=context.zones.names)
    lines = summary.lines()
    assert lines[0] == "dial now: 0"
    assert lines[1] == ("deferred outside_calling_hours America/New_York: 2 "
                        "(first wakes 2026-06-02T12:00Z)")
    assert lines[2].startswith("  e.g. r0: window every day 08:00-21:00 in America/New_York "
                               "(number): opens Tue 2026-06-02 08:00 EDT")
    assert "deferred outside_calling_hours Europe/Madrid: 1" in "\n".join(lines)
    assert "skipped unknown_timezone: 1" in lines
