"""Checking a campaign's pace from a far-end log: the most starts in any window."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["worst_window"]


def worst_window(starts: Iterable[float], window_s: float = 60.0) -> int:
    """The most ``starts`` in any half-open window ``[t, t + window_s)``.

    Feed it the dial times the voice server logged (the sandbox's dial log, a carrier
    CDR) to check a calls-per-minute cap from the far end: ``worst_window(times) <=
    max_calls_per_minute``. Linear after sorting.
    """
    ordered = sorted(starts)
    best = lo = 0
    for hi, t in enumerate(ordered):
        while not t < ordered[lo] + window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
