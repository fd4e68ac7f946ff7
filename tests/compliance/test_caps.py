"""Per-phone and per-campaign caps: defer until the oldest counted attempt leaves."""

from __future__ import annotations

import pytest

from dispatch.compliance import (
    CampaignCapPolicy,
    ComplianceSettings,
    PhoneCapPolicy,
    Verdict,
    reasons,
)
from dispatch.compliance.caps import cap_release_s
from tests.compliance.helpers import FakeAttempts, ctx

H = 3600.0
NOW = 1_780_000_000.0
NY_PHONE, MIAMI = "+12125550100", "+13055550100"


@pytest.mark.parametrize(("ages_h", "cap", "release_age_h"), [
    ([], 3, None),
    ([1, 2], 3, None),
    ([1, 2, 23], 3, 23),  # the oldest of three leaves at 24 h
    ([1, 2, 5, 23], 3, 5),  # four counted: two must leave, the second oldest decides
    ([0.5], 1, 0.5),
])
def test_cap_release(ages_h: list[float], cap: int, release_age_h: float | None) -> None:
    attempts = sorted(NOW - a * H for a in ages_h)
    got = cap_release_s(attempts, cap, 24 * H)
    assert got == (None if release_age_h is None else NOW - release_age_h * H + 24 * H)


def test_phone_cap_defers_to_the_oldest_leaving_the_window() -> None:
    attempts = FakeAttempts({NY_PHONE: [NOW - 23 * H, NOW - 2 * H, NOW - 1 * H,
                                        NOW - 30 * H]})
    decision = PhoneCapPolicy().decide(ctx(NOW, NY_PHONE, attempts=attempts))
    assert decision.verdict is Verdict.DEFER and decision.reason == reasons.PHONE_CAP
    assert decision.until_s == NOW + 1 * H
    # at that moment the cap allows one more (the attempt 30 h ago never counted)
    assert PhoneCapPolicy().decide(ctx(NOW + H, NY_PHONE, attempts=attempts)).allowed


def test_florida_caps_at_three_even_when_the_campaign_allows_more() -> None:
    settings = ComplianceSettings(phone_cap=10)
    attempts = FakeAttempts({MIAMI: [NOW - 3 * H, NOW - 2 * H, NOW - H],
                             NY_PHONE: [NOW - 3 * H, NOW - 2 * H, NOW - H]})
    florida = PhoneCapPolicy().decide(ctx(NOW, MIAMI, settings, attempts))
    assert florida.verdict is Verdict.DEFER and "state FL" in florida.detail
    assert florida.until_s == NOW + 21 * H
    assert PhoneCapPolicy().decide(ctx(NOW, NY_PHONE, settings, attempts)).allowed


def test_no_cap_configured_allows() -> None:
    settings = ComplianceSettings(phone_cap=None, state_rules=None)
    attempts = FakeAttempts({NY_PHONE: [NOW - i for i in range(1, 50)]})
    assert PhoneCapPolicy().decide(ctx(NOW, NY_PHONE, settings, attempts)).allowed


def test_campaign_cap() -> None:
    settings = ComplianceSettings(campaign="c1", campaign_cap=2)
    attempts = FakeAttempts(by_campaign={"c1": [NOW - 10 * H, NOW - 5 * H],
                                         "c2": [NOW - 1] * 9})
    decision = CampaignCapPolicy().decide(ctx(NOW, NY_PHONE, settings, attempts))
    assert decision.verdict is Verdict.DEFER and decision.reason == reasons.CAMPAIGN_CAP
    assert decision.until_s == NOW + 14 * H
    other = ComplianceSettings(campaign="c3", campaign_cap=2)
    assert CampaignCapPolicy().decide(ctx(NOW, NY_PHONE, other, attempts)).allowed
    assert CampaignCapPolicy().decide(ctx(NOW, NY_PHONE, attempts=attempts)).allowed
