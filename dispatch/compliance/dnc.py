"""Do-not-call: suppression lists and the policy that checks them at dial time.

Two interfaces:

- :class:`SuppressionList`: read-only, ``name`` + ``contains(phone)``. A file or an
  SQL query loaded at campaign start gives a :class:`StaticSuppressionList`.
- :class:`InternalSuppressionList`: the store-backed internal list (``dispatch dnc
  add|remove|list|import``; opt-outs said during a call go here). Every entry keeps
  its reason, source and time (the audit trail). :class:`MemorySuppressionList` is
  the in-memory implementation for tests. The store's implementation must answer
  ``contains`` without blocking the event loop (e.g. from an in-memory set it keeps
  in step with its table, as the store is the only writer of its database).

Phones are E.164 strings; callers normalise first (:func:`dispatch.phone.normalize_phone`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from dispatch.compliance import reasons
from dispatch.compliance.context import DialContext
from dispatch.compliance.decision import Decision

__all__ = ["DncPolicy", "InternalSuppressionList", "MemorySuppressionList",
           "StaticSuppressionList", "Suppression", "SuppressionList"]


@dataclass(frozen=True, slots=True)
class Suppression:
    """One entry of the internal list: who, why, from where, when (epoch seconds)."""

    phone: str
    reason: str
    source: str
    added_s: float


class SuppressionList(Protocol):
    """A named set of numbers never to dial."""

    @property
    def name(self) -> str: ...

    def contains(self, phone: str) -> bool: ...


class InternalSuppressionList(SuppressionList, Protocol):
    """The internal, editable list (the store implements it next)."""

    def get(self, phone: str) -> Suppression | None:
        """The entry for ``phone``, or None."""
        ...

    def add(self, phone: str, reason: str, source: str, *, at_s: float | None = None) -> bool:
        """Suppress ``phone``; False (and the first entry kept) when already there."""
        ...

    def remove(self, phone: str) -> bool:
        """Lift the suppression; False when ``phone`` was not listed."""
        ...

    def entries(self) -> Iterator[Suppression]:
        """Every entry, oldest first."""
        ...


class StaticSuppressionList:
    """A frozen set of numbers loaded from a file or a query."""

    def __init__(self, name: str, phones: Iterable[str]) -> None:
        self._name = name
        self._phones = frozenset(phones)

    @property
    def name(self) -> str:
        return self._name

    def contains(self, phone: str) -> bool:
        return phone in self._phones

    def __len__(self) -> int:
        return len(self._phones)

    def phones(self) -> frozenset[str]:
        """Every number of the list."""
        return self._phones


class MemorySuppressionList:
    """:class:`InternalSuppressionList` in a dict (tests, and the shape the store copies)."""

    def __init__(self, name: str = "internal") -> None:
        self._name = name
        self._entries: dict[str, Suppression] = {}

    @property
    def name(self) -> str:
        return self._name

    def contains(self, phone: str) -> bool:
        return phone in self._entries

    def get(self, phone: str) -> Suppression | None:
        return self._entries.get(phone)

    def add(self, phone: str, reason: str, source: str, *, at_s: float | None = None) -> bool:
        if phone in self._entries:
            return False
        self._entries[phone] = Suppression(phone, reason, source,
                                           time.time() if at_s is None else at_s)
        return True

    def remove(self, phone: str) -> bool:
        return self._entries.pop(phone, None) is not None

    def entries(self) -> Iterator[Suppression]:
        return iter(sorted(self._entries.values(), key=lambda e: e.added_s))


_DNC_ALLOW = Decision.allow("dnc")


class DncPolicy:
    """Skip ``dnc`` when the phone is on any of the lists (the first one is named)."""

    name = "dnc"

    def __init__(self, lists: Sequence[SuppressionList]) -> None:
        self.lists = tuple(lists)

    def decide(self, ctx: DialContext) -> Decision:
        for listed in self.lists:
            if listed.contains(ctx.phone):
                return Decision.skip(self.name, reasons.DNC,
                                     f"{ctx.phone} is on do-not-call list {listed.name!r}")
        return _DNC_ALLOW
