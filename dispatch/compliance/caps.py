"""Frequency caps: per phone (default 3 attempts in any rolling 24 h, across every
campaign in the database; a state rule such as Florida's may lower it) and an
optional per-campaign cap. Over a cap the record is deferred to the moment the
oldest counted attempt leaves the window. Pure: the attempt times come from
``ctx.attempts`` (:class:`~dispatch.compliance.context.AttemptLog`).
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.compliance import reasons
from dispatch.compliance.context import DAY_S, DialContext, RecordFieldError
from dispatch.compliance.decision import Decision

__all__ = ["CampaignCapPolicy", "PhoneCapPolicy", "cap_release_s"]


def cap_release_s(attempts_s: Sequence[float], cap: int, window_s: float) -> float | None:
    """When one more attempt becomes allowed: None if it is allowed now, else the
    instant the window holds ``cap - 1`` of these (ascending, in-window) attempts."""
    if len(attempts_s) < cap:
        return None
    return attempts_s[len(attempts_s) - cap] + window_s


_PHONE_ALLOW = Decision.allow("phone_cap")
_CAMPAIGN_ALLOW = Decision.allow("campaign_cap")


class PhoneCapPolicy:
    """At most N attempts per phone in any rolling window: the campaign's
    ``phone_cap`` per ``phone_cap_window_s`` and every applicable state rule's cap
    per 24 h. Over any of them → defer until all of them allow one more."""

    name = "phone_cap"

    def decide(self, ctx: DialContext) -> Decision:
        try:
            caps = self._caps(ctx)
        except RecordFieldError as exc:
            return Decision.skip(self.name, reasons.INVALID_RECORD, str(exc))
        if not caps:
            return _PHONE_ALLOW
        longest_s = max(window_s for _cap, window_s, _source in caps)
        attempts = ctx.attempts.phone_attempts_since(ctx.phone, ctx.now_s - longest_s)
        worst: tuple[float, str] | None = None
        for cap, window_s, source in caps:
            counted = [t for t in attempts if t > ctx.now_s - window_s]
            release = cap_release_s(counted, cap, window_s)
            if release is not None and (worst is None or release > worst[0]):
                worst = (release, f"{len(counted)} attempts to {ctx.phone} in the last "
                                  f"{window_s / 3600:g} h (cap {cap}, {source})")
        if worst is None:
            return _PHONE_ALLOW
        return Decision.defer(self.name, max(worst[0], ctx.now_s), reasons.PHONE_CAP, worst[1])

    @staticmethod
    def _caps(ctx: DialContext) -> list[tuple[int, float, str]]:
        settings = ctx.settings
        caps = [] if settings.phone_cap is None else [
            (settings.phone_cap, settings.phone_cap_window_s, "campaign phone_cap")]
        if settings.state_rules is not None:
            caps += [(rule.max_calls_per_24h, DAY_S, f"state {rule.state} rule")
                     for rule in settings.state_rules.rules_for(ctx.states)
                     if rule.max_calls_per_24h is not None]
        return caps


class CampaignCapPolicy:
    """At most ``campaign_cap`` attempts by this campaign in any rolling window."""

    name = "campaign_cap"

    def decide(self, ctx: DialContext) -> Decision:
        settings = ctx.settings
        if settings.campaign_cap is None:
            return _CAMPAIGN_ALLOW
        window_s = settings.campaign_cap_window_s
        attempts = ctx.attempts.campaign_attempts_since(settings.campaign, ctx.now_s - window_s)
        release = cap_release_s(attempts, settings.campaign_cap, window_s)
        if release is None:
            return _CAMPAIGN_ALLOW
        return Decision.defer(self.name, max(release, ctx.now_s), reasons.CAMPAIGN_CAP,
                              f"campaign {settings.campaign!r}: {len(attempts)} attempts in the "
                              f"last {window_s / 3600:g} h (cap {settings.campaign_cap})")
