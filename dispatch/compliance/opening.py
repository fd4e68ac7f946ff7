"""When is a callee's window open, and when does it next open, in real (UTC) time.

An instant is *open* in a zone when its local wall-clock time falls in that local
date's ranges (:meth:`CallingHours.ranges_on`). A number that may be in several
zones is open only when it is open in **all** of them.

:func:`next_opening` is exact across DST changes. Openness only changes at a range
boundary on the wall clock or at an offset transition, so the candidates are: every
range start on every local date (mapped to UTC with both folds, so an ambiguous
fall-back time counts at its first occurrence, and its second when the clock came
back before it) and every offset transition (a start inside a skipped spring-forward
hour opens at the transition, when the wall clock jumps past it). The first
candidate that is open in every zone is the answer. Pure, no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from zoneinfo import ZoneInfo

from dispatch.compliance.window import CallingHours

__all__ = ["is_open", "next_opening"]

_UTC = dt.UTC
_MARGIN = dt.timedelta(hours=3)


def _open_in(t: dt.datetime, zone: ZoneInfo, hours: CallingHours) -> bool:
    local = t.astimezone(zone)
    second = local.hour * 3600 + local.minute * 60 + local.second
    return any(start * 60 <= second < end * 60 for start, end in hours.ranges_on(local.date()))


def is_open(now_s: float, zones: Sequence[ZoneInfo], hours: CallingHours) -> bool:
    """True when ``now_s`` (epoch seconds) is inside the window in every zone.

    Raises :class:`ValueError` for an empty ``zones`` (an unknown zone must be
    decided by the caller, never assumed open)."""
    if not zones:
        raise ValueError("is_open needs at least one zone")
    t = dt.datetime.fromtimestamp(now_s, _UTC)
    return all(_open_in(t, zone, hours) for zone in zones)


def next_opening(now_s: float, zones: Sequence[ZoneInfo], hours: CallingHours) -> float | None:
    """The first instant ``>= now_s`` open in every zone, in epoch seconds.

    Returns ``now_s`` itself when the window is open now, and ``None`` when it
    never opens within a year and the holidays (a multi-zone number whose local
    windows never overlap). Raises :class:`~dispatch.compliance.window.WindowConfigError`
    when ``hours`` is closed on every weekday (a configuration error, raised early)
    and :class:`ValueError` for an empty ``zones``.
    """
    hours.require_opens()
    if is_open(now_s, zones, hours):
        return now_s
    t = dt.datetime.fromtimestamp(now_s, _UTC)
    for span_days in (2, 9, 372 + len(hours.holidays)):
        found, complete = _first_open_candidate(t, zones, hours, span_days)
        if found is not None or complete:
            return None if found is None else found.timestamp()
    return None


def _first_open_candidate(
    t: dt.datetime, zones: Sequence[ZoneInfo], hours: CallingHours, span_days: int
) -> tuple[dt.datetime | None, bool]:
    """Search the candidates of ``span_days`` local days. Returns the opening found
    (or None) and whether the search was conclusive (an opening is only trusted when
    no candidate of a later, unsearched day could come before it)."""
    candidates: set[dt.datetime] = set()
    bound = dt.datetime.max.replace(tzinfo=_UTC)
    for zone in zones:
        first_day = t.astimezone(zone).date() - dt.timedelta(days=1)
        for offset in range(span_days + 1):
            candidates.update(_candidates_on(first_day + dt.timedelta(days=offset), zone, hours))
        after = dt.datetime.combine(first_day + dt.timedelta(days=span_days + 1), dt.time(),
                                    zone)
        bound = min(bound, after.astimezone(_UTC) - _MARGIN)
    for candidate in sorted(c for c in candidates if c > t):
        if candidate >= bound:
            return None, span_days > 365
        if all(_open_in(candidate, zone, hours) for zone in zones):
            return candidate, True
    return None, span_days > 365


def _candidates_on(day: dt.date, zone: ZoneInfo, hours: CallingHours) -> Iterator[dt.datetime]:
    for start, _end in hours.ranges_on(day):
        wall = dt.datetime.combine(day, dt.time(start // 60, start % 60))  # start < 24:00
        for fold in (0, 1):
            yield wall.replace(tzinfo=zone, fold=fold).astimezone(_UTC)
    transition = _transition_on(day, zone)
    if transition is not None:
        yield transition


def _transition_on(day: dt.date, zone: ZoneInfo) -> dt.datetime | None:
    """The UTC instant (to the minute) at which ``zone``'s offset changes during
    local date ``day``, or None (at most one transition a day is assumed)."""
    low = dt.datetime.combine(day, dt.time(), zone).astimezone(_UTC)
    high = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).astimezone(_UTC)
    if low.astimezone(zone).utcoffset() == high.astimezone(zone).utcoffset():
        return None
    before = low.astimezone(zone).utcoffset()
    while high - low > dt.timedelta(minutes=1):
        middle = low + (high - low) / 2
        middle = middle.replace(second=0, microsecond=0)
        if middle <= low:
            middle = low + dt.timedelta(minutes=1)
        if middle.astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return high
