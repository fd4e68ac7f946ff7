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

__all__ = [
    "EtaEstimator",
    "next_dial_text",
    "render_panel",
    "render_summary",
    "stats_fields",
]

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
    """Estimates the time to completion from :func:`stats_fields` snapshots.

    A time the hub computes itself (an ``eta_s`` field) wins. Otherwise, while the
    calls-per-minute limit holds dials back, the estimate is the time until the last
    waiting record may be dialled. Under an exact sliding window every dial frees its
    token 60 s after it started, so the estimator remembers when dials started (from
    ``dials_total`` between snapshots) and replays that pattern forward: the estimate
    counts down one second per second even when dials leave in bursts (a completion
    rate measured across bursts makes the estimate climb between them). Else it is
    the records left divided by the rate they finished at over the last ``window_s``.
    """

    def __init__(self, window_s: float = 60.0) -> None:
        self._window_s = window_s
        self._done: deque[tuple[float, int]] = deque()
        self._dials: deque[tuple[float, int]] = deque()  # (time, dials started then)
        self._dials_total: int | None = None

    def update(self, fields: dict[str, Any], now: float | None = None) -> float | None:
        """Feed one snapshot; return the seconds left, or ``None`` when unknown."""
        now = time.monotonic() if now is None else now
        self._observe_dials(fields, now)
        throughput_s = self._throughput_s(done_count(fields), remaining_count(fields), now)
        if fields.get("eta_s") is not None:
            return max(0.0, float(fields["eta_s"]))
        if remaining_count(fields) == 0:
            return 0.0 if done_count(fields) else None  # nothing read yet: unknown
        rate_s = self._rate_bound_s(fields, now)
        if rate_s is None:
            return throughput_s
        if fields.get("waiting_on") == "concurrency" and throughput_s is not None:
            return max(rate_s, throughput_s)  # both limits bind: the slower one wins
        return rate_s

    def _observe_dials(self, fields: dict[str, Any], now: float) -> None:
        total = fields.get("dials_total")
        if total is None:
            return
        if self._dials_total is not None and int(total) > self._dials_total:
            self._dials.append((now, int(total) - self._dials_total))
        self._dials_total = int(total)
        while self._dials and now - self._dials[0][0] >= 60.0:
            self._dials.popleft()

    def _rate_bound_s(self, fields: dict[str, Any], now: float) -> float | None:
        """Seconds until the limit lets the last waiting record go (``None``: no wait)."""
        cap = int(fields.get("max_calls_per_minute") or 0)
        waiting = int(fields.get("pending") or 0) + int(fields.get("scheduled") or 0)
        free = max(0, cap - int(fields.get("dials_last_60s") or 0))
        if not cap or waiting <= free:
            return None
        # when each token is next free: now for the free ones, 60 s after each dial seen,
        # and the hub's next-dial time for dials made before we started watching
        seen = [t + 60.0 for t, n in self._dials for _ in range(n) if t + 60.0 > now]
        first = now + float(fields.get("next_dial_eta_s") or 0.0)
        tokens = sorted([now] * free + [first] * max(0, cap - free - len(seen)) + seen)[:cap]
        last = waiting - 1  # the last waiting record's place in the line
        return max(0.0, tokens[last % cap] + 60.0 * (last // cap) - now)

    def _throughput_s(self, done: int, remaining: int, now: float) -> float | None:
        self._done.append((now, done))
        while self._done and now - self._done[0][0] > self._window_s:
            self._done.popleft()
        first_t, first_done = self._done[0]
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


def render_panel(
    fields: dict[str, Any], eta_s: float | None, *, title: str, footer: str | None = None
) -> Group:
    """The live panel for a terminal; ``footer`` is a status line (draining...)."""
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
        next_dial_text(fields),
        ("   ETA ", "dim"),
        _fmt_duration(eta_s),
    )
    parts: list[Text | Table] = [Text(title, style="bold"), counts, line]
    if footer:
        parts.append(Text(footer, style="bold yellow"))
    return Group(*parts)


_WAITING_TEXT = {
    "concurrency": "when a call ends",
    "phone": "when that number's call ends",
    "stopped": "none (stopping)",
}


def next_dial_text(fields: dict[str, Any]) -> str:
    """``now``, ``in 12s`` (rate limit or a due retry), or what the next dial waits for."""
    value = fields.get("next_dial_eta_s")
    if value is None:
        return _WAITING_TEXT.get(str(fields.get("waiting_on")), "—")
    seconds = float(value)
    if seconds <= 0.05:
        return "now"
    if seconds < 10:
        return f"in {seconds:.1f}s"
    if seconds < 60:
        return f"in {round(seconds)}s"
    return f"in {_fmt_duration(seconds)}"


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


def _stop_key(signal_name: str) -> tuple[str, str]:
    """How the operator names the signal, and how to send it again."""
    if signal_name == "SIGINT":
        return "Ctrl-C", "press Ctrl-C again"
    return signal_name, f"send {signal_name} again"


def drain_message(signal_name: str, live_calls: int, drain_timeout_s: float | None) -> str:
    """What the first Ctrl-C (or SIGTERM) says at once."""
    key, again = _stop_key(signal_name)
    limit = ""
    if drain_timeout_s:
        limit = f" (hung up after {_fmt_limit(drain_timeout_s)})"
    return (f"{key}: draining. No new dials; {live_calls} live call(s) left to finish by "
            f"themselves{limit}. To hang up on them now, {again}.")


def drain_footer(signal_name: str, fields: dict[str, Any]) -> str:
    """The live panel's status line while draining."""
    _key, again = _stop_key(signal_name)
    live = int(fields.get("live_calls") or 0)
    return f"draining: {live} live call(s) left; {again} to hang up on them"


def _fmt_limit(seconds: float) -> str:
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
