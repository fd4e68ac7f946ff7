"""The platform's dial refusals, mapped once to what the hub should do.

The Pinecall gateway documents these (``/work/shared/design/compliance.md``); on the
``/client`` socket they arrive as ``call.error`` / ``error`` frames with a ``code``
and/or a text, so :func:`classify_refusal` reads both::

    429 too_fast                     SLOW_DOWN       lower the pace; retry, no attempt spent
    429 too_many                     PAUSE_DAY       pause until the day window frees
    429 too_often                    DEFER_DAY       defer this record 24 h
    403 quiet_hours                  QUIET_HOURS     defer to the next opening
    403 do_not_call                  DNC             skip dnc; add to the internal list
    403 no_consent                   NO_CONSENT      skip no_consent
    403 stranger                     STRANGER        skip stranger
    429 concurrent_calls / minutes   QUOTA           pause the campaign (run exits non-zero)

Also mapped: ``RATE_LIMITED`` (the platform's generic 429, and a bare 429) →
``SLOW_DOWN``; ``INSUFFICIENT_CREDITS`` (402) → ``QUOTA``. Anything else is
``OTHER``: an ordinary dial failure, handled as today (retry policy, attempt spent).
"""

from __future__ import annotations

import enum
import re

from dispatch.compliance import reasons

__all__ = ["REFUSAL_REASONS", "RefusalKind", "classify_refusal"]


class RefusalKind(enum.StrEnum):
    """What a refusal means for the record and the campaign."""

    SLOW_DOWN = "slow_down"
    PAUSE_DAY = "pause_day"
    DEFER_DAY = "defer_day"
    QUIET_HOURS = "quiet_hours"
    DNC = "dnc"
    NO_CONSENT = "no_consent"
    STRANGER = "stranger"
    QUOTA = "quota"
    OTHER = "other"

    @property
    def spends_attempt(self) -> bool:
        """Only an ordinary failure counts against the record's retries."""
        return self is RefusalKind.OTHER


#: the reason stored with the record (or the campaign, for QUOTA); None for OTHER
REFUSAL_REASONS: dict[RefusalKind, str | None] = {
    RefusalKind.SLOW_DOWN: reasons.PLATFORM_RATE_LIMITED,
    RefusalKind.PAUSE_DAY: reasons.PLATFORM_RATE_LIMITED,
    RefusalKind.DEFER_DAY: reasons.PLATFORM_TOO_OFTEN,
    RefusalKind.QUIET_HOURS: reasons.PLATFORM_QUIET_HOURS,
    RefusalKind.DNC: reasons.DNC,
    RefusalKind.NO_CONSENT: reasons.NO_CONSENT,
    RefusalKind.STRANGER: reasons.STRANGER,
    RefusalKind.QUOTA: reasons.QUOTA_EXHAUSTED,
    RefusalKind.OTHER: None,
}

_CODES: dict[str, RefusalKind] = {
    "too_fast": RefusalKind.SLOW_DOWN,
    "rate_limited": RefusalKind.SLOW_DOWN,
    "too_many": RefusalKind.PAUSE_DAY,
    "too_often": RefusalKind.DEFER_DAY,
    "quiet_hours": RefusalKind.QUIET_HOURS,
    "do_not_call": RefusalKind.DNC,
    "dnc": RefusalKind.DNC,
    "no_consent": RefusalKind.NO_CONSENT,
    "stranger": RefusalKind.STRANGER,
    "concurrent_calls": RefusalKind.QUOTA,
    "minutes": RefusalKind.QUOTA,
    "quota": RefusalKind.QUOTA,
    "insufficient_credits": RefusalKind.QUOTA,
}
_WORDS = re.compile(r"[^a-z0-9]+")


def _normalise(text: str) -> str:
    return "_" + _WORDS.sub("_", text.lower()).strip("_") + "_"


def _match(text: str) -> RefusalKind | None:
    # the HTTP reason phrase of any 429 is not the `too_many` (per-day) code
    padded = _normalise(text).replace("_too_many_requests_", "_")
    if padded.strip("_") in _CODES:
        return _CODES[padded.strip("_")]
    # a code inside a text ("429 too_fast: slow down", "Quiet hours in effect")
    for code, kind in _CODES.items():
        if code != "minutes" and f"_{code}_" in padded:
            return kind
    return None


def classify_refusal(code: str | int | None, message: str | None = None) -> RefusalKind:
    """Map a ``call.error`` / ``error`` frame's ``code`` and text to a
    :class:`RefusalKind`. Case- and separator-insensitive (``"TOO-FAST"``,
    ``"too fast"``); the code wins over the text; a bare HTTP status 429 with
    nothing more specific is ``SLOW_DOWN``; anything unknown is ``OTHER``."""
    status = str(code).strip() if code is not None else ""
    for text in (status, message or ""):
        kind = _match(text) if text else None
        if kind is not None:
            return kind
    if status == "429" or re.match(r"^429\b", (message or "").strip()):
        return RefusalKind.SLOW_DOWN
    return RefusalKind.OTHER
