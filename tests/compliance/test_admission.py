"""Admission: policies in order, first non-allow wins; Decision shapes."""

from __future__ import annotations

from dispatch.compliance import (
    Admission,
    Decision,
    DialContext,
    Verdict,
    default_admission,
    reasons,
)
from tests.compliance.helpers import FakeAttempts, at, ctx, local


class Fixed:
    def __init__(self, name: str, decision: Decision) -> None:
        self.name = name
        self.decision = decision
        self.asked = 0

    def decide(self, ctx: DialContext) -> Decision:
        self.asked += 1
        return self.decision


def test_first_non_allow_wins_and_later_policies_are_not_asked() -> None:
    allow = Fixed("a", Decision.allow("a"))
    defer = Fixed("b", Decision.defer("b", 10.0, "why", "detail"))
    skip = Fixed("c", Decision.skip("c", "dnc", "on list"))
    decision = Admission([allow, defer, skip]).decide(ctx(0.0, "+12125550100"))
    assert (decision.verdict, decision.policy, decision.until_s) == (Verdict.DEFER, "b", 10.0)
    assert (allow.asked, defer.asked, skip.asked) == (1, 1, 0)
    assert "until 1970-01-01T00:00Z (why, b): detail" in str(decision)


def test_all_allow() -> None:
    assert Admission([Fixed("a", Decision.allow("a"))]).decide(ctx(0.0, "+1")).allowed
    assert Admission([]).decide(ctx(0.0, "+1")).allowed


def test_default_admission_dials_until_21_and_resumes_at_08() -> None:
    admission = default_admission()
    phone = "+12125550100"
    assert admission.decide(ctx(at("2026-06-01T20:55", "America/New_York"), phone)).allowed
    late = admission.decide(ctx(at("2026-06-01T21:00", "America/New_York"), phone))
    assert late.reason == reasons.OUTSIDE_CALLING_HOURS
    assert local(late.until_s, "America/New_York") == "2026-06-02T08:00:00-04:00"
    assert late.until_s is not None and admission.decide(ctx(late.until_s, phone)).allowed
    # three attempts in the evening: the morning wake-up is deferred again by the cap
    evening = [at(f"2026-06-01T20:5{i}", "America/New_York") for i in range(3)]
    capped = admission.decide(ctx(late.until_s, phone, attempts=FakeAttempts({phone: evening})))
    assert capped.reason == reasons.PHONE_CAP
    assert local(capped.until_s, "America/New_York") == "2026-06-02T20:50:00-04:00"
