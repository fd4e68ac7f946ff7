"""Which record is dialled next: :class:`DialQueue`.

Three places a waiting record can be:

- ``ready``: may be dialled now (FIFO; records freed by a phone go to the front);
- ``timed``: a heap by due time (``not_before``, retry delays);
- ``by_phone``: parked because its phone has a live dial or call; the first one
  parked moves to the front of ``ready`` when that phone is released.

Phones are locked from the moment a record is taken for dialling until its call
ends, so one phone never has two live dials (dedup by phone).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable

__all__ = ["DialQueue"]


class DialQueue:
    """Record ids waiting to be dialled, and the phones currently in use."""

    def __init__(self) -> None:
        self._ready: deque[str] = deque()
        self._timed: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._live_phones: dict[str, str] = {}
        self._by_phone: dict[str, deque[str]] = {}
        self._parked = 0
        self._last_due = -math.inf  # the latest due time ever timed (for the ETA)

    # -- adding -----------------------------------------------------------------------

    def add_ready(self, record_id: str, *, front: bool = False) -> None:
        if front:
            self._ready.appendleft(record_id)
        else:
            self._ready.append(record_id)

    def add_timed(self, record_id: str, due_at: float) -> None:
        heapq.heappush(self._timed, (due_at, next(self._seq), record_id))
        self._last_due = max(self._last_due, due_at)

    def promote_due(self, now: float) -> int:
        """Move every timed record due at ``now`` to ``ready``; return how many."""
        moved = 0
        while self._timed and self._timed[0][0] <= now:
            _due, _seq, record_id = heapq.heappop(self._timed)
            self._ready.append(record_id)
            moved += 1
        return moved

    # -- taking -----------------------------------------------------------------------

    def take(self, limit: float, phone_of: Callable[[str], str]) -> list[str]:
        """Pop up to ``limit`` ready records whose phone is free, locking the phones.

        Records whose phone is busy are parked until :meth:`release_phone`.
        """
        taken: list[str] = []
        while self._ready and len(taken) < limit:
            record_id = self._ready.popleft()
            phone = phone_of(record_id)
            if phone in self._live_phones:
                self._by_phone.setdefault(phone, deque()).append(record_id)
                self._parked += 1
                continue
            self._live_phones[phone] = record_id
            taken.append(record_id)
        return taken

    def release_phone(self, phone: str) -> None:
        """The call on ``phone`` ended: free it and un-park its next record."""
        self._live_phones.pop(phone, None)
        parked = self._by_phone.get(phone)
        if parked:
            self._ready.appendleft(parked.popleft())
            self._parked -= 1
            if not parked:
                del self._by_phone[phone]

    def remove_ready(self, record_ids: set[str]) -> None:
        """Drop ``record_ids`` from ``ready`` (used when a claim is rolled back)."""
        self._ready = deque(r for r in self._ready if r not in record_ids)

    # -- observing --------------------------------------------------------------------

    def next_due_at(self) -> float | None:
        return self._timed[0][0] if self._timed else None

    def last_due_at(self) -> float | None:
        """The latest due time of a timed record (an upper bound once some came due)."""
        return self._last_due if self._timed else None

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    @property
    def timed_count(self) -> int:
        return len(self._timed)

    @property
    def parked_count(self) -> int:
        return self._parked

    @property
    def live_phone_count(self) -> int:
        return len(self._live_phones)

    def phone_is_live(self, phone: str) -> bool:
        return phone in self._live_phones

    def is_empty(self) -> bool:
        return not (self._ready or self._timed or self._parked)
