"""Who may push records: Standard Webhooks signatures or a bearer token.

Exactly one mode is configured; everything else is refused (:class:`Unauthorized`,
answered ``401``). Messages say what is wrong with the request, never what the
secret or token is.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from dispatch.webhooks.signing import (
    TOLERANCE_S,
    SignatureRefused,
    WebhookSecret,
    check_timestamp,
    verify,
)

__all__ = ["IntakeAuth", "Unauthorized"]


class Unauthorized(Exception):
    """Not authenticated (401)."""


class IntakeAuth:
    """``secrets`` (Standard Webhooks, several during rotation) or ``token`` (bearer)."""

    def __init__(self, *, secrets: Sequence[WebhookSecret] = (), token: str | None = None,
                 tolerance_s: float = TOLERANCE_S) -> None:
        if bool(secrets) == bool(token):
            raise ValueError("webhook intake needs either signing secrets or a bearer token")
        if token is not None and len(token) < 16:
            raise ValueError("webhook bearer token is too short (at least 16 characters)")
        self._secrets = list(secrets)
        self._token = token.encode() if token else None
        self.tolerance_s = tolerance_s

    def __repr__(self) -> str:
        return f"IntakeAuth(mode={self.mode!r})"

    @property
    def mode(self) -> str:
        return "signature" if self._secrets else "bearer"

    def before_body(self, headers: Mapping[str, str], *, now: float) -> None:
        """The checks that need no body: the token, or the signature headers' shape
        and timestamp (so an old replay is refused before its body is read)."""
        if self._token is not None:
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self._token
            ):
                raise Unauthorized("missing or wrong bearer token")
            return
        if not all(headers.get(h) for h in ("webhook-id", "webhook-timestamp",
                                             "webhook-signature")):
            raise Unauthorized("missing webhook-id, webhook-timestamp or webhook-signature")
        try:
            check_timestamp(headers["webhook-timestamp"], now=now, tolerance_s=self.tolerance_s)
        except SignatureRefused as exc:
            raise Unauthorized(str(exc)) from None

    def after_body(self, headers: Mapping[str, str], body: bytes, *, now: float) -> None:
        """Verify the signature over the raw body (signature mode)."""
        if not self._secrets:
            return
        try:
            verify(self._secrets, headers, body, now=now, tolerance_s=self.tolerance_s)
        except SignatureRefused as exc:
            raise Unauthorized(str(exc)) from None
