"""Sandbox-wide state shared by every connection: settings, registries, counters."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from dispatch.sandbox.call_log import CallLog
from dispatch.sandbox.dial_log import DialLog
from dispatch.sandbox.faults import Faults
from dispatch.sandbox.refusals import PlatformGuard
from dispatch.sandbox.scenario import CallPlan, Scenario

if TYPE_CHECKING:
    from dispatch.sandbox.session import Session

__all__ = ["SandboxState", "SandboxStatistics", "phone_key", "slugify"]

_NOT_SLUG = re.compile(r"[^a-z0-9-]")
_DASHES = re.compile(r"-{2,}")


def slugify(agent_id: str) -> str:
    """The server's agent-id slug (protocol §2.3): ``"Lead Bot"`` -> ``"lead-bot"``."""
    text = agent_id.rsplit(":", 1)[-1].lower().replace(" ", "-").replace("_", "-")
    return _DASHES.sub("-", _NOT_SLUG.sub("", text)).strip("-")


def phone_key(ref: str) -> str:
    """Compare phone refs loosely: spaces, dashes and parentheses do not count."""
    return ref.translate({ord(c): None for c in " -()."})


@dataclass(frozen=True, slots=True)
class SandboxStatistics:
    """A snapshot of the sandbox (see ``Sandbox.statistics()``)."""

    connections: int
    agents: int
    phones: int
    live_calls: int
    total_dials: int
    by_outcome: dict[str, int]
    frames_received: int
    frames_sent: int
    duplicate_tool_results: int


@dataclass
class SandboxState:
    """Settings and registries; one per :class:`~dispatch.sandbox.Sandbox`."""

    scenario: Scenario
    faults: Faults
    dial_log: DialLog
    speed: float = 1.0
    seed: int = 0
    api_key: str | None = None
    org_id: str = "org_sandbox"
    compound_agent_ids: bool = False
    conflict_retry_after_s: float = 5.0
    handshake_timeout_s: float = 10.0
    #: frames one connection may have queued for its socket; a client that reads
    #: slower than that is closed (1013) instead of growing the sandbox's memory
    max_outbox_frames: int = 10_000
    ping_interval_s: float | None = None
    sessions: set[Session] = field(default_factory=set)
    agents: dict[str, Session] = field(default_factory=dict)
    phones: dict[str, Session] = field(default_factory=dict)
    dial_counts: dict[str, int] = field(default_factory=dict)
    next_connection: int = 1
    frames_received: int = 0
    frames_sent: int = 0
    duplicate_tool_results: int = 0
    waiters: list[anyio.Event] = field(default_factory=list)
    call_log: CallLog = field(default_factory=CallLog)
    #: calls outlive their socket (run in the sandbox's group) when set
    keep_calls_on_disconnect: bool = False
    call_group: TaskGroup | None = None
    #: the simulated platform's own refusals (rate guards, quiet hours, DNC, quota)
    refusals: PlatformGuard = field(default_factory=PlatformGuard)

    def notify(self) -> None:
        """Wake ``Sandbox.wait_until`` callers (a call or a connection came or went)."""
        if self.waiters:
            waiters, self.waiters = self.waiters, []
            for event in waiters:
                event.set()

    def real_s(self, simulated_s: float) -> float:
        """Real seconds for ``simulated_s`` at the current speed (0 at infinite speed)."""
        if math.isinf(simulated_s):
            return math.inf
        return 0.0 if math.isinf(self.speed) else simulated_s / self.speed

    def simulated_s(self, real_s: float) -> float:
        """Simulated seconds for ``real_s`` elapsed (0 at infinite speed: instant calls)."""
        return 0.0 if math.isinf(self.speed) else real_s * self.speed

    def wire_agent_id(self, slug: str) -> str:
        """The agent id the sandbox echoes (slug, or ``org:slug`` if compound)."""
        return f"{self.org_id}:{slug}" if self.compound_agent_ids else slug

    def plan_call(self, to: str) -> CallPlan:
        """Draw the callee of the next dial to ``to``: depends on seed, ``to`` and how many
        dials to ``to`` came before, never on timing."""
        n = self.dial_counts.get(to, 0)
        self.dial_counts[to] = n + 1
        return self.scenario.plan(to, random.Random(f"{self.seed}:{to}:{n}"))

    def statistics(self) -> SandboxStatistics:
        return SandboxStatistics(
            connections=len(self.sessions),
            agents=len(self.agents),
            phones=len(self.phones),
            live_calls=self.dial_log.live,
            total_dials=self.dial_log.total,
            by_outcome=dict(self.dial_log.by_outcome),
            frames_received=self.frames_received,
            frames_sent=self.frames_sent,
            duplicate_tool_results=self.duplicate_tool_results,
        )

    def describe(self) -> dict[str, Any]:
        """Settings for a startup log line."""
        return {"speed": self.speed, "seed": self.seed, "scenario": self.scenario.source}
