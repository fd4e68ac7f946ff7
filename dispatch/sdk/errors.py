"""Exceptions raised by the Pinecall client.

Every foreign exception (``websockets``, ``OSError``, JSON decoding) is translated
into this tree at the edge and chained with ``from``::

    PinecallError
    ├── ConfigurationError      bad arguments given by the caller (no frame was sent)
    ├── ConnectionError_        (exported as ``PinecallConnectionError``)
    │   ├── AuthenticationError the server refused the key or closed before `connected`
    │   ├── ConnectTimeout      no socket / no `connected` within the handshake timeout
    │   └── ConnectionLost      the socket dropped while something was in flight
    ├── RegistrationError       agent.create / channel.add refused (has ``code``)
    ├── DialFailed              a dial did not produce an answered call (has ``reason``)
    │   └── DialRefused         the platform refused the dial itself (has ``kind``,
    │                           ``retry_after_s``): rate, quiet hours, DNC, consent, quota
    ├── RequestFailed           a request/ack pair (history.set_vars) failed or timed out
    └── NotConnected            a command was issued while offline (fail fast, no replay)

Messages never contain the API key.
"""

from __future__ import annotations

from typing import Any

from dispatch.compliance.refusals import RefusalKind
from dispatch.log import redact
from dispatch.reasons import Reason

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConnectTimeout",
    "ConnectionLost",
    "DialFailed",
    "DialRefused",
    "NotConnected",
    "PinecallConnectionError",
    "PinecallError",
    "RegistrationError",
    "RequestFailed",
]


class PinecallError(Exception):
    """Root of every error raised by :mod:`dispatch.sdk`."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        message = redact(message)  # server texts may echo a registered secret
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}" if self.code else self.message


class ConfigurationError(PinecallError, ValueError):
    """Invalid arguments (bad E.164 number, missing caller id...). Nothing was sent."""


class PinecallConnectionError(PinecallError):
    """The connection to the voice server could not be established or was lost."""


class AuthenticationError(PinecallConnectionError):
    """The server refused the handshake (``error`` frame or close before ``connected``).

    ``code`` is the server's code (e.g. ``INVALID_KEY``) when it sent one. Not retried.
    """


class ConnectTimeout(PinecallConnectionError):
    """No socket, or no ``connected`` frame, within the configured timeout."""


class ConnectionLost(PinecallConnectionError):
    """The socket dropped while a dial, call or request depended on it."""


class NotConnected(PinecallConnectionError):
    """A command was issued while the client is offline; it is not queued for replay."""


class RegistrationError(PinecallError):
    """An agent or channel registration was refused.

    ``code`` is one of ``AGENT_CONFLICT_FATAL``, ``SERVER_AT_CAPACITY``,
    ``REGISTRATION_ERROR``, ``PHONE_IN_USE``, ``RETRY_BUDGET_EXHAUSTED`` or a
    server code not known in advance.
    """

    def __init__(self, message: str, *, code: str | None = None, agent_id: str | None = None):
        super().__init__(message, code=code)
        self.agent_id = agent_id


class DialFailed(PinecallError):
    """A dial ended without an answered call.

    ``reason`` is normalised (busy, no_answer, failed, canceled, timeout, error,
    disconnected); ``raw_reason`` is the server's string (or the local cause);
    ``call_id`` is set when the server had already assigned one (``call.dialing``).
    """

    def __init__(
        self,
        reason: Reason,
        raw_reason: str | None = None,
        *,
        call_id: str | None = None,
        code: str | None = None,
        to: str | None = None,
    ) -> None:
        text = f"dial to {to or '?'} failed: {reason.value}"
        if raw_reason and raw_reason != reason.value:
            text += f" ({raw_reason})"
        super().__init__(text, code=code)
        self.reason = reason
        self.raw_reason = raw_reason if raw_reason is not None else reason.value
        self.call_id = call_id
        self.to = to

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_dial_failed,
            (self.reason, self.raw_reason, self.call_id, self.code, self.to),
        )


def _rebuild_dial_failed(
    reason: Reason, raw: str | None, call_id: str | None, code: str | None, to: str | None
) -> DialFailed:
    return DialFailed(reason, raw, call_id=call_id, code=code, to=to)


class DialRefused(DialFailed):
    """The voice server refused to place the dial (its own limits or lists).

    ``kind`` says what the hub should do (:class:`~dispatch.compliance.RefusalKind`:
    slow down, defer, skip, pause the campaign); ``retry_after_s`` is the server's
    hint (seconds) when the frame carried one; ``code`` and ``raw_reason`` keep the
    wire code and text. Never ``RefusalKind.OTHER`` (that stays a plain
    :class:`DialFailed`). No refusal is an attempt of the record.
    """

    def __init__(
        self,
        kind: RefusalKind,
        reason: Reason,
        raw_reason: str | None = None,
        *,
        retry_after_s: float | None = None,
        call_id: str | None = None,
        code: str | None = None,
        to: str | None = None,
    ) -> None:
        super().__init__(reason, raw_reason, call_id=call_id, code=code, to=to)
        self.kind = kind
        self.retry_after_s = retry_after_s

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_dial_refused,
            (self.kind, self.reason, self.raw_reason, self.retry_after_s, self.call_id,
             self.code, self.to),
        )


def _rebuild_dial_refused(
    kind: RefusalKind, reason: Reason, raw: str | None, retry_after_s: float | None,
    call_id: str | None, code: str | None, to: str | None,
) -> DialRefused:
    return DialRefused(kind, reason, raw, retry_after_s=retry_after_s, call_id=call_id,
                       code=code, to=to)


class RequestFailed(PinecallError):
    """A request with an ack (``history.set_vars``...) was rejected or timed out.

    ``code`` is ``REQUEST_REJECTED`` or ``REQUEST_TIMEOUT``.
    """
