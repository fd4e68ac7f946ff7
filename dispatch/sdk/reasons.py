"""Wire reason strings to the domain :class:`~dispatch.reasons.Reason`.

The wire is inconsistent (``no-answer`` and ``no_answer``, ``canceled`` and
``cancelled``, ``hangup`` and ``caller_hangup``). Every raw string is mapped to a
:class:`Reason` exactly once, here at the protocol boundary, and the raw text is
kept alongside for audit.

Dial refusals (the platform's own limits and lists: ``too_fast``, ``quiet_hours``,
``do_not_call``, quota...) are classified here too, once, by
:func:`classify_dial_refusal`; the router turns them into
:class:`~dispatch.sdk.errors.DialRefused` (see :func:`dispatch.sdk.dialing.dial_error`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from dispatch.compliance.refusals import REFUSAL_REASONS, RefusalKind, classify_refusal
from dispatch.reasons import Reason

__all__ = ["classify_dial_refusal", "normalize_reason", "refusal_reason", "retry_after_s"]

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


#: the domain reason of each refusal kind (``OTHER`` is not a refusal)
_REFUSAL_REASON: dict[RefusalKind, Reason] = {
    kind: Reason(value) for kind, value in REFUSAL_REASONS.items() if value is not None
}
#: keys a refusal frame may carry its retry hint under (seconds); the platform
#: documents none, the sandbox sends ``retry_after``
_RETRY_KEYS = ("retry_after", "retry_after_s", "retryAfter")
#: a hint longer than this is not believed (a typo'd ms value, a hostile frame)
MAX_RETRY_AFTER_S = 2 * 86_400.0


def refusal_reason(kind: RefusalKind) -> Reason:
    """The domain :class:`Reason` a refused dial records (``platform_rate_limited``...)."""
    return _REFUSAL_REASON.get(kind, Reason.ERROR)


def retry_after_s(frame: Mapping[str, Any]) -> float | None:
    """The frame's retry hint in seconds, when it carries a sane one (0..2 days)."""
    for key in _RETRY_KEYS:
        value = frame.get(key)
        if isinstance(value, bool) or value is None:
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and 0.0 <= seconds <= MAX_RETRY_AFTER_S:
            return seconds
    return None


def classify_dial_refusal(frame: Mapping[str, Any], text: str) -> RefusalKind:
    """What a ``call.error`` / ``error`` frame refusing a dial means: its ``code`` (or
    HTTP ``status``) and text, through :func:`~dispatch.compliance.classify_refusal`.
    ``RefusalKind.OTHER`` is an ordinary dial failure."""
    code = frame.get("code")
    if not isinstance(code, str | int) or isinstance(code, bool):
        code = None
    kind = classify_refusal(code, text)
    status = frame.get("status")
    if kind is RefusalKind.OTHER and isinstance(status, int) and not isinstance(status, bool):
        kind = classify_refusal(status, text)
    return kind
