"""What the operator sees while a campaign runs.

On a terminal: a rich live panel (counts by status, live calls, dials in the last
minute against the limit, ETA). Elsewhere: one structured log line every
``interval_s`` seconds. Both read the hub's ``statistics()`` snapshot only.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

__all__ = ["EtaEstimator", "render_panel", "render_summary", "stats_fields"]

_STATUS_ORDER = ("pending", "scheduled", "dialing", "active", "completed", "failed", "skipped")
_STATUS_STYLE = {
    "pending": "white",
    "scheduled": "yellow",
    "dialing": "cyan",
    "active": "bold cyan",
    "completed": "green",
    "failed": "red",
    "skipped": "magenta",
}


def stats_fields(stats: Any) -> dict[str, Any]:
    """The snapshot as a plain dict (works for dataclasses and mappings)."""
    if isinstance(stats, dict):
        return dict(stats)
    if hasattr(stats, "as_dict"):
        return dict(stats.as_dict())
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return dataclasses.asdict(stats)
    return {k: v for k, v in vars(stats).items() if not k.startswith("_")}


class EtaEstimator:
    """Estimates time to completion from the recent rate of records finishing."""

    def __init__(self, window_s: float = 60.0) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, done: int, remaining: int, now: float | None = None) -> float | None:
        """Feed the number of terminal records; return seconds left or ``None``."""
        now = time.monotonic() if now is None else now
        self._samples.append((now, done))
        while self._samples and now - self._samples[0][0] > self._window_s:
            self._samples.popleft()
        if remaining == 0:
            return 0.0
        first_t, first_done = self._samples[0]
        elapsed = now - first_t
        if elapsed < 1.0 or done <= first_done:
            return None
        return remaining / ((done - first_done) / elapsed)


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    minutes, sec = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


def remaining_count(fields: dict[str, Any]) -> int:
    return sum(int(fields.get(k) or 0) for k in ("pending", "scheduled", "dialing", "active"))


def done_count(fields: dict[str, Any]) -> int:
    return sum(int(fields.get(k) or 0) for k in ("completed", "failed", "skipped"))


def render_panel(fields: dict[str, Any], eta_s: float | None, *, title: str) -> Group:
    """The live panel for a terminal."""
    counts = Table.grid(padding=(0, 2))
    for _ in _STATUS_ORDER:
        counts.add_column(justify="right")
    counts.add_row(*(Text(s, style="dim") for s in _STATUS_ORDER))
    counts.add_row(
        *(Text(str(fields.get(s, 0) or 0), style=_STATUS_STYLE[s]) for s in _STATUS_ORDER)
    )
    rate_cap = fields.get("max_calls_per_minute")
    conc_cap = fields.get("max_concurrent")
    live = int(fields.get("active") or 0) + int(fields.get("dialing") or 0)
    line = Text.assemble(
        ("live calls ", "dim"),
        f"{live}{'/' + str(conc_cap) if conc_cap else ''}",
        ("   dials last 60s ", "dim"),
        f"{fields.get('dials_last_60s', 0)}{'/' + str(rate_cap) if rate_cap else ''}",
        ("   next dial ", "dim"),
        _fmt_next(fields.get("next_dial_eta_s")),
        ("   ETA ", "dim"),
        _fmt_duration(eta_s),
    )
    return Group(Text(title, style="bold"), counts, line)


def _fmt_next(value: Any) -> str:
    if value is None:
        return "—"
    return "now" if float(value) <= 0.05 else f"{float(value):.1f}s"


def render_summary(counts: dict[str, int], reasons: dict[str, int], console: Console) -> None:
    """The end-of-run summary table."""
    table = Table(title="Campaign summary", show_lines=False)
    table.add_column("status")
    table.add_column("records", justify="right")
    for status in ("completed", "failed", "skipped", "scheduled", "pending", "dialing", "in_call"):
        if counts.get(status):
            table.add_row(Text(status, style=_STATUS_STYLE.get(status, "")), str(counts[status]))
    table.add_row(Text("total", style="bold"), str(sum(counts.values())))
    console.print(table)
    if reasons:
        by_reason = Table(title="Last reason")
        by_reason.add_column("reason")
        by_reason.add_column("records", justify="right")
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            by_reason.add_row(reason, str(n))
        console.print(by_reason)
