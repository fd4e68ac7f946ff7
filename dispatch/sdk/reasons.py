"""One vocabulary for why a call or a dial ended.

The wire is inconsistent (``no-answer`` and ``no_answer``, ``canceled`` and
``cancelled``, ``hangup`` and ``caller_hangup``). Every raw string is mapped to a
:class:`Reason` exactly once, at the protocol boundary, and the raw text is kept
alongside for audit.
"""

from __future__ import annotations

import enum
import re

__all__ = ["ANSWERED_END_REASONS", "DIAL_FAILURE_REASONS", "Reason", "normalize_reason"]


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
    STOPPED = "stopped"
    UNKNOWN = "unknown"


#: Reasons with which a dial can fail before the callee answers.
DIAL_FAILURE_REASONS: frozenset[Reason] = frozenset(
    {Reason.BUSY, Reason.NO_ANSWER, Reason.FAILED, Reason.CANCELED, Reason.TIMEOUT, Reason.ERROR}
)

#: Reasons that end a call that was answered.
ANSWERED_END_REASONS: frozenset[Reason] = frozenset(
    {Reason.HANGUP, Reason.IDLE_TIMEOUT, Reason.MAX_DURATION, Reason.DISCONNECTED}
)

_ALIASES: dict[str, Reason] = {
    "hangup": Reason.HANGUP,
    "hang_up": Reason.HANGUP,
    "hungup": Reason.HANGUP,
    "caller_hangup": Reason.HANGUP,
    "caller_hung_up": Reason.HANGUP,
    "agent_hangup": Reason.HANGUP,
    "agent_hung_up": Reason.HANGUP,
    "supervisor_ended": Reason.HANGUP,
    "completed": Reason.HANGUP,
    "transferred": Reason.HANGUP,
    "busy": Reason.BUSY,
    "no_answer": Reason.NO_ANSWER,
    "noanswer": Reason.NO_ANSWER,
    "failed": Reason.FAILED,
    "dial_failed": Reason.FAILED,
    "call_rejected": Reason.FAILED,
    "rejected": Reason.FAILED,
    "canceled": Reason.CANCELED,
    "cancelled": Reason.CANCELED,
    "timeout": Reason.TIMEOUT,
    "dial_timeout": Reason.TIMEOUT,
    "error": Reason.ERROR,
    "idle_timeout": Reason.IDLE_TIMEOUT,
    "max_duration": Reason.MAX_DURATION,
    "disconnected": Reason.DISCONNECTED,
    "connection_lost": Reason.DISCONNECTED,
    "client_disconnect": Reason.DISCONNECTED,
    "app_detached": Reason.DISCONNECTED,
    "drained": Reason.DISCONNECTED,
    "interrupted": Reason.INTERRUPTED,
    "invalid_phone": Reason.INVALID_PHONE,
    "invalid_record": Reason.INVALID_RECORD,
    "duplicate": Reason.DUPLICATE,
    "stopped": Reason.STOPPED,
}

_SEPARATORS = re.compile(r"[\s\-]+")


def normalize_reason(raw: str | None) -> Reason:
    """Map a raw wire reason string to a :class:`Reason`.

    Case, hyphens and spaces are folded (``"No-Answer"`` -> ``NO_ANSWER``).
    ``None`` or an empty string is ``UNKNOWN``; so is any string not recognised.
    """
    if not raw:
        return Reason.UNKNOWN
    key = _SEPARATORS.sub("_", raw.strip().lower())
    return _ALIASES.get(key, Reason.UNKNOWN)
