"""What a platform refusal means for the refused record, as a :class:`Decision`.

:func:`refusal_decision` turns a :class:`RefusalKind` into the record's next step;
the campaign-level effects stay with the hub (lower the pace on ``SLOW_DOWN``;
pause on ``PAUSE_DAY``; pause the campaign with reason ``quota_exhausted`` on
``QUOTA``; add the number to the internal list on ``DNC``). No refusal is an
attempt except ``OTHER``, which is an ordinary dial failure (``None`` here: the
retry policy decides as today).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from dispatch.compliance.context import DAY_S, DialContext, RecordFieldError
from dispatch.compliance.decision import Decision
from dispatch.compliance.hours import effective_hours
from dispatch.compliance.opening import next_opening
from dispatch.compliance.refusals import REFUSAL_REASONS, RefusalKind
from dispatch.compliance.window import CallingHours
from dispatch.compliance.zones import resolve_zones

__all__ = ["refusal_decision"]

POLICY = "platform"
#: the platform's own window for +1 numbers, in every zone the number could be in
_PLATFORM_HOURS = CallingHours()


def refusal_decision(kind: RefusalKind, ctx: DialContext, *, retry_after_s: float = 60.0,
                     day_pause_s: float = 3600.0, quiet_retry_s: float = 900.0
                     ) -> Decision | None:
    """The refused record's decision at ``ctx.now_s``, or None (not for the record:
    ``QUOTA`` pauses the campaign, ``OTHER`` is an ordinary failure).

    ``QUIET_HOURS`` defers to the next instant open both in our window and in the
    platform's (08:00-21:00 in every zone of the number *and* of the record); if
    that is now (the two disagree), it re-checks after ``quiet_retry_s``."""
    reason = REFUSAL_REASONS[kind]
    detail = f"the voice server refused the dial ({kind})"
    now_s = ctx.now_s
    if kind is RefusalKind.SLOW_DOWN:
        return Decision.defer(POLICY, now_s + retry_after_s, str(reason), detail)
    if kind is RefusalKind.PAUSE_DAY:
        return Decision.defer(POLICY, now_s + day_pause_s, str(reason), detail)
    if kind is RefusalKind.DEFER_DAY:
        return Decision.defer(POLICY, now_s + DAY_S, str(reason), detail)
    if kind is RefusalKind.QUIET_HOURS:
        return Decision.defer(POLICY, _after_quiet_hours(ctx, quiet_retry_s), str(reason),
                              detail)
    if kind in (RefusalKind.DNC, RefusalKind.NO_CONSENT, RefusalKind.STRANGER):
        return Decision.skip(POLICY, str(reason), detail)
    return None


def _after_quiet_hours(ctx: DialContext, quiet_retry_s: float) -> float:
    zones: set[ZoneInfo] = set(resolve_zones(ctx.phone, None, None).zones)
    hours = _PLATFORM_HOURS
    try:
        zones.update(ctx.zones.zones)
        hours = hours.narrowed(effective_hours(ctx))
    except RecordFieldError:
        pass  # the calling-hours policy skips such a record before it is dialled
    if not zones or not hours.ever_opens:
        return ctx.now_s + quiet_retry_s
    opening = next_opening(ctx.now_s, sorted(zones, key=lambda z: z.key), hours)
    if opening is None or opening <= ctx.now_s:
        return ctx.now_s + quiet_retry_s
    return opening
