"""Every refusal code the platform documents, mapped once."""

from __future__ import annotations

import pytest

from dispatch.compliance import REFUSAL_REASONS, RefusalKind, classify_refusal, reasons

K = RefusalKind


@pytest.mark.parametrize(("code", "message", "kind"), [
    ("too_fast", None, K.SLOW_DOWN),
    ("too_many", None, K.PAUSE_DAY),
    ("too_often", None, K.DEFER_DAY),
    ("quiet_hours", None, K.QUIET_HOURS),
    ("do_not_call", None, K.DNC),
    ("no_consent", None, K.NO_CONSENT),
    ("stranger", None, K.STRANGER),
    ("concurrent_calls", None, K.QUOTA),
    ("minutes", None, K.QUOTA),
    ("RATE_LIMITED", None, K.SLOW_DOWN),
    ("INSUFFICIENT_CREDITS", None, K.QUOTA),
    # spelling variants and codes carried in the text
    ("TOO-FAST", None, K.SLOW_DOWN),
    (None, "429 too_often: this number was called too often today", K.DEFER_DAY),
    (None, "Refused: quiet hours in effect for +1 numbers", K.QUIET_HOURS),
    (429, "quota exceeded: concurrent_calls", K.QUOTA),
    (403, "number is on the do-not-call list", K.DNC),
    ("429", None, K.SLOW_DOWN),
    (None, "429 Too Many Requests", K.SLOW_DOWN),
    # the code wins over the text; "minutes" in free text is not a quota
    ("too_fast", "quiet_hours", K.SLOW_DOWN),
    (None, "try again in 5 minutes", K.OTHER),
    (403, "forbidden", K.OTHER),
    ("BUSY", "line busy", K.OTHER),
    (None, None, K.OTHER),
])
def test_classify_refusal(code: str | int | None, message: str | None, kind: RefusalKind) -> None:
    assert classify_refusal(code, message) is kind


def test_only_ordinary_failures_spend_an_attempt() -> None:
    assert [k for k in RefusalKind if k.spends_attempt] == [K.OTHER]
    assert REFUSAL_REASONS[K.DNC] == reasons.DNC
    assert set(REFUSAL_REASONS) == set(RefusalKind)
