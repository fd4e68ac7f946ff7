"""The outcome vocabulary: why a call, a dial or a record ended.

This is a domain module: the hub, the store, strategies and reports speak it. The
SDK maps the wire's inconsistent strings onto it exactly once
(:func:`dispatch.sdk.reasons.normalize_reason`) and keeps the raw text beside it.
"""

from __future__ import annotations

import enum

__all__ = ["ANSWERED_END_REASONS", "COMPLIANCE_SKIP_REASONS", "DIAL_FAILURE_REASONS",
           "INPUT_REASONS", "Reason"]


class Reason(enum.StrEnum):
    """Normalised end reason of a call, a dial or a record."""

    # a party hung up after the call was answered
    HANGUP = "hangup"
    # dial failures (never answered)
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMEOUT = "timeout"
    ERROR = "error"
    # answered calls that ended for a platform reason
    IDLE_TIMEOUT = "idle_timeout"
    MAX_DURATION = "max_duration"
    DISCONNECTED = "disconnected"
    # dispatcher-level reasons (never on the wire)
    INTERRUPTED = "interrupted"
    INVALID_PHONE = "invalid_phone"
    INVALID_RECORD = "invalid_record"
    DUPLICATE = "duplicate"
    # bad input found by a strategy or the hub (the record is skipped, never dialled)
    INVALID_ROW = "invalid_row"
    INVALID_ENCODING = "invalid_encoding"
    DUPLICATE_ID_CONFLICT = "duplicate_id_conflict"
    RECORD_TOO_LARGE = "record_too_large"
    STOPPED = "stopped"
    # the campaign was cancelled before the record's next dial
    CAMPAIGN_CANCELLED = "campaign_cancelled"
    UNKNOWN = "unknown"
    # -- dial-time compliance (issue 9; see dispatch.compliance.reasons) ----------------
    # skips (terminal, never dialled)
    UNKNOWN_TIMEZONE = "unknown_timezone"
    DNC = "dnc"
    NO_CALLING_WINDOW = "no_calling_window"
    NO_CONSENT = "no_consent"
    STRANGER = "stranger"
    # deferrals (the record waits; not an attempt)
    OUTSIDE_CALLING_HOURS = "outside_calling_hours"
    PHONE_CAP = "phone_cap"
    CAMPAIGN_CAP = "campaign_cap"
    # the platform's refusals
    PLATFORM_QUIET_HOURS = "platform_quiet_hours"
    PLATFORM_TOO_OFTEN = "platform_too_often"
    PLATFORM_RATE_LIMITED = "platform_rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"


#: Reasons with which a dial can fail before the callee answers.
DIAL_FAILURE_REASONS: frozenset[Reason] = frozenset(
    {Reason.BUSY, Reason.NO_ANSWER, Reason.FAILED, Reason.CANCELED, Reason.TIMEOUT, Reason.ERROR}
)

#: Reasons that end a call that was answered.
ANSWERED_END_REASONS: frozenset[Reason] = frozenset(
    {Reason.HANGUP, Reason.IDLE_TIMEOUT, Reason.MAX_DURATION, Reason.DISCONNECTED}
)

#: Reasons that mean "this input cannot be dialled" (set by strategies or the hub).
INPUT_REASONS: frozenset[Reason] = frozenset(
    {Reason.INVALID_PHONE, Reason.INVALID_RECORD, Reason.INVALID_ROW, Reason.INVALID_ENCODING,
     Reason.DUPLICATE, Reason.DUPLICATE_ID_CONFLICT, Reason.RECORD_TOO_LARGE}
)

#: Reasons with which the admission step skips a record (issue 9): never dialled.
COMPLIANCE_SKIP_REASONS: frozenset[Reason] = frozenset(
    {Reason.UNKNOWN_TIMEZONE, Reason.DNC, Reason.NO_CALLING_WINDOW, Reason.NO_CONSENT,
     Reason.STRANGER}
)
