"""The sandbox's record of calls, served over REST (protocol Appendix C, §6.3).

Every accepted dial gets a :class:`CallEntry`: its lifecycle state and its log of
events ``{seq, ts, call, agent, type, ephemeral, data}`` (``seq`` counts from 1 per
call). The end of a call appends a ``call.summary`` entry that seals the log. The
record lives in the sandbox, not in a connection, so it outlives the socket that
placed the call.

Both the number of calls kept and the entries per call are bounded: the oldest
ended calls are forgotten first (a live call is never forgotten), and a call's log
keeps its first ``max_events_per_call`` entries plus the summary.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from dispatch.sandbox.dial_log import DialRecord

__all__ = ["ATTEMPT_KEY", "CallEntry", "CallLog"]

#: the metadata key under which ``dispatch.sdk`` puts each dial's attempt id
ATTEMPT_KEY = "dispatch_attempt"


@dataclass(slots=True, eq=False)
class CallEntry:
    """One call as the REST endpoint reports it."""

    record: DialRecord
    agent: str
    events: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0
    state: str = "ringing"  # ringing | in_progress | ended
    detached: bool = False  # the socket that placed it has closed
    sealed: bool = False

    @property
    def call_id(self) -> str:
        assert self.record.call_id is not None
        return self.record.call_id

    @property
    def live(self) -> bool:
        return self.state != "ended"

    def state_view(self) -> dict[str, Any]:
        """The ``GET /v1/calls/{id}/state`` body (see the REST module)."""
        rec = self.record
        metadata = rec.metadata or {}
        return {
            "call_id": self.call_id,
            "state": self.state,
            "live": self.live,
            "last_seq": self.seq,
            "agent": self.agent,
            "direction": "outbound",
            "to": rec.to,
            "from": rec.from_,
            "answered": rec.answered_at is not None,
            "end_reason": rec.outcome,
            "dialed_at": rec.received_at,
            "answered_at": rec.answered_at,
            "ended_at": rec.ended_at,
            "duration_seconds": rec.duration_seconds,
            "app_connected": not self.detached,
            "metadata": metadata,
            "attempt_id": metadata.get(ATTEMPT_KEY),
        }


class CallLog:
    """Calls by id (bounded), with an index by agent slug."""

    def __init__(self, max_calls: int = 100_000, max_events_per_call: int = 1_000) -> None:
        if max_calls < 1 or max_events_per_call < 1:
            raise ValueError("CallLog bounds must be >= 1")
        self.max_calls = max_calls
        self.max_events_per_call = max_events_per_call
        self._calls: OrderedDict[str, CallEntry] = OrderedDict()
        self._by_agent: dict[str, OrderedDict[str, CallEntry]] = {}

    def __len__(self) -> int:
        return len(self._calls)

    def get(self, call_id: str) -> CallEntry | None:
        return self._calls.get(call_id)

    def of_agent(self, slug: str) -> list[CallEntry]:
        """The agent's calls, oldest first."""
        return list(self._by_agent.get(slug, {}).values())

    def open(self, record: DialRecord, agent: str) -> CallEntry:
        """Register a placed call (``record.call_id`` set); evicts the oldest ended calls."""
        entry = CallEntry(record, agent)
        self._calls[entry.call_id] = entry
        self._by_agent.setdefault(agent, OrderedDict())[entry.call_id] = entry
        self._evict()
        return entry

    def append(self, entry: CallEntry, frame: dict[str, Any], *, ephemeral: bool = False) -> None:
        """Log a frame the call emitted (``event`` becomes the entry's ``type``)."""
        if entry.sealed:
            return
        event = str(frame.get("event"))
        if event == "call.started":
            entry.state = "in_progress"
        elif event == "call.ended":
            entry.state = "ended"
        data = {k: v for k, v in frame.items() if k not in ("event", "agent_id", "call_id")}
        if len(entry.events) < self.max_events_per_call or event == "call.ended":
            self._add(entry, event, data, ephemeral)

    def seal(self, entry: CallEntry) -> None:
        """The call ended: mark it so and append the ``call.summary`` entry."""
        entry.state = "ended"
        if not entry.sealed:
            self._add(entry, "call.summary", entry.state_view(), False)
            entry.sealed = True

    def _add(self, entry: CallEntry, kind: str, data: dict[str, Any], ephemeral: bool) -> None:
        entry.seq += 1
        entry.events.append({
            "seq": entry.seq, "ts": time.time(), "call": entry.call_id, "agent": entry.agent,
            "type": kind, "ephemeral": ephemeral, "data": data,
        })

    def _evict(self) -> None:
        if len(self._calls) <= self.max_calls:
            return
        for call_id, entry in list(self._calls.items()):
            if len(self._calls) <= self.max_calls:
                return
            if not entry.live:
                del self._calls[call_id]
                agent_calls = self._by_agent.get(entry.agent)
                if agent_calls is not None:
                    agent_calls.pop(call_id, None)
                    if not agent_calls:
                        del self._by_agent[entry.agent]
