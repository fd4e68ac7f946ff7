"""The shipped state and area-code tables load, and say what compliance.md says."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.compliance import WindowConfigError, load_state_rules
from dispatch.compliance.window import format_ranges

RULES = load_state_rules()


def test_florida_rule() -> None:
    florida = RULES.rules["FL"]
    assert florida.max_calls_per_24h == 3
    assert florida.hours is not None
    assert {format_ranges(r) for r in florida.hours.weekly} == {"08:00-20:00"}


@pytest.mark.parametrize(("state", "weekly"), [
    ("AL", ["08:00-20:00"] * 6 + ["closed"]),
    ("IN", ["09:00-20:00"] * 7),
    ("KY", ["10:00-21:00"] * 7),
    ("RI", ["09:00-18:00"] * 7),
    ("TX", ["08:00-21:00"] * 6 + ["12:00-21:00"]),
])
def test_sample_state_rules(state: str, weekly: list[str]) -> None:
    hours = RULES.rules[state].hours
    assert hours is not None and [format_ranges(r) for r in hours.weekly] == weekly


@pytest.mark.parametrize(("phone", "record_state", "states"), [
    ("+13055550100", None, ("FL",)),
    ("+12125550100", None, ("NY",)),
    ("+14155550100", None, ("CA",)),
    ("+12025550100", None, ("DC",)),
    ("+18005550100", None, ()),  # toll-free: no state
    ("+16475550100", None, ()),  # Toronto: not US
    ("+12125550100", "FL", ("FL", "NY")),
])
def test_states_for(phone: str, record_state: str | None, states: tuple[str, ...]) -> None:
    assert RULES.states_for(phone, record_state) == states


def test_area_code_table_covers_the_states() -> None:
    assert len(RULES.area_codes) > 300
    assert len(set(RULES.area_codes.values())) == 51


def test_an_edited_table_with_a_typo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "states.toml"
    path.write_text('[FL]\nhours = "08:00-20:00"\nmax_calls_per_day = 3\n', "utf-8")
    with pytest.raises(WindowConfigError, match=r"\[FL\] unknown key"):
        load_state_rules(path)
    path.write_text('[XX]\nhours = "08:00-20:00"\n', "utf-8")
    with pytest.raises(WindowConfigError, match="not a US state"):
        load_state_rules(path)
