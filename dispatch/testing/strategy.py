"""MemoryStrategy: records fed from code."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dispatch.records import Record
from dispatch.strategy import Outcome, Strategy

__all__ = ["MemoryStrategy"]


class MemoryStrategy(Strategy):
    """Records fed from code: :meth:`add` them, the hub polls them.

    Every poll returns all records added so far (like a CSV re-read), so dedup by
    id is exercised. ``outcomes`` collects what :meth:`record_outcome` received.
    """

    def __init__(self, records: Iterable[Record | dict[str, Any]] = (), *, name: str = "memory"):
        self.name = name
        self._items: list[Record | dict[str, Any]] = list(records)
        self.outcomes: list[Outcome] = []
        self.polls = 0
        self.poll_error: BaseException | None = None

    def add(self, *records: Record | dict[str, Any]) -> None:
        self._items.extend(records)

    async def poll(self) -> Sequence[Any]:
        self.polls += 1
        if self.poll_error is not None:
            raise self.poll_error
        return list(self._items)

    async def record_outcome(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)

    def outcome_of(self, record_id: str) -> Outcome | None:
        """The last outcome reported for ``record_id``."""
        for outcome in reversed(self.outcomes):
            if outcome.record.id == record_id:
                return outcome
        return None
