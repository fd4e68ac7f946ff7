"""What the operator sees while a campaign runs.

On a terminal: a rich live panel (counts by status, live calls, dials in the last
minute against the limit, ETA). Elsewhere: one structured log line every
``interval_s`` seconds. Both read the hub's ``statistics()`` snapshot only.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

__all__ = [
    "campaign_eta",
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


def campaign_eta(fields: dict[str, Any]) -> float | None:
    """The hub's own ETA (``campaign_eta_s``: a model of its pacing, see
    :mod:`dispatch.hub.eta`), or ``None`` when unknown (before the first poll, draining)."""
    if remaining_count(fields) == 0:
        return 0.0 if done_count(fields) else None
    value = fields.get("campaign_eta_s")
    return None if value is None else max(0.0, float(value))


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
    for failure in fields.get("failing_sources") or ():
        parts.append(Text(failing_source_text(failure), style="bold red"))
    if footer:
        parts.append(Text(footer, style="bold yellow"))
    return Group(*parts)


def failing_source_text(failure: Any) -> str:
    """One line for a strategy whose ``poll()`` keeps failing (a dict or a SourceFailure)."""
    get = failure.get if isinstance(failure, dict) else lambda k: getattr(failure, k)
    return (f"source {get('strategy')!r} failing ({get('consecutive_failures')} in a row): "
            f"{get('last_error')}")


_WAITING_TEXT = {
    "concurrency": "when a call ends",
    "phone": "when that number's call ends",
    "stopped": "none (stopping)",
    "paused": "paused (dispatch campaign resume NAME)",
    "callbacks": "when the callbacks catch up",
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
