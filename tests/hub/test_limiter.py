"""The sliding-window limiter: table-driven cases and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dispatch.hub.limiter import (
    WINDOW_S,
    ConcurrencyGate,
    SlidingWindowLimiter,
    earliest_start,
    in_window,
    tokens_available,
)


@pytest.mark.parametrize(
    ("starts", "now", "cap", "expected"),
    [
        ([], 0.0, 5, 0.0),
        ([0.0, 1.0], 2.0, 2, 60.0),
        ([0.0, 1.0], 61.0, 2, 61.0),
        ([0.0, 1.0, 2.0], 30.0, 2, 61.0),
        ([0.0], 59.999, 1, 60.0),
        ([0.0], 60.0, 1, 60.0),
        ([5.0] * 3, 6.0, 3, 65.0),
        ([0.0, 1.0], 2.0, None, 2.0),
    ],
)
def test_earliest_start_table(starts: list[float], now: float, cap: int | None, expected: float):
    assert earliest_start(starts, now, cap) == expected


@pytest.mark.parametrize(
    ("starts", "now", "cap", "expected"),
    [
        ([], 0.0, 3, 3),
        ([0.0, 10.0], 20.0, 3, 1),
        ([0.0, 10.0], 60.0, 3, 2),  # the start at 0 no longer counts at exactly 60
        ([0.0, 10.0], 70.0, 3, 3),
        ([0.0, 0.0, 0.0], 59.0, 2, 0),
        ([0.0], 1.0, None, math.inf),
    ],
)
def test_tokens_available_table(starts: list[float], now: float, cap: int | None, expected: float):
    assert tokens_available(starts, now, cap) == expected


def test_no_double_burst_at_window_edge():
    """A fixed-bucket limiter allows 2x cap around a bucket edge; the sliding log does not."""
    window = SlidingWindowLimiter(10)
    window.record(59.0, 10)
    assert window.available(60.5) == 0
    assert window.next_allowed_at(60.5) == 119.0


def _max_in_any_window(starts: list[float]) -> int:
    return max((sum(1 for s in starts if in_window(t, s)) for t in starts), default=0)


@settings(max_examples=300, deadline=None)
@given(
    cap=st.integers(min_value=1, max_value=8),
    gaps=st.lists(st.floats(min_value=0.0, max_value=90.0, allow_nan=False), max_size=60),
    batch=st.integers(min_value=1, max_value=5),
)
def test_greedy_schedule_never_exceeds_cap(cap: int, gaps: list[float], batch: int):
    """Starting every request at the earliest allowed time never puts > cap in a window."""
    window = SlidingWindowLimiter(cap)
    now = 1_700_000_000.0
    starts: list[float] = []
    for gap in gaps:
        now += gap
        t = window.next_allowed_at(now)
        n = int(min(batch, window.available(t)))
        assert n >= 1
        window.record(t, n)
        starts += [t] * n
        now = t
    assert _max_in_any_window(starts) <= cap


@settings(max_examples=300, deadline=None)
@given(
    cap=st.integers(min_value=1, max_value=6),
    starts=st.lists(st.floats(min_value=0.0, max_value=300.0, allow_nan=False), max_size=30),
    now=st.floats(min_value=0.0, max_value=400.0, allow_nan=False),
)
def test_earliest_start_is_allowed_and_minimal(cap: int, starts: list[float], now: float):
    """The earliest start is allowed, and no earlier time >= now is."""
    starts = sorted(starts)
    # only histories the limiter itself could have produced are meaningful
    if _max_in_any_window(starts) > cap:
        return
    now = max(now, starts[-1] if starts else 0.0)

    def allowed(t: float) -> bool:
        return sum(1 for s in starts if in_window(s, t)) < cap

    t = earliest_start(starts, now, cap)
    assert t >= now
    assert allowed(t)
    if t > now:
        assert not allowed(max(now, math.nextafter(t, -math.inf)))
    assert (tokens_available(starts, now, cap) > 0) == (t == now)


def test_window_length_is_60s():
    assert WINDOW_S == 60.0


def test_concurrency_gate_counts_and_refuses_over_release():
    gate = ConcurrencyGate(2)
    gate.acquire(2)
    assert gate.available() == 0
    gate.release()
    assert gate.available() == 1
    gate.release()
    with pytest.raises(RuntimeError):
        gate.release()
    assert gate.peak == 2
    assert ConcurrencyGate(None).available() == math.inf


@pytest.mark.parametrize("bad", [0, -1])
def test_limits_must_be_positive(bad: int):
    with pytest.raises(ValueError, match="max_calls_per_minute"):
        SlidingWindowLimiter(bad)
    with pytest.raises(ValueError, match="max_concurrent"):
        ConcurrencyGate(bad)


@settings(max_examples=200, deadline=None)
@given(
    cap=st.integers(min_value=1, max_value=6),
    gaps=st.lists(st.floats(min_value=0, max_value=40), max_size=12),
    wait=st.floats(min_value=0, max_value=90),
    n=st.integers(min_value=1, max_value=20),
)
def test_nth_allowed_at_is_where_dialling_as_early_as_allowed_puts_the_last_dial(
    cap: int, gaps: list[float], wait: float, n: int
):
    limiter = SlidingWindowLimiter(cap)
    t = 0.0
    for gap in gaps:  # an allowed history of starts
        t = limiter.next_allowed_at(t + gap)
        limiter.record(t)
    now = t + wait
    # brute force: start n more dials one by one, each at the earliest allowed time
    starts = list(limiter._starts)  # a copy of the log
    at = now
    for _ in range(n):
        at = earliest_start(starts, at, cap)
        starts.append(at)
    assert limiter.nth_allowed_at(now, n) == pytest.approx(at)


class _Now:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - never slept on
        raise AssertionError("not used")


def _most_in(starts: list[float], window_s: float) -> int:
    return max((sum(1 for s in starts if t <= s < t + window_s) for t in starts), default=0)


@settings(max_examples=300, deadline=None)
@given(
    per_minute=st.integers(1, 6),
    per_second=st.one_of(st.none(), st.integers(1, 3)),
    ops=st.lists(st.tuples(st.sampled_from(["tick", "claim", "spend", "release"]),
                           st.floats(0.0, 2.5), st.integers(0, 5)), max_size=80),
)
def test_pacer_is_exact_at_every_spend_whatever_the_order(
    per_minute: int, per_second: int | None, ops: list[tuple[str, float, int]]
) -> None:
    from dispatch.hub.limiter import DialPacer, DialToken

    clock = _Now()
    minute = SlidingWindowLimiter(per_minute, 10.0)  # a short "minute": many windows pass
    second = SlidingWindowLimiter(per_second, 1.0) if per_second is not None else None
    pacer = DialPacer(clock, minute, second)  # type: ignore[arg-type]
    pending: list[DialToken] = []
    spent: list[float] = []
    for op, dt, n in ops:
        if op == "tick":
            clock.t += dt
        elif op == "claim":
            take = int(min(n, pacer.available(clock.t)))
            pending += pacer.reserve(take)
        elif pending:
            token = pending.pop(n % len(pending))
            if op == "spend":
                token.spend()
                spent.append(clock.t)
            else:
                token.release()
        for window, cap in ((10.0, per_minute), (1.0, per_second)):
            if cap is not None:  # started in the window ending now, plus the promised
                live = sum(1 for s in spent if clock.t < s + window)
                assert live + pacer.reserved <= cap
        if not pacer.reserved:  # the next allowed instant is exactly when a token frees
            at = pacer.next_allowed_at(clock.t)
            assert pacer.available(at) >= 1
            if at > clock.t:
                assert pacer.available(max(clock.t, at - 1e-6)) == 0
    assert _most_in(spent, 10.0) <= per_minute
    if per_second is not None:
        assert _most_in(spent, 1.0) <= per_second
    assert minute.total == len(spent) and pacer.reserved == len(pending)


@settings(max_examples=400, deadline=None)
@given(
    per_minute=st.integers(1, 6),
    per_second=st.one_of(st.none(), st.integers(1, 3)),
    ops=st.lists(st.tuples(st.sampled_from(["tick", "claim", "ahead", "spend", "release"]),
                           st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.5, 2.5]),
                           st.integers(0, 5)), max_size=80),
)
# a token claimed ahead while the window is full: spent before its instant, it would
# make two starts in one window
@example(per_minute=1, per_second=None, ops=[("claim", 0.0, 1), ("spend", 0.0, 0),
                                             ("tick", 2.5, 0), ("ahead", 1.0, 1),
                                             ("spend", 0.0, 0)])
def test_tokens_claimed_ahead_spent_at_their_instant_keep_the_pace_exact(
    per_minute: int, per_second: int | None, ops: list[tuple[str, float, int]]
) -> None:
    from dispatch.hub.limiter import DialPacer, DialToken

    clock = _Now()
    minute = SlidingWindowLimiter(per_minute, 3.0)  # short: windows expire within a lead
    second = SlidingWindowLimiter(per_second, 1.0) if per_second is not None else None
    pacer = DialPacer(clock, minute, second)  # type: ignore[arg-type]
    pending: list[DialToken] = []
    spent: list[float] = []
    ahead = 0
    for op, dt, n in ops:
        if op == "tick":
            clock.t += dt
        elif op in ("claim", "ahead"):
            lead = dt if op == "ahead" else 0.0
            take = int(min(n, pacer.available_ahead(clock.t, lead)))
            tokens = pacer.reserve(take, clock.t)
            ahead += sum(t.not_before is not None for t in tokens)
            for token in tokens:  # never later than the lead asked for
                assert token.not_before is None or clock.t < token.not_before <= clock.t + lead
            pending += tokens
        elif pending:
            token = pending.pop(n % len(pending))
            if op == "spend":
                if token.not_before is not None and token.not_before > clock.t:
                    clock.t = token.not_before  # the dial waits for its instant
                token.spend()
                spent.append(clock.t)
            else:
                token.release()
    assert _most_in(spent, 3.0) <= per_minute
    if per_second is not None:
        assert _most_in(spent, 1.0) <= per_second
        assert ahead == 0  # with a per-second limit nothing is claimed ahead
    assert minute.total == len(spent) and pacer.reserved == len(pending)


def test_a_full_window_lets_a_claim_ahead_take_the_tokens_it_frees_within_the_lead() -> None:
    from dispatch.hub.limiter import DialPacer

    clock = _Now()
    minute = SlidingWindowLimiter(3, 60.0)
    pacer = DialPacer(clock, minute)  # type: ignore[arg-type]
    for at in (0.0, 1.0, 2.0):
        clock.t = at
        pacer.reserve(1)[0].spend()
    clock.t = 59.5
    assert pacer.available(59.5) == 0
    assert pacer.available_ahead(59.5, 1.0) == 1  # the start at 0 expires at 60
    assert pacer.available_ahead(59.5, 2.0) == 2
    tokens = pacer.reserve(2, 59.5)
    assert [t.not_before for t in tokens] == [60.0, 61.0]
    assert pacer.available_ahead(59.5, 2.0) == 0
