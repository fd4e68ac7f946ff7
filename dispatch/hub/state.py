"""In-memory state of records and attempts the hub is working on.

The hub is the only writer of its records, so it keeps each record's full
mutable state in memory and writes it whole (last write wins) through the
store's group-commit writer.

A record is ``(source, id)``: the key of the strategy that produced it and its
own id. In memory it is addressed by :func:`record_key` (one string, so the
queue and the maps stay plain); only records still in play are held, plus a
bounded cache of keys known to be stored (:class:`KnownKeys`): whether any
other id exists is asked of the database (:meth:`Store.existing_keys`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from dispatch.records import Record
from dispatch.store import WriteOp, insert_attempt, update_attempt, update_record
from dispatch.strategy import Strategy

__all__ = ["AttemptState", "Book", "KnownKeys", "RecordEntry", "SourceMap", "record_key"]

#: how many stored keys a hub remembers (beyond that it asks the database)
KNOWN_CACHE_SIZE = 100_000


def record_key(source: str, record_id: str) -> str:
    """The hub's in-memory address of record ``(source, record_id)``.

    Injective: strategy keys contain no control character (``Strategy.key``), so
    the first ``\x1f`` always ends the source.
    """
    return f"{source}\x1f{record_id}"


@dataclasses.dataclass(slots=True, eq=False)
class RecordEntry:
    """A non-terminal record and where it is."""

    record: Record
    strategy: Strategy | None
    strategy_name: str
    #: the stored source (``records.source``): the strategy's key, or its name for
    #: rows stored before source keys existed
    source: str
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
    def key(self) -> str:
        """The in-memory address (:func:`record_key`) of this record."""
        return record_key(self.source, self.record.id)

    @property
    def counted_attempts(self) -> int:
        """Dials that count toward the retry policy (``attempts`` is every dial row)."""
        return self.attempts - self.uncounted

    def update_op(self, now: float) -> WriteOp:
        return update_record(
            source=self.source,
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
    #: the record's stored source (with ``record_id``, its identity)
    source: str
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
            source=self.source,
            record_id=self.record_id,
            attempt_no=self.attempt_no,
            run_id=run_id,
            phone=self.phone,
            claimed_at=self.claimed_at,
        )

    def update_op(self) -> WriteOp:
        return update_attempt(
            source=self.source,
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


class KnownKeys:
    """Keys known to be stored, the most recently used ``capacity`` of them.

    A cache in front of the database (never the truth): a key missing here may
    still be stored, and is then looked up.
    """

    def __init__(self, capacity: int | None = None) -> None:
        self.capacity = KNOWN_CACHE_SIZE if capacity is None else capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)  # type: ignore[arg-type]
            return True
        return False

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)


class SourceMap:
    """Which strategy a stored ``source`` belongs to, and which stored sources a
    strategy's records may be under.

    A record is stored under its strategy's :attr:`~Strategy.key`. Rows stored before
    source keys existed carry the strategy's *name* (``csv``): :meth:`adopt_legacy`
    makes such a name an extra source of every strategy with that name, so those rows
    stay known to each of them (nobody is dialled again after the upgrade); their
    outcomes go to the first such strategy (the old database cannot tell which).
    """

    def __init__(self, strategies: Sequence[Strategy] = ()) -> None:
        self.strategies = list(strategies)
        self._by_source: dict[str, Strategy] = {s.key: s for s in self.strategies}
        self._extra: dict[str, tuple[str, ...]] = {}

    def legacy_names(self) -> list[str]:
        """Strategy names that are no strategy's key: they may hold pre-key rows."""
        names = dict.fromkeys(s.name for s in self.strategies)
        return [name for name in names if name not in self._by_source]

    def adopt_legacy(self, name: str) -> None:
        owners = [s for s in self.strategies if s.name == name]
        if not owners:
            return
        self._by_source.setdefault(name, owners[0])
        for strategy in owners:
            self._extra[strategy.key] = (*self._extra.get(strategy.key, ()), name)

    def strategy_of(self, source: str) -> Strategy | None:
        return self._by_source.get(source)

    def sources_of(self, strategy: Strategy) -> tuple[str, ...]:
        """Where ``strategy``'s records may be stored: its key first."""
        return (strategy.key, *self._extra.get(strategy.key, ()))


class Book:
    """The entries still in play (by :func:`record_key`), a bounded cache of stored
    keys, the source map, and counts by status."""

    def __init__(self) -> None:
        self.known = KnownKeys()
        self.sources = SourceMap()
        self.entries: dict[str, RecordEntry] = {}
        self.counts: Counter[str] = Counter()
        self.live_attempts: dict[str, AttemptState] = {}

    def add(self, entry: RecordEntry) -> None:
        self.known.add(entry.key)
        self.entries[entry.key] = entry
        self.counts[entry.status] += 1

    def count_terminal(self, status: str, n: int = 1) -> None:
        self.counts[status] += n

    def set_status(self, entry: RecordEntry, status: str) -> None:
        """Move ``entry`` to ``status``; terminal statuses drop it from :attr:`entries`."""
        self.counts[entry.status] -= 1
        self.counts[status] += 1
        entry.status = status
        if status in ("completed", "failed", "skipped"):
            self.entries.pop(entry.key, None)

    @property
    def active(self) -> int:
        """Records not yet terminal."""
        return len(self.entries)
