"""Pacing: an exact sliding-log rate limit and a concurrency gate.

A dial started at ``s`` counts against every window ``[t, t + window_s)`` that
contains it. The limit is: no such window holds more than ``max_per_window``
starts. With the starts kept sorted, a new start at ``t`` is allowed exactly when
fewer than ``max_per_window`` earlier starts satisfy ``t < s + window_s``, i.e.
when ``t >= starts[-max_per_window] + window_s``. There are no fixed buckets, so
there is no burst of twice the rate across a bucket edge.

The functions are pure functions of ``now`` (table-driven and property tests);
:class:`SlidingWindowLimiter` keeps the log for the running hub.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

__all__ = [
    "WINDOW_S",
    "ConcurrencyGate",
    "SlidingWindowLimiter",
    "earliest_start",
    "in_window",
    "tokens_available",
]

#: the rate window: "calls per minute"
WINDOW_S = 60.0


def in_window(start: float, t: float, window_s: float = WINDOW_S) -> bool:
    """True when a dial started at ``start`` still counts at time ``t``."""
    return start <= t < start + window_s


def tokens_available(
    starts: Sequence[float], now: float, max_per_window: int | None, window_s: float = WINDOW_S
) -> float:
    """How many dials may start at ``now`` (``math.inf`` when unlimited).

    ``starts`` is sorted ascending and holds no start later than ``now``.
    """
    if max_per_window is None:
        return math.inf
    counting = sum(1 for start in starts if now < start + window_s)
    return max(0, max_per_window - counting)


def earliest_start(
    starts: Sequence[float], now: float, max_per_window: int | None, window_s: float = WINDOW_S
) -> float:
    """The earliest time ``>= now`` at which one more dial may start."""
    if max_per_window is None or len(starts) < max_per_window:
        return now
    return max(now, starts[-max_per_window] + window_s)


class SlidingWindowLimiter:
    """The log of dial start times of a running hub.

    Queries (:meth:`available`, :meth:`next_allowed_at`, :meth:`count`) never change
    the log, so asking about a future time (an ETA) cannot forget starts that still
    count now; the log is pruned only by :meth:`record`, at the current time.
    """

    def __init__(self, max_per_window: int | None, window_s: float = WINDOW_S) -> None:
        if max_per_window is not None and max_per_window < 1:
            raise ValueError(f"max_calls_per_minute must be >= 1, got {max_per_window}")
        self.max_per_window = max_per_window
        self.window_s = window_s
        self._starts: deque[float] = deque()
        self.total = 0

    def _prune(self, now: float) -> None:
        while self._starts and not now < self._starts[0] + self.window_s:
            self._starts.popleft()

    def _counting(self, now: float) -> int:
        # starts are sorted and few (at most the cap plus those expired since the
        # last record), so a scan from the oldest is cheap
        expired = 0
        for start in self._starts:
            if now < start + self.window_s:
                break
            expired += 1
        return len(self._starts) - expired

    def available(self, now: float) -> float:
        """Dials that may start at ``now`` (``math.inf`` when unlimited)."""
        if self.max_per_window is None:
            return math.inf
        return max(0, self.max_per_window - self._counting(now))

    def next_allowed_at(self, now: float) -> float:
        """Earliest time ``>= now`` at which a dial may start."""
        return earliest_start(self._starts, now, self.max_per_window, self.window_s)

    def nth_allowed_at(self, now: float, n: int) -> float:
        """When the last of ``n`` more dials may start, each started as early as allowed.

        The k-th future start is ``max(now, starts[k] + window_s)`` over the ``cap``
        starts that still count (``now`` where there are fewer), and every later one
        comes one window after the start ``cap`` places before it: O(1) in ``n``.
        """
        if self.max_per_window is None or n <= 0:
            return now
        cap = self.max_per_window
        counting = list(self._starts)[len(self._starts) - self._counting(now):][-cap:]
        pad = cap - len(counting)
        index, rounds = (n - 1) % cap, (n - 1) // cap
        first = now if index < pad else max(now, counting[index - pad] + self.window_s)
        return first + rounds * self.window_s

    def record(self, t: float, count: int = 1) -> None:
        """Log ``count`` starts at ``t`` (``t`` never decreases)."""
        if self._starts and t < self._starts[-1]:
            t = self._starts[-1]
        self._prune(t)
        self._starts.extend([t] * count)
        self.total += count

    def preload(self, starts: Sequence[float]) -> None:
        """Seed the log with starts of an earlier run (they count, not in ``total``)."""
        merged = sorted([*self._starts, *starts])
        self._starts = deque(merged)

    def count(self, now: float) -> int:
        """Starts in the window ending at ``now`` (tracked even when unlimited)."""
        return self._counting(now)


class ConcurrencyGate:
    """Counts calls between dial-sent and ended against ``max_concurrent``."""

    def __init__(self, max_concurrent: int | None) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.live = 0
        self.peak = 0

    def available(self) -> float:
        if self.max_concurrent is None:
            return math.inf
        return max(0, self.max_concurrent - self.live)

    def acquire(self, count: int = 1) -> None:
        self.live += count
        self.peak = max(self.peak, self.live)

    def release(self) -> None:
        if self.live <= 0:
            raise RuntimeError("concurrency gate released more than acquired")
        self.live -= 1
