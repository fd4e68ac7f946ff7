"""A snapshot of the hub for the live display, the metrics endpoint and tests."""

from __future__ import annotations

import dataclasses

from dispatch.hub.core import HubCore, HubOptions
from dispatch.hub.eta import campaign_eta_s
from dispatch.hub.sources import SourceFailure

__all__ = ["HubStatistics", "snapshot"]


@dataclasses.dataclass(frozen=True, slots=True)
class HubStatistics:
    """Counts by status cover the whole database (earlier runs included).

    ``next_dial_eta_s`` is 0 when a dial could start now, the seconds until the
    rate limit, the next due retry or (every slot taken) the expected end of the
    oldest live call allows one, or ``None`` when nothing is waiting, the slots are
    all taken before any call has ended (nothing to estimate from) or the hub is
    stopping/stopped (``waiting_on``: ``rate``, ``schedule``, ``concurrency``,
    ``phone``, ``stopped``; ``compliance`` when only records deferred by the admission
    step wait: the ETA is their earliest opening).

    ``campaign_eta_s`` is the time until every known record has been dialled and every call
    has ended (see :mod:`dispatch.hub.eta`; ``None`` when stopped or stopping).
    ``failing_sources`` lists the strategies whose ``poll()`` is failing: name,
    consecutive failures, last error and the next retry (hub clock). While the
    campaign is paused, ``waiting_on`` is ``paused`` and ``next_dial_eta_s`` ``None``.

    ``dials_last_60s``/``dials_last_1s`` and ``dials_total`` count dials whose frame
    was sent (stamped at that instant), not dials claimed and still waiting to leave;
    with ``pace_margin_s`` the two windows are that much longer.
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
    campaign_eta_s: float | None = None
    failing_sources: tuple[SourceFailure, ...] = ()
    #: the campaign's id and its state as the hub last read it (``None`` before a run)
    campaign: str | None = None
    campaign_state: str | None = None
    max_calls_per_second: int | None = None
    dials_last_1s: int = 0


def _eta(core: HubCore, now: float) -> tuple[float | None, str | None]:
    queue = core.queue
    due = queue.next_due_at()
    if not queue.ready_count and due is None and not queue.parked_count:
        return None, None
    if core.stopping:
        return None, "stopped"  # what waits is left for the next run
    if not queue.ready_count and due is None:
        return None, "phone"
    # tokens only grow while nobody dials, so the first time both the rate and the
    # schedule allow a dial is the later of the two (the window is asked about now)
    rate_at = core.pace.next_allowed_at(now)
    at, waiting_on = rate_at, "rate"
    if not queue.ready_count:
        assert due is not None
        at, waiting_on = max(due, rate_at), ("schedule" if due >= rate_at else "rate")
    if core.gate.available() <= 0:
        slot_at = _slot_free_at(core, now)
        if slot_at is None:
            return None, "concurrency"  # no call has ended yet: nothing to estimate from
        if slot_at >= at:
            return slot_at - now, "concurrency"
    return max(0.0, at - now), (waiting_on if at > now else None)


def _live_started(core: HubCore) -> list[float]:
    return [a.dialed_at for a in core.book.live_attempts.values() if a.dialed_at is not None]


def _slot_free_at(core: HubCore, now: float) -> float | None:
    """When the first live call is expected to end (``None`` before any estimate)."""
    started = _live_started(core)
    if not started or not core.slot_times.count:
        return None
    return max(now, min(started) + core.slot_times.mean_s(started, now))


def _campaign_eta(core: HubCore, now: float) -> float | None:
    if core.stopping:
        return None
    started = _live_started(core)
    slot_s = core.slot_times.mean_s(started, now)
    return campaign_eta_s(core.queue, core.window, core.gate, started, slot_s, now,
                          per_second=core.pace.per_second)


def snapshot(core: HubCore | None, *, running: bool, options: HubOptions,
             campaign: str | None = None) -> HubStatistics:
    """Build :class:`HubStatistics` (all zeros before the first run)."""
    if core is None:
        return HubStatistics(running, 0, 0, 0, 0, 0, 0, 0, 0, 0, options.max_calls_per_minute,
                             options.max_concurrent, 0, None, None, 0, campaign=campaign,
                             max_calls_per_second=options.max_calls_per_second)
    per_second = core.pace.per_second
    now = core.clock.now()
    counts = core.book.counts
    eta, waiting_on = _eta(core, now)
    wake = core.compliance.next_wake_at(now)  # deferred records' opening
    if wake is not None and (eta, waiting_on) == (None, None) and not core.stopping:
        eta, waiting_on = max(0.0, wake - now), "compliance"
    if core.watch.state == "paused" and (eta, waiting_on) != (None, None) and (
            waiting_on != "stopped"):
        eta, waiting_on = None, "paused"
    if core.notifier.full and (eta, waiting_on) != (None, None) and waiting_on != "stopped":
        eta, waiting_on = None, "callbacks"  # slow callbacks hold admission back
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
        max_calls_per_minute=options.max_calls_per_minute,
        max_concurrent=options.max_concurrent,
        live_calls=core.gate.live,
        next_dial_eta_s=eta,
        waiting_on=waiting_on,
        callbacks_pending=core.notifier.pending,
        campaign_eta_s=_campaign_eta(core, now),
        failing_sources=tuple(f for f in (h.snapshot() for h in core.health) if f is not None),
        campaign=core.watch.id,
        campaign_state=core.watch.state,
        max_calls_per_second=options.max_calls_per_second,
        dials_last_1s=(per_second.count(now) if per_second is not None
                       else len(core.window.starts_since(now - 1.0))),
    )
