"""The calling-hours policy: dial only inside the callee's local window.

Effective window = campaign window ∩ the window of every applicable US state rule ∩
the record's ``calling_hours`` field; it must be open in every zone the callee may
be in. Closed now → defer to the exact next opening; never opens → skip
``no_calling_window``; no zone → skip ``unknown_timezone`` (never a guess).
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from dispatch.compliance import reasons
from dispatch.compliance.context import DialContext, RecordFieldError
from dispatch.compliance.decision import Decision
from dispatch.compliance.opening import next_opening
from dispatch.compliance.window import CallingHours

__all__ = ["CallingHoursPolicy", "effective_hours"]


@functools.lru_cache(maxsize=4096)
def _narrow(base: CallingHours, extra: tuple[CallingHours, ...]) -> CallingHours:
    for hours in extra:
        base = base.narrowed(hours)
    return base


@functools.lru_cache(maxsize=4096)
def _next_opening(now_s: float, zones: tuple[ZoneInfo, ...], hours: CallingHours) -> float | None:
    # the same instant, zones and window give the same answer: a claim batch or a
    # preview decides many records at one ``now_s``, most of them in a few zones
    return next_opening(now_s, zones, hours)


def effective_hours(ctx: DialContext) -> CallingHours:
    """The window that applies to ``ctx`` (raises :class:`RecordFieldError`)."""
    extra = []
    if ctx.settings.state_rules is not None:
        extra = [rule.hours for rule in ctx.settings.state_rules.rules_for(ctx.states)
                 if rule.hours is not None]
    if ctx.record_hours is not None:
        extra.append(ctx.record_hours)
    return _narrow(ctx.settings.calling_hours, tuple(extra))


class CallingHoursPolicy:
    """Allow inside the effective window; defer to its next opening otherwise."""

    name = "calling_hours"
    _allow = Decision.allow(name)

    def decide(self, ctx: DialContext) -> Decision:
        try:
            choice = ctx.zones
            hours = effective_hours(ctx)
        except RecordFieldError as exc:
            return Decision.skip(self.name, reasons.INVALID_RECORD, str(exc))
        if not choice.zones:
            return Decision.skip(self.name, reasons.UNKNOWN_TIMEZONE,
                                 f"no time zone for {ctx.phone} (no 'timezone' field, none "
                                 "known for the number, no fallback_zone)")
        if not hours.ever_opens:
            return Decision.skip(self.name, reasons.NO_CALLING_WINDOW,
                                 f"{_why(ctx, hours)}: never open")
        opening = _next_opening(ctx.now_s, choice.zones, hours)
        if opening == ctx.now_s:
            return self._allow
        if opening is None:
            return Decision.skip(self.name, reasons.NO_CALLING_WINDOW,
                                 f"{_why(ctx, hours)}: never open in all zones at once")
        local = dt.datetime.fromtimestamp(opening, choice.zones[0])
        return Decision.defer(self.name, opening, reasons.OUTSIDE_CALLING_HOURS,
                              f"{_why(ctx, hours)}: opens {local:%a %Y-%m-%d %H:%M %Z} "
                              f"({choice.zones[0].key})")


def _why(ctx: DialContext, hours: CallingHours) -> str:
    """The detail's common part (built only for a deferral or a skip)."""
    why = f"window {_describe(hours)} in {ctx.zones.names} ({ctx.zones.source})"
    ruled = [] if ctx.settings.state_rules is None else [
        rule.state for rule in ctx.settings.state_rules.rules_for(ctx.states)]
    return f"{why}, state rules {'/'.join(ruled)}" if ruled else why


@functools.lru_cache(maxsize=1024)
def _describe(hours: CallingHours) -> str:
    return hours.describe()
