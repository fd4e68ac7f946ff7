"""Wire reason strings to the domain :class:`~dispatch.reasons.Reason`.

The wire is inconsistent (``no-answer`` and ``no_answer``, ``canceled`` and
``cancelled``, ``hangup`` and ``caller_hangup``). Every raw string is mapped to a
:class:`Reason` exactly once, here at the protocol boundary, and the raw text is
kept alongside for audit.
"""

from __future__ import annotations

import re

from dispatch.reasons import Reason

__all__ = ["normalize_reason"]

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
    "invalid_row": Reason.INVALID_ROW,
    "invalid_encoding": Reason.INVALID_ENCODING,
    "duplicate_id_conflict": Reason.DUPLICATE_ID_CONFLICT,
    "record_too_large": Reason.RECORD_TOO_LARGE,
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
