"""What ``hub.preview(at=...)`` and ``dispatch check`` print: decisions tallied by
verdict, deferrals by zone and wake-up time, skips by reason, with a few examples.

Pure and incremental (feed it one decision at a time: a million records do not
need a million decisions in memory).
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass, field

from dispatch.compliance.decision import Decision, Verdict

__all__ = ["PreviewSummary"]


@dataclass
class PreviewSummary:
    """Counts and examples; ``add`` each record's decision, then ``lines()``."""

    examples_per_group: int = 3
    dial_now: int = 0
    deferred: collections.Counter[str] = field(default_factory=collections.Counter)
    skipped: collections.Counter[str] = field(default_factory=collections.Counter)
    earliest_wake_s: dict[str, float] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, record_id: str, decision: Decision, zone: str = "") -> None:
        """Count ``decision`` for ``record_id``; ``zone`` groups deferrals (the
        callee's zone names, e.g. ``ctx.zones.names``)."""
        if decision.verdict is Verdict.ALLOW:
            self.dial_now += 1
            return
        if decision.verdict is Verdict.DEFER:
            group = f"deferred {decision.reason} {zone}".rstrip()
            self.deferred[group] += 1
            if decision.until_s is not None:
                self.earliest_wake_s[group] = min(self.earliest_wake_s.get(group, decision.until_s),
                                                  decision.until_s)
        else:
            group = f"skipped {decision.reason}"
            self.skipped[group] += 1
        shown = self.examples.setdefault(group, [])
        if len(shown) < self.examples_per_group:
            shown.append(f"{record_id}: {decision.detail}")

    def lines(self) -> list[str]:
        """Human-readable report, most frequent groups first."""
        out = [f"dial now: {self.dial_now}"]
        for group, count in self.deferred.most_common():
            wake = dt.datetime.fromtimestamp(self.earliest_wake_s[group], dt.UTC) \
                if group in self.earliest_wake_s else None
            out.append(f"{group}: {count}" + (f" (first wakes {wake:%Y-%m-%dT%H:%MZ})"
                                              if wake is not None else ""))
            out += [f"  e.g. {example}" for example in self.examples[group]]
        for group, count in self.skipped.most_common():
            out.append(f"{group}: {count}")
            out += [f"  e.g. {example}" for example in self.examples[group]]
        return out
