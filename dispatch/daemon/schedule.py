"""Schedule windows: when a campaign may dial (APScheduler cron triggers).

A window runs from each fire time of ``start`` to the next fire time of ``end``.
At an instant ``t`` a campaign is inside a window when, looking strictly after
``t``, that window's next ``end`` comes before its next ``start``; the next edge
is the earlier of the two. No window at all means always open. The daemon sleeps
until the next edge (no polling).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from apscheduler.triggers.cron import CronTrigger

from dispatch.config.model import ScheduleWindow

__all__ = ["WindowState", "window_state"]

_AFTER = dt.timedelta(microseconds=1)


class WindowState:
    """Whether a campaign is inside one of its windows at ``at``, and the next edge."""

    __slots__ = ("at", "next_edge", "open")

    def __init__(self, open_: bool, next_edge: dt.datetime | None, at: dt.datetime) -> None:
        self.open = open_
        self.next_edge = next_edge
        self.at = at

    def seconds_to_edge(self) -> float | None:
        if self.next_edge is None:
            return None
        return max(0.0, (self.next_edge - self.at).total_seconds())

    def __repr__(self) -> str:
        return f"WindowState(open={self.open}, next_edge={self.next_edge})"


def _next(expr: str, zone: str, after: dt.datetime) -> dt.datetime | None:
    trigger = CronTrigger.from_crontab(expr, timezone=zone)
    fire: dt.datetime | None = trigger.get_next_fire_time(None, after + _AFTER)
    return fire


def window_state(windows: Sequence[ScheduleWindow], at: dt.datetime) -> WindowState:
    """The campaign's state at ``at`` (an aware datetime)."""
    if not windows:
        return WindowState(True, None, at)
    inside = False
    edges: list[dt.datetime] = []
    for window in windows:
        start = _next(window.start, window.timezone, at)
        end = _next(window.end, window.timezone, at)
        if end is not None and (start is None or end < start):
            inside = True
        edges += [t for t in (start, end) if t is not None]
    return WindowState(inside, min(edges) if edges else None, at)
