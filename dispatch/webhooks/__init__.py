"""Signed result webhooks (Standard Webhooks) through a durable outbox.

``ResultWebhooks([Endpoint(url, parse_secret("whsec_..."))])`` given to
``DispatchHub(result_webhooks=...)`` POSTs every terminal outcome to each endpoint.
:mod:`dispatch.webhooks.signing` is shared with the intake
(:class:`~dispatch.strategies.WebhookStrategy`).
"""

from dispatch.webhooks.delivery import DeliveryStatistics, Endpoint, ResultWebhooks
from dispatch.webhooks.signing import SignatureRefused, WebhookSecret, parse_secret, sign, verify

__all__ = [
    "DeliveryStatistics",
    "Endpoint",
    "ResultWebhooks",
    "SignatureRefused",
    "WebhookSecret",
    "parse_secret",
    "sign",
    "verify",
]
