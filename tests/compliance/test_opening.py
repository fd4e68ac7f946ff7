"""next_opening / is_open: exact openings across DST, multi-zone intersection."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.compliance import CallingHours, WindowConfigError, is_open, next_opening
from dispatch.compliance.window import parse_ranges
from tests.compliance.helpers import at, local

NY, MAD, LON, LA = "America/New_York", "Europe/Madrid", "Europe/London", "America/Los_Angeles"
DEFAULT = CallingHours()


def hours(spec: str) -> CallingHours:
    return CallingHours.every_day(parse_ranges(spec, "test"))


@pytest.mark.parametrize(("now", "zone", "spec", "expected"), [
    # open now: returns now itself
    ("2026-06-01T12:00", NY, "08:00-21:00", "2026-06-01T12:00:00-04:00"),
    # 20:59:59 is inside, 21:00 is not (half-open)
    ("2026-06-01T21:00", NY, "08:00-21:00", "2026-06-02T08:00:00-04:00"),
    ("2026-06-01T03:00", NY, "08:00-21:00", "2026-06-01T08:00:00-04:00"),
    # spring forward NY (2026-03-08 02:00 EST -> 03:00 EDT): 08:00 EDT is 12:00Z
    ("2026-03-07T22:00", NY, "08:00-21:00", "2026-03-08T08:00:00-04:00"),
    # fall back NY (2026-11-01 02:00 EDT -> 01:00 EST): 08:00 EST is 13:00Z
    ("2026-10-31T22:00", NY, "08:00-21:00", "2026-11-01T08:00:00-05:00"),
    # Madrid spring forward (2026-03-29 02:00 CET -> 03:00 CEST) and fall back (10-25)
    ("2026-03-28T23:00", MAD, "08:00-21:00", "2026-03-29T08:00:00+02:00"),
    ("2026-10-24T23:00", MAD, "08:00-21:00", "2026-10-25T08:00:00+01:00"),
    # a window starting inside the skipped hour opens when the clock jumps past it
    ("2026-03-08T00:00", NY, "02:30-05:00", "2026-03-08T03:00:00-04:00"),
    ("2026-03-29T00:30", MAD, "02:15-04:00", "2026-03-29T03:00:00+02:00"),
    # a start in the repeated fall-back hour opens at its first occurrence
    ("2026-11-01T00:10", NY, "01:30-05:00", "2026-11-01T01:30:00-04:00"),
    # ... and an end in the repeated hour: closed at the first 01:30, open again at
    # the second 01:00 (the wall clock is in range again), until the second 01:30
    ("2026-11-01T01:40", NY, "00:00-01:30", "2026-11-01T01:00:00-05:00"),
])
def test_next_opening_table(now: str, zone: str, spec: str, expected: str) -> None:
    assert local(next_opening(at(now, zone), [ZoneInfo(zone)], hours(spec)), zone) == expected


def test_spring_forward_day_window_is_an_hour_shorter_in_utc() -> None:
    ny = [ZoneInfo(NY)]
    assert is_open(at("2026-03-08T08:00", NY), ny, DEFAULT)
    assert not is_open(at("2026-03-08T07:59", NY), ny, DEFAULT)
    assert not is_open(at("2026-03-08T21:00", NY), ny, DEFAULT)


def test_multi_zone_needs_every_zone_open() -> None:
    zones = [ZoneInfo(NY), ZoneInfo(LA)]
    # 08:00 in New York is 05:00 in Los Angeles: closed until 08:00 LA
    got = next_opening(at("2026-06-01T08:00", NY), zones, DEFAULT)
    assert local(got, LA) == "2026-06-01T08:00:00-07:00"
    # 21:00 NY closes it although LA is still open
    assert not is_open(at("2026-06-01T21:00", NY), zones, DEFAULT)


def test_multi_zone_across_dst_boundary() -> None:
    # On 2026-03-08 New York springs forward, Madrid does not until 03-29: the common
    # window of NY 08-21 and Madrid 08-21 is NY 08:00-16:00 (EDT, Madrid 13:00-21:00
    # CET) that day, while the day before it was NY 08:00-15:00 (EST).
    zones = [ZoneInfo(NY), ZoneInfo(MAD)]
    assert local(next_opening(at("2026-03-07T15:00", NY), zones, DEFAULT), NY) == \
        "2026-03-08T08:00:00-04:00"
    assert is_open(at("2026-03-08T15:30", NY), zones, DEFAULT)
    assert not is_open(at("2026-03-07T15:30", NY), zones, DEFAULT)
    assert not is_open(at("2026-03-08T16:00", NY), zones, DEFAULT)


def test_zones_that_never_overlap_give_none() -> None:
    zones = [ZoneInfo("Pacific/Auckland"), ZoneInfo(LON)]
    assert next_opening(at("2026-06-01T12:00", LON), zones, hours("09:00-11:00")) is None


def test_window_closed_every_day_is_a_config_error() -> None:
    closed = CallingHours(weekly=((),) * 7)
    with pytest.raises(WindowConfigError, match="closed on every weekday"):
        next_opening(0.0, [ZoneInfo(NY)], closed)


def test_holidays_and_weekdays() -> None:
    config = CallingHours.from_mapping({
        "sun": [], "sat": "10:00-14:00",
        "holidays": {"2026-12-25": [], "2026-12-24": "09:00-12:00"}})
    ny = [ZoneInfo(NY)]
    # Thursday 24 Dec 2026 at 13:00: the holiday window closed at 12:00, Christmas is
    # closed, Saturday 26 opens at 10:00
    assert local(next_opening(at("2026-12-24T13:00", NY), ny, config), NY) == \
        "2026-12-26T10:00:00-05:00"
    # Saturday 14:00 -> Sunday closed -> Monday 08:00
    assert local(next_opening(at("2026-12-26T14:00", NY), ny, config), NY) == \
        "2026-12-28T08:00:00-05:00"


ZONES = st.sampled_from([NY, MAD, LON, LA, "Australia/Lord_Howe", "Asia/Kolkata"])
SPECS = st.sampled_from(["08:00-21:00", "02:30-05:00", "00:00-01:30", "01:00-02:00, 20:00-24:00",
                         "09:00-10:00"])
NOW = st.integers(min_value=int(at("2026-01-01T00:00", "UTC")),
                  max_value=int(at("2027-12-31T00:00", "UTC")))


@settings(max_examples=150, deadline=None)
@given(now=NOW, zone_names=st.lists(ZONES, min_size=1, max_size=2, unique=True), spec=SPECS)
def test_opening_properties(now: int, zone_names: list[str], spec: str) -> None:
    zones = [ZoneInfo(z) for z in zone_names]
    window = hours(spec)
    got = next_opening(float(now), zones, window)
    if got is None:
        return
    assert got >= now
    assert is_open(got, zones, window)
    assert next_opening(got, zones, window) == got
    # nothing open before it: check every minute boundary between now and got (and
    # one second before got: the opening is not an instant late)
    assert not is_open(got - 1, zones, window) or got == now
    minute = (now // 60 + 1) * 60
    while minute < got and minute < now + 3 * 86_400:
        assert not is_open(minute, zones, window), dt.datetime.fromtimestamp(minute, dt.UTC)
        minute += 60


RANGE = st.tuples(st.integers(0, 1439), st.integers(1, 600)).map(
    lambda p: f"{p[0] // 60:02d}:{p[0] % 60:02d}-"
              f"{min(1440, p[0] + p[1]) // 60:02d}:{min(1440, p[0] + p[1]) % 60:02d}")


@settings(max_examples=100, deadline=None)
@given(a=st.lists(RANGE, min_size=1, max_size=3), b=st.lists(RANGE, min_size=1, max_size=3),
       minute=st.integers(0, 7 * 1440 - 1))
def test_narrowing_never_widens(a: list[str], b: list[str], minute: int) -> None:
    wide, narrow = hours(", ".join(a)), hours(", ".join(b))
    both = wide.narrowed(narrow)
    day = dt.date(2026, 6, 1) + dt.timedelta(days=minute // 1440)
    m = minute % 1440

    def inside(window: CallingHours) -> bool:
        return any(s <= m < e for s, e in window.ranges_on(day))

    assert inside(both) == (inside(wide) and inside(narrow))
