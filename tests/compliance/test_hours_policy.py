"""CallingHoursPolicy on real numbers: zones from the number/record/fallback,
US state rules, record narrowing, bad fields."""

from __future__ import annotations

import pytest

from dispatch.compliance import (
    CallingHours,
    CallingHoursPolicy,
    ComplianceSettings,
    Verdict,
    WindowConfigError,
    reasons,
)
from tests.compliance.helpers import at, ctx, local

POLICY = CallingHoursPolicy()
MIAMI, MANHATTAN, DALLAS, BIRMINGHAM = "+13055550100", "+12125550100", "+12145550100", \
    "+12055550100"
UK_MOBILE, MADRID, ALASKA, UNKNOWN = "+447911123456", "+34912345678", "+19075550100", \
    "+19995550100"


@pytest.mark.parametrize(("phone", "now", "zone", "fields", "verdict", "until"), [
    # New York number at 20:59 and 21:00 local
    (MANHATTAN, "2026-06-01T20:59", "America/New_York", {}, Verdict.ALLOW, None),
    (MANHATTAN, "2026-06-01T21:00", "America/New_York", {}, Verdict.DEFER,
     "2026-06-02T08:00:00-04:00"),
    # Florida closes at 20:00 (state rule from the 305 area code)
    (MIAMI, "2026-06-01T20:00", "America/New_York", {}, Verdict.DEFER,
     "2026-06-02T08:00:00-04:00"),
    (MIAMI, "2026-06-01T19:59", "America/New_York", {}, Verdict.ALLOW, None),
    # a record in Florida with a Texas number: Florida's rule applies too
    (DALLAS, "2026-06-01T20:30", "America/Chicago", {"state": "Florida"}, Verdict.DEFER,
     "2026-06-02T08:00:00-05:00"),
    (DALLAS, "2026-06-01T20:30", "America/Chicago", {}, Verdict.ALLOW, None),
    # Alabama: no Sunday calls (2026-06-07 is a Sunday) -> Monday 08:00 Central
    (BIRMINGHAM, "2026-06-07T12:00", "America/Chicago", {}, Verdict.DEFER,
     "2026-06-08T08:00:00-05:00"),
    # Texas Sunday opens at 12:00
    (DALLAS, "2026-06-07T09:00", "America/Chicago", {}, Verdict.DEFER,
     "2026-06-07T12:00:00-05:00"),
    # a UK mobile (four zones, all on UK time) and a Madrid number
    (UK_MOBILE, "2026-06-01T07:59", "Europe/London", {}, Verdict.DEFER,
     "2026-06-01T08:00:00+01:00"),
    (MADRID, "2026-06-01T20:59", "Europe/Madrid", {}, Verdict.ALLOW, None),
    (MADRID, "2026-06-01T21:00", "Europe/Madrid", {}, Verdict.DEFER,
     "2026-06-02T08:00:00+02:00"),
    # Alaska: two zones (Anchorage, Adak one hour behind): opens at 08:00 Adak
    (ALASKA, "2026-06-01T08:30", "America/Anchorage", {}, Verdict.DEFER,
     "2026-06-01T09:00:00-08:00"),
    # the record's timezone wins over the number's
    (MANHATTAN, "2026-06-01T22:00", "America/New_York", {"timezone": "America/Los_Angeles"},
     Verdict.ALLOW, None),
    # the record narrows the window (never widens it)
    (MANHATTAN, "2026-06-01T17:30", "America/New_York", {"calling_hours": "09:00-17:00"},
     Verdict.DEFER, "2026-06-02T09:00:00-04:00"),
    (MANHATTAN, "2026-06-01T07:30", "America/New_York", {"calling_hours": "06:00-23:00"},
     Verdict.DEFER, "2026-06-01T08:00:00-04:00"),
])
def test_calling_hours_table(phone: str, now: str, zone: str, fields: dict[str, str],
                             verdict: Verdict, until: str | None) -> None:
    decision = POLICY.decide(ctx(at(now, zone), phone, **fields))
    assert decision.verdict is verdict, decision
    if until is not None:
        assert decision.reason == reasons.OUTSIDE_CALLING_HOURS
        assert local(decision.until_s, zone) == until


def test_unknown_zone_is_skipped_not_guessed() -> None:
    decision = POLICY.decide(ctx(at("2026-06-01T12:00", "UTC"), UNKNOWN))
    assert decision.verdict is Verdict.SKIP
    assert decision.reason == reasons.UNKNOWN_TIMEZONE


def test_unknown_zone_follows_the_campaign_fallback() -> None:
    settings = ComplianceSettings(fallback_zone="America/Denver")
    decision = POLICY.decide(ctx(at("2026-06-01T07:00", "America/Denver"), UNKNOWN, settings))
    assert decision.verdict is Verdict.DEFER
    assert local(decision.until_s, "America/Denver") == "2026-06-01T08:00:00-06:00"


@pytest.mark.parametrize(("fields", "field"), [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"state": "Atlantis"}, "state"),
    ({"calling_hours": "21:00-08:00"}, "calling_hours"),
])
def test_bad_record_fields_are_skipped_naming_the_field(fields: dict[str, str],
                                                        field: str) -> None:
    decision = POLICY.decide(ctx(at("2026-06-01T12:00", "UTC"), MANHATTAN, **fields))
    assert decision.verdict is Verdict.SKIP
    assert decision.reason == reasons.INVALID_RECORD
    assert f"field {field!r}" in decision.detail


def test_record_window_disjoint_from_campaign_never_opens() -> None:
    decision = POLICY.decide(ctx(at("2026-06-01T12:00", "UTC"), MANHATTAN,
                                 calling_hours="22:00-23:00"))
    assert decision.verdict is Verdict.SKIP
    assert decision.reason == reasons.NO_CALLING_WINDOW


def test_campaign_weekday_config_and_state_rules_off() -> None:
    weekdays = CallingHours.from_mapping({"default": "10:00-12:00, 14:00-16:00"})
    settings = ComplianceSettings(calling_hours=weekdays, state_rules=None)
    decision = POLICY.decide(ctx(at("2026-06-01T12:30", "America/New_York"), MIAMI, settings))
    assert local(decision.until_s, "America/New_York") == "2026-06-01T14:00:00-04:00"


@pytest.mark.parametrize(("config", "match"), [
    ({"default": "08:00-21:00", "sunday": []}, "unknown key"),
    ({"default": "25:00-26:00"}, "not a time of day"),
    ({"default": "8am-9pm"}, "not a time"),
    ({"default": "21:00-08:00"}, "cannot cross midnight"),
    ({"holidays": {"25/12/2026": []}}, "not a date"),
])
def test_bad_window_config_is_one_line_naming_the_setting(config: dict[str, object],
                                                          match: str) -> None:
    with pytest.raises(WindowConfigError, match=match) as info:
        CallingHours.from_mapping(config)
    assert "\n" not in str(info.value) and str(info.value).startswith("calling_hours")


def test_settings_fail_closed_early() -> None:
    with pytest.raises(WindowConfigError, match="closed on every weekday"):
        ComplianceSettings(calling_hours=CallingHours(weekly=((),) * 7))
    with pytest.raises(WindowConfigError, match="fallback_zone"):
        ComplianceSettings(fallback_zone="Nowhere/Special")
    with pytest.raises(WindowConfigError, match="phone_cap"):
        ComplianceSettings(phone_cap=0)


def test_state_rule_named_in_the_detail() -> None:
    decision = POLICY.decide(ctx(at("2026-06-01T20:30", "America/New_York"), MIAMI))
    assert "state rules FL" in decision.detail and "08:00-20:00" in decision.detail
