"""When the known work will be done: the campaign ETA of :meth:`DispatchHub.statistics`.

A model of the hub's own pacing, not an extrapolation of past throughput (which
climbs while a rate-bound campaign waits on its window). The end is the latest of

- the start of the last waiting dial under the sliding-window rate limits, per minute
  and per second (exact for each: :meth:`SlidingWindowLimiter.nth_allowed_at`), plus
  one slot time;
- the slot work left divided by the concurrency limit (live calls' remaining time
  plus one slot time per waiting dial);
- the latest due retry or ``not_before``, plus one slot time;
- the end of the longest-running live call.

The *slot time* is the mean time from dial to the end of the call of the attempts
settled so far in this run (before the first one: how long the oldest live call
has been going, a lower bound). Retries that have not been decided yet are not
counted, so the ETA is for the work known now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from dispatch.hub.limiter import ConcurrencyGate, SlidingWindowLimiter
from dispatch.hub.scheduling import DialQueue

__all__ = ["SlotTimes", "campaign_eta_s"]


@dataclasses.dataclass(slots=True)
class SlotTimes:
    """The running mean of how long one dial holds a concurrency slot (s)."""

    total_s: float = 0.0
    count: int = 0

    def add(self, seconds: float) -> None:
        self.total_s += max(0.0, seconds)
        self.count += 1

    def mean_s(self, live_started: Iterable[float], now: float) -> float:
        if self.count:
            return self.total_s / self.count
        return max((now - started for started in live_started), default=0.0)


def campaign_eta_s(
    queue: DialQueue,
    window: SlidingWindowLimiter,
    gate: ConcurrencyGate,
    live_started: list[float],
    slot_s: float,
    now: float,
    per_second: SlidingWindowLimiter | None = None,
) -> float:
    """Seconds until every waiting record has been dialled and every call has ended.

    ``per_second``: the calls-per-second window, when there is one (the later of the
    two windows' last starts bounds the end)."""
    waiting = queue.ready_count + queue.timed_count + queue.parked_count
    live_left = [max(0.0, started + slot_s - now) for started in live_started]
    if not waiting and not live_started:
        return 0.0
    ends = [now + max(live_left, default=0.0)]
    if waiting:
        for limit in (window, per_second):
            if limit is not None:
                ends.append(limit.nth_allowed_at(now, waiting) + slot_s)
        if gate.max_concurrent is not None:
            ends.append(now + (sum(live_left) + waiting * slot_s) / gate.max_concurrent)
        last_due = queue.last_due_at()
        if last_due is not None:
            ends.append(max(now, last_due) + slot_s)
    return max(ends) - now
