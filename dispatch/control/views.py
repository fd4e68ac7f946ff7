"""What ``GET /v1/campaigns[/{id}]`` returns: the campaign row, its counts by status and,
when this process runs it, the hub's live statistics.

While a hub of this process runs the campaign, the counts are the hub's own (kept in
memory, the same numbers it commits), so a request costs no scan of ``records``
however large the campaign; otherwise they are one grouped count of the database.
``counts_from`` says which.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dispatch.control.target import LIMIT_FIELDS, CampaignHandle, ControlTarget
from dispatch.hub import HubStatistics
from dispatch.store import campaigns

__all__ = ["campaign_view", "handles_by_id", "list_views", "live_counts", "running_handle"]


def handles_by_id(target: ControlTarget) -> dict[str, CampaignHandle]:
    return {handle.campaign_id: handle for handle in target.campaigns()}


def _live(stats: HubStatistics) -> dict[str, Any]:
    return {
        "running": stats.running,
        "state_seen": stats.campaign_state,
        "live_calls": stats.live_calls,
        "dials_last_60s": stats.dials_last_60s,
        "dials_last_1s": stats.dials_last_1s,
        "dials_this_run": stats.dials_total,
        "queued": {"pending": stats.pending, "scheduled": stats.scheduled,
                   "dialing": stats.dialing, "in_call": stats.active},
        "next_dial_in_s": stats.next_dial_eta_s,
        "waiting_on": stats.waiting_on,
        "campaign_eta_s": stats.campaign_eta_s,
        "callbacks_pending": stats.callbacks_pending,
        "applied_limits": {"max_per_minute": stats.max_calls_per_minute,
                           "max_per_second": stats.max_calls_per_second,
                           "max_concurrent": stats.max_concurrent},
        "failing_sources": [dataclasses.asdict(f) for f in stats.failing_sources],
    }


def live_counts(stats: HubStatistics) -> dict[str, int]:
    """The hub's counts by status (statuses with no record left out, as in the database)."""
    counts = {"pending": stats.pending, "scheduled": stats.scheduled, "dialing": stats.dialing,
              "in_call": stats.active, "completed": stats.completed, "failed": stats.failed,
              "skipped": stats.skipped}
    return {status: n for status, n in counts.items() if n}


def running_handle(handles: dict[str, CampaignHandle], campaign_id: str) -> CampaignHandle | None:
    handle = handles.get(campaign_id)
    return handle if handle is not None and handle.running else None


def campaign_view(row: campaigns.Campaign, counts: dict[str, int] | None,
                  handle: CampaignHandle | None) -> dict[str, Any]:
    """One campaign as JSON: ``records`` are its counts by status (the running hub's,
    else ``counts`` from the database); ``live`` is ``None`` when no hub of this
    process runs the campaign."""
    stats = handle.statistics() if handle is not None else None
    from_hub = stats is not None and stats.running
    if from_hub:
        assert stats is not None
        counts = live_counts(stats)
    counts = counts or {}
    view: dict[str, Any] = {
        "id": row.id,
        "state": row.state,
        "state_changed_by": row.state_changed_by,
        "state_changed_at": row.state_changed_at,
        "acked_state": row.acked_state,
        "acked_at": row.acked_at,
        "limits": {name: getattr(row, name) for name in LIMIT_FIELDS},
        "records": dict(sorted(counts.items())),
        "counts_from": "hub" if from_hub else "database",
        "total_records": sum(counts.values()),
        "deferred": counts.get("scheduled", 0),
        "live": None,
        "next_dial_in_s": None,
        "waiting_on": "paused" if row.state == "paused" else None,
    }
    if stats is not None:
        live = _live(stats)
        view["live"] = live
        view["next_dial_in_s"] = live["next_dial_in_s"]
        view["waiting_on"] = live["waiting_on"] or (
            "paused" if row.state == "paused" else None)
    elif row.state in ("running", "paused"):
        view["waiting_on"] = "no dispatcher in this process"
    return view


async def list_views(target: ControlTarget) -> list[dict[str, Any]]:
    """Every campaign of the database, oldest first."""
    engine = target.store.engine
    rows = await campaigns.list_all(engine)
    handles = handles_by_id(target)
    counts: dict[str, dict[str, int]] = {}
    if any(running_handle(handles, row.id) is None for row in rows):
        counts = await campaigns.record_counts(engine)
    return [campaign_view(row, counts.get(row.id, {}), handles.get(row.id)) for row in rows]
