"""A snapshot of the hub for the live display, the metrics endpoint and tests."""

from __future__ import annotations

import dataclasses

from dispatch.hub.core import HubCore

__all__ = ["HubStatistics", "snapshot"]


@dataclasses.dataclass(frozen=True, slots=True)
class HubStatistics:
    """Counts by status cover the whole database (earlier runs included).

    ``next_dial_eta_s`` is 0 when a dial could start now, the seconds until the
    rate limit or the next due retry allows one, or ``None`` when nothing is
    waiting, every concurrency slot is taken or the hub is stopping/stopped
    (``waiting_on``: ``rate``, ``schedule``, ``concurrency``, ``phone``, ``stopped``).
    """

    running: bool
    pending: int
    scheduled: int
    dialing: int
    active: int
    completed: int
    failed: int
    skipped: int
    dials_last_60s: int
    dials_total: int
    max_calls_per_minute: int | None
    max_concurrent: int | None
    live_calls: int
    next_dial_eta_s: float | None
    waiting_on: str | None
    callbacks_pending: int


def _eta(core: HubCore, now: float) -> tuple[float | None, str | None]:
    queue = core.queue
    due = queue.next_due_at()
    if not queue.ready_count and due is None and not queue.parked_count:
        return None, None
    if core.stopping:
        return None, "stopped"  # what waits is left for the next run
    if not queue.ready_count and due is None:
        return None, "phone"
    if core.gate.available() <= 0:
        return None, "concurrency"
    # tokens only grow while nobody dials, so the first time both the rate and the
    # schedule allow a dial is the later of the two (the window is asked about now)
    rate_at = core.window.next_allowed_at(now)
    if queue.ready_count:
        return max(0.0, rate_at - now), ("rate" if rate_at > now else None)
    assert due is not None
    at = max(due, rate_at)
    return max(0.0, at - now), ("schedule" if due >= rate_at else "rate")


def snapshot(core: HubCore | None, *, running: bool, max_calls_per_minute: int | None,
             max_concurrent: int | None) -> HubStatistics:
    """Build :class:`HubStatistics` (all zeros before the first run)."""
    if core is None:
        return HubStatistics(running, 0, 0, 0, 0, 0, 0, 0, 0, 0, max_calls_per_minute,
                             max_concurrent, 0, None, None, 0)
    now = core.clock.now()
    counts = core.book.counts
    eta, waiting_on = _eta(core, now)
    return HubStatistics(
        running=running,
        pending=counts["pending"],
        scheduled=counts["scheduled"],
        dialing=counts["dialing"],
        active=counts["in_call"],
        completed=counts["completed"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        dials_last_60s=core.window.count(now),
        dials_total=core.window.total,
        max_calls_per_minute=max_calls_per_minute,
        max_concurrent=max_concurrent,
        live_calls=core.gate.live,
        next_dial_eta_s=eta,
        waiting_on=waiting_on,
        callbacks_pending=core.notifier.pending,
    )
