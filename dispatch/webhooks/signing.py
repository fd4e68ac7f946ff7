"""Standard Webhooks signatures: ``whsec_`` secrets, signing and verification.

A message is signed as ``v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>``; the
``webhook-signature`` header holds one or more such entries separated by spaces.

Signing uses the maintained ``standardwebhooks`` package. Verification is done here
over the raw body bytes, because the package's ``verify`` reads the wall clock (time
is a parameter in this project), decodes the body as UTF-8 before checking it and
raises ``ValueError``/``binascii.Error`` on a malformed header instead of refusing
it. Every failure is one :class:`SignatureRefused` whose message never contains a
secret or the expected signature.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence

from standardwebhooks.webhooks import Webhook

__all__ = [
    "TOLERANCE_S",
    "SignatureRefused",
    "WebhookSecret",
    "parse_secret",
    "sign",
    "verify",
]

#: timestamps further than this from now (either way) are refused
TOLERANCE_S = 300.0
_PREFIX = "whsec_"


class SignatureRefused(Exception):
    """The request is not signed by any of the configured secrets (or too old/new)."""


class WebhookSecret:
    """One ``whsec_`` secret; its ``repr`` never shows the key."""

    __slots__ = ("_key", "_text")

    def __init__(self, key: bytes, text: str) -> None:
        self._key = key
        self._text = text

    def __repr__(self) -> str:
        return "WebhookSecret(***)"

    @property
    def key(self) -> bytes:
        return self._key

    def signer(self) -> Webhook:
        return Webhook(self._text)


def parse_secret(text: str) -> WebhookSecret:
    """Parse ``whsec_<base64>`` (the prefix is optional). Raises ``ValueError``
    without echoing the secret."""
    value = text.strip()
    body = value[len(_PREFIX):] if value.startswith(_PREFIX) else value
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("webhook secret is not whsec_<base64>") from None
    if len(key) < 16:
        raise ValueError("webhook secret is too short (at least 16 bytes of key)")
    return WebhookSecret(key, _PREFIX + body)


def sign(secret: WebhookSecret, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` value for ``body`` (the package's own signer)."""
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return secret.signer().sign(msg_id=msg_id, timestamp=when, data=body)


def _expected(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def _candidates(header: str) -> list[bytes]:
    found: list[bytes] = []
    for entry in header.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1" or not value:
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    secrets: Sequence[WebhookSecret],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance_s: float = TOLERANCE_S,
) -> str:
    """Check the Standard Webhooks headers of ``body``; return the ``webhook-id``.

    Any of ``secrets`` may have signed it (rotation). Raises :class:`SignatureRefused`
    for missing headers, a timestamp outside ``now ± tolerance_s`` or no matching
    signature (constant-time comparisons)."""
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    header = headers.get("webhook-signature", "")
    if not (msg_id and stamp and header):
        raise SignatureRefused("missing webhook-id, webhook-timestamp or webhook-signature")
    check_timestamp(stamp, now=now, tolerance_s=tolerance_s)
    given = _candidates(header)
    matched = False
    for secret in secrets:
        expected = _expected(secret.key, msg_id, stamp, body)
        for candidate in given:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureRefused("no matching signature")
    return msg_id


def check_timestamp(stamp: str, *, now: float, tolerance_s: float = TOLERANCE_S) -> None:
    """Refuse a ``webhook-timestamp`` that is not integer seconds within tolerance."""
    if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
        raise SignatureRefused("webhook-timestamp is not unix seconds")
    at = int(stamp)
    if at < now - tolerance_s:
        raise SignatureRefused("webhook-timestamp is too old")
    if at > now + tolerance_s:
        raise SignatureRefused("webhook-timestamp is in the future")
