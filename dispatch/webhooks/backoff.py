"""Retry timing of result webhooks: pure functions of the attempt count and ``now``."""

from __future__ import annotations

import email.utils
import random

__all__ = ["parse_retry_after", "retry_delay_s"]


def retry_delay_s(attempts: int, *, base_s: float, max_s: float,
                  rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``base_s * 2**(attempts-1)``, capped at
    ``max_s``, times a random factor in ``[0.5, 1.0)`` (so failing senders spread)."""
    ceiling = min(max_s, base_s * 2.0 ** max(0, min(attempts - 1, 40)))
    factor = (rng or random).uniform(0.5, 1.0)
    return ceiling * factor


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
