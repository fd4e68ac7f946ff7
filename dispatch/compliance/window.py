"""Calling windows: which local wall-clock minutes are open, by weekday and date.

A window is a set of half-open ranges ``[start, end)`` in minutes since local
midnight (``"08:00-21:00"`` is ``(480, 1260)``; ``24:00`` may end a range; a range
never crosses midnight: write two ranges on two days). :class:`CallingHours` holds
one list of ranges per weekday and per holiday date (an empty list: no calls).
:meth:`CallingHours.narrowed` intersects two windows: a record or a state can only
take minutes away, never add any.

Configuration mistakes raise :class:`WindowConfigError` (a :class:`PreflightError`)
with a one-line message naming the setting.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dispatch.errors import PreflightError

__all__ = ["DEFAULT_RANGES", "WEEKDAYS", "CallingHours", "Ranges", "WindowConfigError",
           "format_ranges", "intersect_ranges", "parse_ranges"]

#: sorted, disjoint, non-empty ``(start_min, end_min)`` pairs
Ranges = tuple[tuple[int, int], ...]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: the US federal window (47 CFR 64.1200(c)(1)), used by default everywhere
DEFAULT_RANGES: Ranges = ((8 * 60, 21 * 60),)
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_DAY_MIN = 24 * 60


class WindowConfigError(PreflightError):
    """A calling-hours setting is malformed or never opens."""


def _minute(text: str, where: str) -> int:
    match = _CLOCK.match(text)
    if match is None:
        raise WindowConfigError(f"{where}: {text.strip()!r} is not a time HH:MM")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise WindowConfigError(f"{where}: {text.strip()!r} is not a time of day")
    return hours * 60 + minutes


def _merge(pairs: Iterable[tuple[int, int]]) -> Ranges:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(pairs):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def parse_ranges(spec: object, where: str) -> Ranges:
    """``"08:00-12:00, 14:00-20:00"`` or a list of ``"HH:MM-HH:MM"`` to :data:`Ranges`.

    An empty string or list means closed. Overlapping ranges are merged. Raises
    :class:`WindowConfigError` naming ``where`` for anything else (a reversed or
    empty range, a range crossing midnight, a bad time).
    """
    if isinstance(spec, str):
        items = [part for part in spec.split(",") if part.strip()]
    elif isinstance(spec, list | tuple):
        items = list(spec)
    else:
        raise WindowConfigError(f"{where}: expected 'HH:MM-HH:MM' or a list, got {spec!r}")
    pairs = []
    for item in items:
        if not isinstance(item, str) or item.count("-") != 1:
            raise WindowConfigError(f"{where}: {item!r} is not a range HH:MM-HH:MM")
        start_text, end_text = item.split("-")
        start, end = _minute(start_text, where), _minute(end_text, where)
        if start >= end:
            raise WindowConfigError(f"{where}: {item.strip()!r} ends before it starts (a range "
                                    "cannot cross midnight: use two ranges on two days)")
        pairs.append((start, end))
    return _merge(pairs)


def intersect_ranges(a: Ranges, b: Ranges) -> Ranges:
    """The minutes open in both ``a`` and ``b``."""
    out = []
    for a_start, a_end in a:
        for b_start, b_end in b:
            start, end = max(a_start, b_start), min(a_end, b_end)
            if start < end:
                out.append((start, end))
    return _merge(out)


def format_ranges(ranges: Ranges) -> str:
    """``((480, 1260),)`` → ``"08:00-21:00"`` (``"closed"`` when empty)."""
    def clock(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"
    return ", ".join(f"{clock(s)}-{clock(e)}" for s, e in ranges) or "closed"


@dataclass(frozen=True)
class CallingHours:
    """Open local minutes per weekday (Monday first) and per holiday date.

    Hashable (policies cache on it). Build with :meth:`every_day` or
    :meth:`from_mapping`; combine with :meth:`narrowed`.
    """

    weekly: tuple[Ranges, ...] = (DEFAULT_RANGES,) * 7
    holidays: tuple[tuple[dt.date, Ranges], ...] = ()
    _by_date: dict[dt.date, Ranges] = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise WindowConfigError("calling hours: need exactly 7 weekdays")
        object.__setattr__(self, "_by_date", dict(self.holidays))

    @classmethod
    def every_day(cls, ranges: Ranges) -> CallingHours:
        return cls(weekly=(ranges,) * 7)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any], where: str = "calling_hours") -> CallingHours:
        """From ``{"default": "08:00-21:00", "sun": [], "sat": "10:00-14:00",
        "holidays": {"2026-12-25": [], "2026-12-24": "09:00-13:00"}}``.

        Weekdays not named take ``default`` (itself 08:00-21:00 when absent). Unknown
        keys are an error (a typo must not silently widen or close a window).
        """
        unknown = set(config) - {"default", "holidays", *WEEKDAYS}
        if unknown:
            raise WindowConfigError(f"{where}: unknown key(s) {sorted(unknown)} (expected "
                                    f"default, holidays, {', '.join(WEEKDAYS)})")
        default = parse_ranges(config.get("default", list(_texts(DEFAULT_RANGES))),
                               f"{where}.default")
        weekly = tuple(parse_ranges(config[day], f"{where}.{day}") if day in config else default
                       for day in WEEKDAYS)
        holidays = []
        for key, spec in dict(config.get("holidays", {})).items():
            try:
                day = key if isinstance(key, dt.date) else dt.date.fromisoformat(str(key))
            except ValueError:
                raise WindowConfigError(f"{where}.holidays: {key!r} is not a date "
                                        "YYYY-MM-DD") from None
            holidays.append((day, parse_ranges(spec, f"{where}.holidays.{key}")))
        return cls(weekly=weekly, holidays=tuple(sorted(holidays)))

    def ranges_on(self, day: dt.date) -> Ranges:
        """The open ranges on local date ``day`` (a holiday's own, else its weekday's)."""
        found = self._by_date.get(day)
        return self.weekly[day.weekday()] if found is None else found

    def narrowed(self, other: CallingHours) -> CallingHours:
        """The intersection: open only when both are open (never wider than either)."""
        weekly = tuple(intersect_ranges(a, b) for a, b in zip(self.weekly, other.weekly,
                                                               strict=True))
        dates = sorted(set(self._by_date) | set(other._by_date))
        holidays = tuple((d, intersect_ranges(self.ranges_on(d), other.ranges_on(d)))
                         for d in dates)
        return CallingHours(weekly=weekly, holidays=holidays)

    @property
    def ever_opens(self) -> bool:
        """False when no weekday has a range (holidays are finite, so they cannot
        keep a window open forever)."""
        return any(self.weekly)

    def require_opens(self, where: str = "calling_hours") -> CallingHours:
        """Return ``self``; raise :class:`WindowConfigError` when it never opens
        (fail closed, and early: at campaign start, not at 03:00)."""
        if not self.ever_opens:
            raise WindowConfigError(f"{where}: the window is closed on every weekday, so no "
                                    "record would ever be dialled")
        return self

    def describe(self) -> str:
        """One line, e.g. ``"mon-sat 08:00-21:00; sun closed; 2 holiday dates"``."""
        parts = [f"{day} {format_ranges(r)}" for day, r in zip(WEEKDAYS, self.weekly,
                                                               strict=True)]
        if len(set(self.weekly)) == 1:
            parts = [f"every day {format_ranges(self.weekly[0])}"]
        if self.holidays:
            parts.append(f"{len(self.holidays)} holiday date(s)")
        return "; ".join(parts)


def _texts(ranges: Ranges) -> Iterable[str]:
    return (format_ranges((pair,)) for pair in ranges)
