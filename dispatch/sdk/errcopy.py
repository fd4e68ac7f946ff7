"""Copies of stored errors, so one exception instance is never raised in two tasks."""

from __future__ import annotations

from dispatch.sdk.errors import DialFailed, DialRefused, PinecallError, RegistrationError

__all__ = ["clone_error"]


def clone_error(error: PinecallError) -> PinecallError:
    """A fresh copy of a stored error, chained to it (one instance is never raised twice)."""
    if isinstance(error, RegistrationError):
        copy: PinecallError = RegistrationError(error.message, code=error.code,
                                                agent_id=error.agent_id)
    elif isinstance(error, DialRefused):
        copy = DialRefused(error.kind, error.reason, error.raw_reason,
                           retry_after_s=error.retry_after_s, call_id=error.call_id,
                           code=error.code, to=error.to)
    elif isinstance(error, DialFailed):
        copy = DialFailed(error.reason, error.raw_reason, call_id=error.call_id,
                          code=error.code, to=error.to)
    else:
        copy = type(error)(error.message, code=error.code)
    copy.__cause__ = error
    return copy
