"""In-memory state of records and attempts the hub is working on.

The hub is the only writer of its records, so it keeps each record's full
mutable state in memory and writes it whole (last write wins) through the
store's group-commit writer.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from dispatch.records import Record
from dispatch.store import WriteOp, insert_attempt, update_attempt, update_record
from dispatch.strategy import Strategy

__all__ = ["AttemptState", "Book", "RecordEntry"]


@dataclasses.dataclass(slots=True, eq=False)
class RecordEntry:
    """A non-terminal record and where it is."""

    record: Record
    strategy: Strategy | None
    strategy_name: str
    status: str
    attempts: int = 0
    last_reason: str | None = None
    last_call_id: str | None = None
    next_attempt_at: float | None = None
    disposition: str | None = None
    error: str | None = None
    #: dials of this run stopped by a campaign-wide error: they do not count
    uncounted: int = 0

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def counted_attempts(self) -> int:
        """Dials that count toward the retry policy (``attempts`` is every dial row)."""
        return self.attempts - self.uncounted

    def update_op(self, now: float) -> WriteOp:
        return update_record(
            id=self.record.id,
            status=self.status,
            attempts=self.attempts,
            last_reason=self.last_reason,
            last_call_id=self.last_call_id,
            next_attempt_at=self.next_attempt_at,
            disposition=self.disposition,
            error=self.error,
            now=now,
        )


@dataclasses.dataclass(slots=True, eq=False)
class AttemptState:
    """One dial of a record, from claim to end."""

    record_id: str
    attempt_no: int
    phone: str
    claimed_at: float
    call_id: str | None = None
    dialed_at: float | None = None
    dialing_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    reason: str | None = None
    raw_reason: str | None = None
    duration_s: float | None = None
    error: str | None = None
    tool_results: list[Any] | None = None
    disposition: str | None = None
    call: Any = dataclasses.field(default=None, repr=False)
    #: the hub itself hung the call up to stop (the end is ours, not the callee's)
    cut_by_stop: bool = False

    def insert_op(self, run_id: int | None) -> WriteOp:
        return insert_attempt(
            record_id=self.record_id,
            attempt_no=self.attempt_no,
            run_id=run_id,
            phone=self.phone,
            claimed_at=self.claimed_at,
        )

    def update_op(self) -> WriteOp:
        return update_attempt(
            record_id=self.record_id,
            attempt_no=self.attempt_no,
            call_id=self.call_id,
            dialed_at=self.dialed_at,
            dialing_at=self.dialing_at,
            answered_at=self.answered_at,
            ended_at=self.ended_at,
            reason=self.reason,
            raw_reason=self.raw_reason,
            duration_s=self.duration_s,
            error=self.error,
            tool_results=self.tool_results,
            disposition=self.disposition,
        )

    def note_error(self, text: str) -> None:
        self.error = text if not self.error else f"{self.error}; {text}"


class Book:
    """Known ids, the entries still in play, and counts by status."""

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.entries: dict[str, RecordEntry] = {}
        self.counts: Counter[str] = Counter()
        self.live_attempts: dict[str, AttemptState] = {}

    def add(self, entry: RecordEntry) -> None:
        self.known.add(entry.id)
        self.entries[entry.id] = entry
        self.counts[entry.status] += 1

    def count_terminal(self, status: str, n: int = 1) -> None:
        self.counts[status] += n

    def set_status(self, entry: RecordEntry, status: str) -> None:
        """Move ``entry`` to ``status``; terminal statuses drop it from :attr:`entries`."""
        self.counts[entry.status] -= 1
        self.counts[status] += 1
        entry.status = status
        if status in ("completed", "failed", "skipped"):
            self.entries.pop(entry.id, None)

    @property
    def active(self) -> int:
        """Records not yet terminal."""
        return len(self.entries)
