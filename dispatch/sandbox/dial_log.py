"""The record of every ``call.dial`` the sandbox received, in memory and as JSON lines.

Other test suites use it to prove that nothing was dialled twice. File format
(``--dial-log FILE`` / ``Sandbox(dial_log=path)``; appended, one JSON object per
line, written off the event loop in batches):

- on receipt of an accepted dial::

    {"event": "dial", "call_id": "CA…", "agent_id": "reminder", "to": "+1…",
     "from": "+1…", "metadata": {…} | null, "received_at": 1767000000.123,
     "connection": 3}

- when that call ends (``outcome`` is the ``call.ended`` reason, or
  ``app_detached`` when the client socket closed first)::

    {"event": "end", "call_id": "CA…", "to": "+1…", "outcome": "hangup",
     "answered": true, "ended_at": …, "duration_seconds": 12.5,   # simulated s
     "tool_results": [{"name": …, "arguments": {…}, "result": …}]}

- a refused dial (``call.error``) is one line: ``{"event": "dial", "call_id": null,
  …, "outcome": "rejected", "error_code": "INVALID_NUMBER"}``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["DialLog", "DialRecord"]


@dataclass(slots=True)
class DialRecord:
    """One ``call.dial`` as the sandbox saw it. ``outcome`` is None while the call is live."""

    call_id: str | None
    agent_id: str
    to: str
    from_: str | None
    metadata: dict[str, Any] | None
    received_at: float
    connection: int
    outcome: str | None = None
    error_code: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    duration_seconds: float = 0.0
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)

    def start_line(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "event": "dial",
            "call_id": self.call_id,
            "agent_id": self.agent_id,
            "to": self.to,
            "from": self.from_,
            "metadata": self.metadata,
            "received_at": self.received_at,
            "connection": self.connection,
        }
        if self.error_code is not None:
            line["outcome"] = self.outcome
            line["error_code"] = self.error_code
        return line

    def end_line(self) -> dict[str, Any]:
        return {
            "event": "end",
            "call_id": self.call_id,
            "to": self.to,
            "outcome": self.outcome,
            "answered": self.answered_at is not None,
            "ended_at": self.ended_at,
            "duration_seconds": self.duration_seconds,
            "tool_results": self.tool_results,
        }


class DialLog:
    """Keeps :class:`DialRecord` s and, given a path, appends them as JSON lines.

    ``run()`` is the file writer task; ``close()`` lets it drain and return. In
    memory it keeps the latest ``max_records`` dials (a sandbox left running for
    weeks must not grow without end; once over, the oldest half is dropped at once,
    so appending stays cheap); ``total`` counts them all, and the file has them all.
    """

    def __init__(self, path: str | Path | None = None, *, max_records: int = 100_000) -> None:
        if max_records < 2:
            raise ValueError(f"max_records must be >= 2, got {max_records}")
        self.path = Path(path) if path is not None else None
        self.max_records = max_records
        self.total = 0
        self.records: list[DialRecord] = []
        self.by_outcome: Counter[str] = Counter()
        self.live = 0
        self._send: MemoryObjectSendStream[str] | None = None
        self._receive: MemoryObjectReceiveStream[str] | None = None
        if self.path is not None:
            # lines of dials kept in ``records`` anyway (the log is the oracle of tests
            # and benchmarks); the file only lags behind them while the disk does
            self._send, self._receive = anyio.create_memory_object_stream[str](math.inf)

    def opened(self, record: DialRecord) -> None:
        """Record an accepted dial (its call is now live)."""
        self._keep(record)
        self.live += 1
        self._write(record.start_line())

    def rejected(self, record: DialRecord, code: str) -> None:
        """Record a dial answered with ``call.error {code}``."""
        record.outcome, record.error_code = "rejected", code
        self._keep(record)
        self.by_outcome["rejected"] += 1
        self._write(record.start_line())

    def ended(
        self, record: DialRecord, outcome: str, ended_at: float, duration_s: float = 0.0
    ) -> None:
        """Record the end of a live call; ``duration_s`` is simulated talk time."""
        record.outcome, record.ended_at = outcome, ended_at
        record.duration_seconds = round(duration_s, 3)
        self.live -= 1
        self.by_outcome[outcome] += 1
        self._write(record.end_line())

    def _keep(self, record: DialRecord) -> None:
        self.total += 1
        self.records.append(record)
        if len(self.records) > self.max_records:
            del self.records[:len(self.records) - self.max_records // 2]

    def _write(self, line: dict[str, Any]) -> None:
        if self._send is None:
            return
        try:
            self._send.send_nowait(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # after close(): the sandbox is shutting down

    def close(self) -> None:
        """No more lines; ``run()`` writes what is queued and returns."""
        if self._send is not None:
            self._send.close()

    async def run(self) -> None:
        """Append queued lines to the file, in batches, until :meth:`close`."""
        receive = self._receive
        if self.path is None or receive is None:
            return
        with receive:
            async with await anyio.open_file(self.path, "a", encoding="utf-8") as out:
                async for line in receive:
                    await out.write("".join([line, *_drain(receive)]))
                    await out.flush()


def _drain(receive: MemoryObjectReceiveStream[str]) -> list[str]:
    """Everything already queued (for one batched write)."""
    batch: list[str] = []
    while True:
        try:
            batch.append(receive.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            return batch
