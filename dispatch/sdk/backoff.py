"""Delay policies, as pure functions of the attempt number and a random source.

- :func:`reconnect_delay_s`: 1 s doubling to 30 s, plus up to 25 % jitter (protocol §6.1).
- :class:`ConflictBackoff`: the ``AGENT_CONFLICT`` retry episode (protocol §2.7): the
  server's ``retry_after_s`` when given, else ``base * 2^attempt``; capped; jittered by
  a factor in [0.85, 1.15); every delay clipped to what is left of the episode budget.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["ConflictBackoff", "reconnect_delay_s"]


def reconnect_delay_s(
    attempt: int,
    *,
    base_s: float = 1.0,
    max_s: float = 30.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): ``min(base·2^n, max)`` + 0-25 %."""
    delay = min(base_s * 2.0 ** min(attempt, 32), max_s)
    return delay + delay * 0.25 * rng()


class ConflictBackoff:
    """One conflict-retry episode for one agent. ``next_delay_s`` is ``None`` when spent."""

    def __init__(
        self,
        *,
        budget_s: float = 90.0,
        base_delay_s: float = 5.0,
        rng: Callable[[], float] = random.random,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._budget_s = budget_s
        self._base_s = base_delay_s
        self._rng = rng
        self._monotonic = monotonic
        self._attempt = 0
        self._started = monotonic()

    def restart(self) -> None:
        """``holder_alive: false``: attempt back to 0 and a fresh budget."""
        self._attempt = 0
        self._started = self._monotonic()

    def next_delay_s(self, retry_after_s: float | None, holder_alive: bool | None) -> float | None:
        """Delay before the next ``agent.create``, or ``None`` when the budget is spent."""
        left = self._budget_s - (self._monotonic() - self._started)
        if left <= 0:
            return None
        if retry_after_s is not None and retry_after_s >= 0:
            base = retry_after_s
        else:
            base = self._base_s * 2.0 ** min(self._attempt, 32)
        cap = 600.0 if holder_alive else 60.0
        delay = min(base, cap) * (0.85 + 0.3 * self._rng())
        self._attempt += 1
        return min(delay, left)
