"""The platform's refusal frames are typed once, at the SDK boundary (``dial_error``)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from dispatch.compliance import RefusalKind
from dispatch.reasons import Reason
from dispatch.sdk.dialing import dial_error
from dispatch.sdk.errcopy import clone_error
from dispatch.sdk.errors import DialFailed, DialRefused

K = RefusalKind


@pytest.mark.parametrize(("frame", "kind", "reason", "retry_after_s"), [
    ({"code": "too_fast", "status": 429, "retry_after": 12.5}, K.SLOW_DOWN,
     Reason.PLATFORM_RATE_LIMITED, 12.5),
    ({"code": "too_many", "status": 429}, K.PAUSE_DAY, Reason.PLATFORM_RATE_LIMITED, None),
    ({"code": "too_often", "retry_after_s": "60"}, K.DEFER_DAY, Reason.PLATFORM_TOO_OFTEN, 60.0),
    ({"code": "quiet_hours", "status": 403}, K.QUIET_HOURS, Reason.PLATFORM_QUIET_HOURS, None),
    ({"code": "do_not_call", "status": 403}, K.DNC, Reason.DNC, None),
    ({"code": "no_consent"}, K.NO_CONSENT, Reason.NO_CONSENT, None),
    ({"code": "stranger"}, K.STRANGER, Reason.STRANGER, None),
    ({"code": "concurrent_calls", "status": 429}, K.QUOTA, Reason.QUOTA_EXHAUSTED, None),
    ({"code": 429, "retryAfter": 3}, K.SLOW_DOWN, Reason.PLATFORM_RATE_LIMITED, 3.0),
    # no code at all, only an HTTP status: a bare 429 is a rate refusal
    ({"status": 429}, K.SLOW_DOWN, Reason.PLATFORM_RATE_LIMITED, None),
    # hints that are not believed
    ({"code": "too_fast", "retry_after": -1}, K.SLOW_DOWN, Reason.PLATFORM_RATE_LIMITED, None),
    ({"code": "too_fast", "retry_after": 1e12}, K.SLOW_DOWN, Reason.PLATFORM_RATE_LIMITED, None),
    ({"code": "too_fast", "retry_after": True}, K.SLOW_DOWN, Reason.PLATFORM_RATE_LIMITED, None),
])
def test_refusal_frames_become_dial_refused(frame: dict[str, Any], kind: RefusalKind,
                                            reason: Reason, retry_after_s: float | None) -> None:
    text = f"{frame.get('status', '')} {frame.get('code', '')}: refused".strip()
    error = dial_error(frame, text, code=frame.get("code") if isinstance(frame.get("code"), str)
                       else None, call_id=None, to="+15550000001")
    assert isinstance(error, DialRefused)
    assert (error.kind, error.reason, error.retry_after_s) == (kind, reason, retry_after_s)
    assert error.raw_reason == text and error.to == "+15550000001"


@pytest.mark.parametrize("frame", [
    {"code": "INVALID_NUMBER", "error": "'to' is not an E.164 number"},
    {"code": "FORBIDDEN", "error": "Outbound calling not enabled on this plan"},
    {"status": 403, "error": "forbidden"},
    {},
])
def test_other_errors_stay_plain_dial_failures(frame: dict[str, Any]) -> None:
    error = dial_error(frame, str(frame.get("error", "Unknown call error")), code=None,
                       call_id="CA1", to=None)
    assert type(error) is DialFailed and error.reason is Reason.ERROR


def test_text_only_refusal_from_a_generic_error_frame() -> None:
    error = dial_error({}, "Refused: quiet hours in effect for +1 numbers", code=None,
                       call_id=None, to=None)
    assert isinstance(error, DialRefused) and error.kind is K.QUIET_HOURS


def test_dial_refused_survives_pickle_and_clone() -> None:
    error = DialRefused(K.SLOW_DOWN, Reason.PLATFORM_RATE_LIMITED, "429 too_fast: slow",
                        retry_after_s=4.0, code="too_fast", to="+15550000001")
    for copy in (pickle.loads(pickle.dumps(error)), clone_error(error)):
        assert isinstance(copy, DialRefused) and copy is not error
        assert (copy.kind, copy.reason, copy.retry_after_s, copy.code, copy.to) == (
            K.SLOW_DOWN, Reason.PLATFORM_RATE_LIMITED, 4.0, "too_fast", "+15550000001")
    assert str(error) == ("[too_fast] dial to +15550000001 failed: platform_rate_limited "
                          "(429 too_fast: slow)")
