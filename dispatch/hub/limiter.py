"""Pacing: an exact sliding-log rate limit and a concurrency gate.

A dial started at ``s`` counts against every window ``[t, t + window_s)`` that
contains it. The limit is: no such window holds more than ``max_per_window``
starts. With the starts kept sorted, a new start at ``t`` is allowed exactly when
fewer than ``max_per_window`` earlier starts satisfy ``t < s + window_s``, i.e.
when ``t >= starts[-max_per_window] + window_s``. There are no fixed buckets, so
there is no burst of twice the rate across a bucket edge.

The functions are pure functions of ``now`` (table-driven and property tests);
:class:`SlidingWindowLimiter` keeps the log for the running hub, and
:class:`DialPacer` applies the per-minute and per-second limits at the instant each
dial frame is sent (see its docstring for why that is exact).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

from dispatch.clock import Clock

__all__ = [
    "WINDOW_S",
    "ConcurrencyGate",
    "DialPacer",
    "DialToken",
    "SlidingWindowLimiter",
    "earliest_start",
    "in_window",
    "tokens_available",
]

#: the rate window: "calls per minute"
WINDOW_S = 60.0


def in_window(start: float, t: float, window_s: float = WINDOW_S) -> bool:
    """True when a dial started at ``start`` still counts at time ``t``."""
    return start <= t < start + window_s


def tokens_available(
    starts: Sequence[float], now: float, max_per_window: int | None, window_s: float = WINDOW_S
) -> float:
    """How many dials may start at ``now`` (``math.inf`` when unlimited).

    ``starts`` is sorted ascending and holds no start later than ``now``.
    """
    if max_per_window is None:
        return math.inf
    counting = sum(1 for start in starts if now < start + window_s)
    return max(0, max_per_window - counting)


def earliest_start(
    starts: Sequence[float], now: float, max_per_window: int | None, window_s: float = WINDOW_S
) -> float:
    """The earliest time ``>= now`` at which one more dial may start."""
    if max_per_window is None or len(starts) < max_per_window:
        return now
    return max(now, starts[-max_per_window] + window_s)


class SlidingWindowLimiter:
    """The log of dial start times of a running hub.

    Queries (:meth:`available`, :meth:`next_allowed_at`, :meth:`count`) never change
    the log, so asking about a future time (an ETA) cannot forget starts that still
    count now; the log is pruned only by :meth:`record`, at the current time.
    """

    def __init__(self, max_per_window: int | None, window_s: float = WINDOW_S, *,
                 name: str = "max_calls_per_minute") -> None:
        if max_per_window is not None and max_per_window < 1:
            raise ValueError(f"{name} must be >= 1, got {max_per_window}")
        self.max_per_window = max_per_window
        self.window_s = window_s
        self._starts: deque[float] = deque()
        self.total = 0

    def _prune(self, now: float) -> None:
        while self._starts and not now < self._starts[0] + self.window_s:
            self._starts.popleft()

    def _counting(self, now: float) -> int:
        # starts are sorted and few (at most the cap plus those expired since the
        # last record), so a scan from the oldest is cheap
        expired = 0
        for start in self._starts:
            if now < start + self.window_s:
                break
            expired += 1
        return len(self._starts) - expired

    def available(self, now: float) -> float:
        """Dials that may start at ``now`` (``math.inf`` when unlimited)."""
        if self.max_per_window is None:
            return math.inf
        return max(0, self.max_per_window - self._counting(now))

    def next_allowed_at(self, now: float, reserved: int = 0) -> float:
        """Earliest time ``>= now`` at which a dial may start, ``reserved`` more dials
        counted as if they started at ``now`` (their earliest possible start)."""
        cap = self.max_per_window
        if not reserved or cap is None:
            return earliest_start(self._starts, now, cap, self.window_s)
        if reserved >= cap:
            return now + self.window_s
        if len(self._starts) + reserved < cap:
            return now
        return max(now, self._starts[reserved - cap] + self.window_s)

    def nth_allowed_at(self, now: float, n: int) -> float:
        """When the last of ``n`` more dials may start, each started as early as allowed.

        The k-th future start is ``max(now, starts[k] + window_s)`` over the ``cap``
        starts that still count (``now`` where there are fewer), and every later one
        comes one window after the start ``cap`` places before it: O(1) in ``n``.
        """
        if self.max_per_window is None or n <= 0:
            return now
        cap = self.max_per_window
        counting = list(self._starts)[len(self._starts) - self._counting(now):][-cap:]
        pad = cap - len(counting)
        index, rounds = (n - 1) % cap, (n - 1) // cap
        first = now if index < pad else max(now, counting[index - pad] + self.window_s)
        return first + rounds * self.window_s

    def record(self, t: float, count: int = 1) -> None:
        """Log ``count`` starts at ``t`` (``t`` never decreases)."""
        if self._starts and t < self._starts[-1]:
            t = self._starts[-1]
        self._prune(t)
        self._starts.extend([t] * count)
        self.total += count

    def preload(self, starts: Sequence[float]) -> None:
        """Seed the log with starts of an earlier run (they count, not in ``total``)."""
        merged = sorted([*self._starts, *starts])
        self._starts = deque(merged)

    def count(self, now: float) -> int:
        """Starts in the window ending at ``now`` (tracked even when unlimited)."""
        return self._counting(now)

    def starts_since(self, t: float) -> list[float]:
        """The logged starts later than ``t`` (oldest first)."""
        return [start for start in self._starts if start > t]


class DialToken:
    """A rate token reserved for one claimed dial; spent when its frame is sent.

    :meth:`spend` stamps it on the hub's clock at that instant (the dial then counts
    in every window containing that instant); :meth:`release` gives it back unused
    (the frame never left). The first of the two wins; later calls do nothing.
    """

    __slots__ = ("_pacer", "not_before", "spent_at")

    def __init__(self, pacer: DialPacer, not_before: float | None = None) -> None:
        self._pacer: DialPacer | None = pacer
        self.spent_at: float | None = None
        #: claimed ahead (:meth:`DialPacer.available_ahead`): the frame may not leave
        #: before this hub-clock time, when the window frees the token's place
        self.not_before = not_before

    @property
    def pending(self) -> bool:
        """Neither spent nor released yet."""
        return self._pacer is not None

    def spend(self) -> None:
        """The dial frame is being written now."""
        pacer, self._pacer = self._pacer, None
        if pacer is not None:
            self.spent_at = pacer.spent()

    def release(self) -> None:
        """The dial frame was never sent (cancelled, refused before sending)."""
        pacer, self._pacer = self._pacer, None
        if pacer is not None:
            pacer.released()


class DialPacer:
    """The hub's rate limits (per minute, optionally per second), exact at the send instant.

    A claim :meth:`reserve` s one :class:`DialToken` per dial, only while
    :meth:`available` says so, and the dialer spends each token right before it
    writes the frame. A reserved token counts in every window as a start at the
    current instant until it is spent there or released. So at every instant ``t``,
    for each limit, ``starts in the window ending at t + reserved <= cap``: a
    reservation is only made when that holds, time passing only drops starts, and a
    spend turns a reservation into a start at ``t`` itself. Every frame therefore
    leaves with a token free at that instant, however long it waited after its claim,
    and a frame that never leaves costs nothing. ``on_release`` runs when a token
    comes back (the dispatch loop may use it at once).
    """

    def __init__(self, clock: Clock, per_minute: SlidingWindowLimiter,
                 per_second: SlidingWindowLimiter | None = None,
                 on_release: Callable[[], None] | None = None) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self.per_second = per_second
        self._windows = [w for w in (per_minute, per_second) if w is not None]
        self._limited = [w for w in self._windows if w.max_per_window is not None]
        self._on_release = on_release
        self.reserved = 0

    def available(self, now: float) -> float:
        """Tokens that may be reserved at ``now`` (``math.inf`` when unlimited)."""
        if not self._limited:
            return math.inf
        return max(0, min(w.available(now) for w in self._limited) - self.reserved)

    def available_ahead(self, now: float, lead_s: float) -> float:
        """Tokens that may be reserved at ``now`` for dials leaving by ``now + lead_s``.

        Claim-ahead: a rate-bound campaign commits the claim of its next dial while
        the token it will use is still taken, so the frame leaves the instant the
        window frees it instead of one commit later. Only with the per-minute limit
        alone (a per-second limit spaces the dials it would have to predict); see
        :meth:`reserve` for the instant each such token may be spent."""
        if lead_s <= 0 or self._limited != [self.per_minute]:
            return self.available(now)
        return max(0, self.per_minute.available(now + lead_s) - self.reserved)

    def next_allowed_at(self, now: float) -> float:
        """Earliest time ``>= now`` a token may be reserved, reserved ones taken as
        starts at ``now`` (exact when none is reserved; each limit only loosens with
        time, so the answer is the latest of the limits' answers)."""
        return max([now, *(w.next_allowed_at(now, self.reserved) for w in self._limited)])

    def reserve(self, count: int, now: float | None = None) -> list[DialToken]:
        """``count`` tokens for dials just claimed (the caller checked :meth:`available`
        or, with ``now``, :meth:`available_ahead`).

        With ``now``, a token whose place in the window is not free yet gets
        ``not_before``: the instant the window frees it, the reserved tokens before it
        taken as starts as early as allowed (:meth:`SlidingWindowLimiter.nth_allowed_at`).
        Spent then or later, it leaves within the cap: a reserved token holds its place
        until it is spent, and a spend can only come later than that estimate."""
        tokens: list[DialToken] = []
        for _ in range(count):
            not_before = None
            if now is not None and self._limited == [self.per_minute]:
                at = self.per_minute.nth_allowed_at(now, self.reserved + 1)
                not_before = at if at > now else None
            self.reserved += 1
            tokens.append(DialToken(self, not_before))
        return tokens

    def spent(self) -> float:
        """A token is spent now: log the start in every window; returns the instant."""
        now = self.clock.now()
        self.reserved -= 1
        for window in self._windows:
            window.record(now)
        return now

    def released(self) -> None:
        self.reserved -= 1
        if self._on_release is not None:
            self._on_release()

    def sync_per_second(self, now: float) -> None:
        """Seed the per-second log from the per-minute one (starts preloaded at resume)."""
        if self.per_second is not None:
            self.per_second.preload(self.per_minute.starts_since(now - self.per_second.window_s))


class ConcurrencyGate:
    """Counts calls between dial-sent and ended against ``max_concurrent``."""

    def __init__(self, max_concurrent: int | None) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {max_concurrent}")
        self.max_concurrent = max_concurrent
        self.live = 0
        self.peak = 0

    def available(self) -> float:
        if self.max_concurrent is None:
            return math.inf
        return max(0, self.max_concurrent - self.live)

    def acquire(self, count: int = 1) -> None:
        self.live += count
        self.peak = max(self.peak, self.live)

    def release(self) -> None:
        if self.live <= 0:
            raise RuntimeError("concurrency gate released more than acquired")
        self.live -= 1
