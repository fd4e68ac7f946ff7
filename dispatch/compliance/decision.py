"""The admission step: an ordered list of small policies asked before every dial.

Each :class:`Policy` answers a :class:`Decision`: *allow*, *defer until T* or *skip*.
:class:`Admission` asks them in order and returns the first answer that is not
*allow* (so cheap, decisive policies such as do-not-call go first).

What the hub does with a decision:

- ``ALLOW``: dial now.
- ``DEFER``: leave the record pending with ``not_before = until_s`` and the reason
  stored beside it. **A deferral is not an attempt**: it is not counted against the
  record's retries, nor by the per-phone cap. The hub sleeps until the earliest
  ``until_s`` of its deferred records (no busy wait).
- ``SKIP``: the record ends ``skipped`` with ``reason``; ``detail`` is the
  human-readable why (which list, which field) for ``status`` and ``report``.

Time is epoch seconds (``float``), like :class:`dispatch.clock.Clock` and the store:
the hub passes ``clock.now()`` straight in and stores ``until_s`` as it stores every
other time, with no naive/aware datetime mix-ups. Zone arithmetic happens inside.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dispatch.compliance.context import DialContext

__all__ = ["Admission", "Decision", "Policy", "Verdict"]


class Verdict(enum.StrEnum):
    """What a policy says about dialling a record now."""

    ALLOW = "allow"
    DEFER = "defer"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Decision:
    """One policy's answer. Build it with :meth:`allow`, :meth:`defer` or :meth:`skip`.

    ``until_s`` (epoch seconds) is set only for ``DEFER``; ``reason`` for ``DEFER``
    and ``SKIP``; ``policy`` names the policy that decided (empty for the final
    allow of an :class:`Admission`).
    """

    verdict: Verdict
    policy: str = ""
    reason: str | None = None
    until_s: float | None = None
    detail: str = ""

    @classmethod
    def allow(cls, policy: str = "") -> Decision:
        return cls(Verdict.ALLOW, policy)

    @classmethod
    def defer(cls, policy: str, until_s: float, reason: str, detail: str) -> Decision:
        return cls(Verdict.DEFER, policy, reason, until_s, detail)

    @classmethod
    def skip(cls, policy: str, reason: str, detail: str) -> Decision:
        return cls(Verdict.SKIP, policy, reason, None, detail)

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW

    @property
    def until(self) -> dt.datetime | None:
        """``until_s`` as an aware UTC datetime (for display)."""
        return None if self.until_s is None else dt.datetime.fromtimestamp(self.until_s, dt.UTC)

    def __str__(self) -> str:
        if self.verdict is Verdict.ALLOW:
            return "allow"
        when = f" until {self.until:%Y-%m-%dT%H:%MZ}" if self.until is not None else ""
        return f"{self.verdict}{when} ({self.reason}, {self.policy}): {self.detail}"


class Policy(Protocol):
    """One admission rule. ``decide`` is pure: it reads only ``ctx`` (and data the
    policy was built with) and never blocks; it must not raise for bad record data
    (that is a ``SKIP`` with reason ``invalid_record`` naming the field)."""

    name: str

    def decide(self, ctx: DialContext) -> Decision: ...


class Admission:
    """Policies asked in order; the first non-allow decision wins.

    Built once per campaign; :meth:`decide` is called for every record about to be
    dialled (and by ``preview`` for every pending record, with a chosen ``now``).
    """

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies: Sequence[Policy] = tuple(policies)

    def decide(self, ctx: DialContext) -> Decision:
        for policy in self.policies:
            decision = policy.decide(ctx)
            if not decision.allowed:
                return decision
        return Decision.allow()
