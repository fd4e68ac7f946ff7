"""The dispatch hub: pacing, deduplication, retries and durable state.

Public names: :class:`DispatchHub`, :class:`RetryPolicy`, :class:`HubStatistics` (and
the :class:`SourceFailure` entries it lists),
the :class:`Dialer`/:class:`CallLike` interface, and the pure limiter functions.
"""

from dispatch.hub.dialer import CallLike, Dialer
from dispatch.hub.hub import DispatchHub
from dispatch.hub.limiter import (
    WINDOW_S,
    ConcurrencyGate,
    SlidingWindowLimiter,
    earliest_start,
    in_window,
    tokens_available,
)
from dispatch.hub.retry import DEFAULT_DELAYS_S, RetryPolicy
from dispatch.hub.sources import SourceFailure
from dispatch.hub.stats import HubStatistics

__all__ = [
    "DEFAULT_DELAYS_S",
    "WINDOW_S",
    "CallLike",
    "ConcurrencyGate",
    "Dialer",
    "DispatchHub",
    "HubStatistics",
    "RetryPolicy",
    "SlidingWindowLimiter",
    "SourceFailure",
    "earliest_start",
    "in_window",
    "tokens_available",
]
