"""Reason strings the compliance policies give: the values of the matching
:class:`dispatch.reasons.Reason` members (one vocabulary; the hub stores them as is).
A *skip* reason is terminal for the record; a *defer* reason is not (the record stays
pending and is not charged an attempt).
"""

from __future__ import annotations

from typing import Final

from dispatch.reasons import Reason

__all__ = [
    "CAMPAIGN_CAP",
    "DEFER_REASONS",
    "DNC",
    "INVALID_RECORD",
    "NO_CALLING_WINDOW",
    "NO_CONSENT",
    "OUTSIDE_CALLING_HOURS",
    "PHONE_CAP",
    "PLATFORM_QUIET_HOURS",
    "PLATFORM_RATE_LIMITED",
    "PLATFORM_TOO_OFTEN",
    "QUOTA_EXHAUSTED",
    "SKIP_REASONS",
    "STRANGER",
    "UNKNOWN_TIMEZONE",
]

# -- skips (terminal) --------------------------------------------------------------
#: no IANA zone for the callee (none on the record, none from the number, no fallback)
UNKNOWN_TIMEZONE: Final = Reason.UNKNOWN_TIMEZONE.value
#: the number is on a suppression list (the decision's detail names the list)
DNC: Final = Reason.DNC.value
#: the effective window (campaign ∩ state ∩ record, in every zone) never opens
NO_CALLING_WINDOW: Final = Reason.NO_CALLING_WINDOW.value
#: the platform refused: a +1 number without recorded consent
NO_CONSENT: Final = Reason.NO_CONSENT.value
#: the platform refused: a number never in contact with the organisation
STRANGER: Final = Reason.STRANGER.value
#: a record field the policies read is malformed (``timezone``, ``state``,
#: ``calling_hours``): the domain's own reason
INVALID_RECORD: Final = Reason.INVALID_RECORD.value

# -- deferrals (not an attempt) ----------------------------------------------------
#: the callee's calling window is closed now; deferred to its next opening
OUTSIDE_CALLING_HOURS: Final = Reason.OUTSIDE_CALLING_HOURS.value
#: too many attempts to this phone in the rolling window
PHONE_CAP: Final = Reason.PHONE_CAP.value
#: too many attempts by this campaign in the rolling window
CAMPAIGN_CAP: Final = Reason.CAMPAIGN_CAP.value
#: the platform refused for its own quiet hours
PLATFORM_QUIET_HOURS: Final = Reason.PLATFORM_QUIET_HOURS.value
#: the platform refused: this number was called too often today
PLATFORM_TOO_OFTEN: Final = Reason.PLATFORM_TOO_OFTEN.value
#: the platform refused: over its per-minute or per-day dial guard
PLATFORM_RATE_LIMITED: Final = Reason.PLATFORM_RATE_LIMITED.value

# -- campaign level ----------------------------------------------------------------
#: the platform plan's quota is spent (concurrent calls, minutes): pause the campaign
QUOTA_EXHAUSTED: Final = Reason.QUOTA_EXHAUSTED.value

SKIP_REASONS: Final = frozenset(
    {UNKNOWN_TIMEZONE, DNC, NO_CALLING_WINDOW, NO_CONSENT, STRANGER, INVALID_RECORD}
)
DEFER_REASONS: Final = frozenset(
    {OUTSIDE_CALLING_HOURS, PHONE_CAP, CAMPAIGN_CAP, PLATFORM_QUIET_HOURS, PLATFORM_TOO_OFTEN,
     PLATFORM_RATE_LIMITED}
)
