"""Pure parts: Standard Webhooks secrets and signatures, retry timing, Retry-After."""

from __future__ import annotations

import base64
import datetime as dt
import random

import pytest
from standardwebhooks.webhooks import Webhook

from dispatch.webhooks import SignatureRefused, parse_secret, sign, verify
from dispatch.webhooks.backoff import parse_retry_after, retry_delay_s

from .helpers import OTHER, SECRET

NOW = 1_800_000_000


def _headers(secret: str, body: bytes, msg_id: str = "msg_1", at: int = NOW) -> dict[str, str]:
    when = dt.datetime.fromtimestamp(at, tz=dt.UTC)
    return {"webhook-id": msg_id, "webhook-timestamp": str(at),
            "webhook-signature": Webhook(secret).sign(msg_id, when, body.decode())}


def test_our_signature_is_the_packages_and_verifies_both_ways():
    body = '{"a":"é"}'
    ours = sign(parse_secret(SECRET), "msg_9", NOW, body)
    when = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    assert ours == Webhook(SECRET).sign("msg_9", when, body)
    headers = {"webhook-id": "msg_9", "webhook-timestamp": str(NOW), "webhook-signature": ours}
    assert verify([parse_secret(SECRET)], headers, body.encode(), now=NOW) == "msg_9"


@pytest.mark.parametrize(("change", "why"), [
    ({"webhook-id": "msg_2"}, "no matching signature"),
    ({"webhook-timestamp": str(NOW + 1)}, "no matching signature"),
    ({"webhook-timestamp": str(NOW - 301)}, "too old"),
    ({"webhook-timestamp": str(NOW + 301)}, "in the future"),
    ({"webhook-timestamp": "17e8"}, "not unix seconds"),
    ({"webhook-signature": "v2,AAAA"}, "no matching signature"),
    ({"webhook-signature": ""}, "missing"),
])
def test_verification_refuses(change: dict[str, str], why: str):
    body = b'{"records": []}'
    headers = {**_headers(SECRET, body), **change}
    with pytest.raises(SignatureRefused, match=why) as info:
        verify([parse_secret(SECRET)], headers, body, now=NOW)
    assert SECRET not in str(info.value)


def test_several_secrets_and_several_signatures():
    body = b"{}"
    rotated = _headers(OTHER, body)
    assert verify([parse_secret(SECRET), parse_secret(OTHER)], rotated, body, now=NOW)
    both = {**rotated, "webhook-signature": "v1,bm9wZQ== " + rotated["webhook-signature"]}
    assert verify([parse_secret(OTHER)], both, body, now=NOW)
    with pytest.raises(SignatureRefused):
        verify([parse_secret(SECRET)], rotated, body, now=NOW)
    with pytest.raises(SignatureRefused):
        verify([parse_secret(OTHER)], rotated, body + b" ", now=NOW)


@pytest.mark.parametrize("text", ["whsec_***", "whsec_" + base64.b64encode(b"short").decode()])
def test_bad_secrets_are_refused_without_echo(text: str):
    with pytest.raises(ValueError) as info:
        parse_secret(text)
    assert text[6:] not in str(info.value)
    assert repr(parse_secret(SECRET)) == "WebhookSecret(***)"


@pytest.mark.parametrize(("attempts", "low", "high"), [
    (1, 2.5, 5.0), (2, 5.0, 10.0), (3, 10.0, 20.0), (10, 50.0, 100.0), (60, 50.0, 100.0)])
def test_backoff_doubles_with_jitter_up_to_the_cap(attempts: int, low: float, high: float):
    rng = random.Random(7)
    delays = [retry_delay_s(attempts, base_s=5.0, max_s=100.0, rng=rng) for _ in range(200)]
    assert all(low <= d < high for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jittered, not one value


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("120", now=NOW) == 120.0
    date = dt.datetime.fromtimestamp(NOW + 30, tz=dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(date, now=NOW) == pytest.approx(30.0)
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None
