"""Test kit: drive a :class:`~dispatch.hub.DispatchHub` without a network or real time.

- :class:`FakeClock` only moves on :meth:`FakeClock.advance` (or, inside
  :meth:`FakeClock.autojump`, to the next sleeper whenever every task is blocked);
- :class:`MemoryDialer` satisfies the hub's dialer interface with scripted outcomes
  per number (:class:`Answer`, :class:`Fail`, :class:`Hang`, :class:`Raise`);
- :class:`MemoryStrategy` hands out records you feed it from code.

They go through the same constructor arguments production uses::

    clock = FakeClock()
    dialer = MemoryDialer(clock, script={"+15550000075": ["busy", Answer(30)]})
    hub = DispatchHub(dialer, [MemoryStrategy(records)], db=tmp_path / "t.db", clock=clock)
    async with clock.autojump():
        await hub.run(until_idle=True)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import anyio
from anyio import lowlevel

from dispatch.clock import Clock
from dispatch.hub.core import wait_event_until
from dispatch.records import Record
from dispatch.sdk.errors import DialFailed, RequestFailed
from dispatch.sdk.reasons import Reason, normalize_reason
from dispatch.strategy import Outcome, Strategy, call_maybe_async

__all__ = [
    "Answer",
    "DialLog",
    "Fail",
    "FakeClock",
    "Hang",
    "MemoryCall",
    "MemoryDialer",
    "MemoryStrategy",
    "Raise",
    "Step",
]


class FakeClock:
    """A controllable :class:`~dispatch.clock.Clock` (epoch seconds)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until :meth:`advance` moves the clock ``seconds`` ahead."""
        if seconds <= 0:
            await lowlevel.checkpoint()
            return
        event = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), event))
        try:
            await event.wait()
        finally:
            event.set()  # a cancelled sleep leaves no stale deadline for autojump

    def next_deadline(self) -> float | None:
        """The earliest time a sleeper waits for (``None`` when nobody sleeps)."""
        self._drop_woken()
        return self._sleepers[0][0] if self._sleepers else None

    def _drop_woken(self) -> None:
        while self._sleepers and self._sleepers[0][2].is_set():
            heapq.heappop(self._sleepers)

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()

    def jump_to_next(self) -> bool:
        """Advance to the earliest sleeper's deadline; False when nobody sleeps."""
        deadline = self.next_deadline()
        if deadline is None:
            return False
        self.advance(max(0.0, deadline - self._now))
        return True

    @contextlib.asynccontextmanager
    async def autojump(self, *, settle_s: float = 0.005) -> AsyncIterator[FakeClock]:
        """While inside, jump to the next deadline whenever all tasks are blocked.

        A task waiting on a thread (a database write) looks blocked, so all tasks must
        stay blocked for ``settle_s`` of real time first; under heavy load time may
        still jump during I/O, so assert invariants rather than exact times here and
        use :meth:`advance` for exact timing.
        """
        async with anyio.create_task_group() as tg:

            async def _jumper() -> None:
                while True:
                    await _wait_all_tasks_blocked(settle_s)
                    if not self.jump_to_next():
                        await anyio.sleep(settle_s)

            tg.start_soon(_jumper)
            try:
                yield self
            finally:
                tg.cancel_scope.cancel()


def _others_blocked(this: asyncio.Task[Any] | None) -> bool:
    for task in asyncio.all_tasks():
        if task is this:
            continue
        waiter = getattr(task, "_fut_waiter", None)
        if waiter is None or waiter.done():
            return False
    return True


async def _wait_all_tasks_blocked(settle_s: float) -> None:
    """Like :func:`anyio.wait_all_tasks_blocked`, without its 0.1 s polling on asyncio.

    Blocked twice, ``settle_s`` apart, so that a thread finishing I/O (a database
    write) gets to wake its task before time jumps.
    """
    try:
        this = asyncio.current_task()
    except RuntimeError:  # not asyncio (trio)
        await anyio.wait_all_tasks_blocked()
        return
    while True:
        await asyncio.sleep(0)
        if _others_blocked(this):
            await asyncio.sleep(settle_s)
            if _others_blocked(this):
                return


# -- scripted outcomes ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Answer:
    """Answered after ``ring_s``; ends after ``duration_s`` with ``reason``."""

    duration_s: float = 1.0
    reason: str = "hangup"
    ring_s: float = 0.0
    disposition: str | None = None
    tool_results: tuple[dict[str, Any], ...] = ()
    prompt_vars_error: str | None = None


@dataclasses.dataclass(frozen=True)
class Fail:
    """Not answered: ``DialFailed`` with ``reason`` (wire spelling) after ``ring_s``."""

    reason: str = "no-answer"
    ring_s: float = 0.0
    with_call_id: bool = True


@dataclasses.dataclass(frozen=True)
class Hang:
    """Answered after ``ring_s`` and never ends until hung up."""

    ring_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class Raise:
    """``dial`` raises ``error`` at once (before any call id)."""

    error: BaseException


Step = Answer | Fail | Hang | Raise

_WORDS: dict[str, Step] = {
    "answer": Answer(),
    "hang": Hang(),
    "busy": Fail("busy"),
    "no-answer": Fail("no-answer"),
    "no_answer": Fail("no-answer"),
    "failed": Fail("failed"),
    "timeout": Fail("timeout"),
}


def _as_step(step: Step | str) -> Step:
    if isinstance(step, str):
        try:
            return _WORDS[step]
        except KeyError:
            raise ValueError(f"unknown scripted outcome {step!r}; use {sorted(_WORDS)}") from None
    return step


@dataclasses.dataclass(frozen=True)
class DialLog:
    """One dial as the :class:`MemoryDialer` saw it."""

    to: str
    from_: str | None
    greeting: str | None
    metadata: dict[str, Any]
    config: dict[str, Any] | None
    at: float
    call_id: str


class MemoryCall:
    """A call of :class:`MemoryDialer` (the hub's ``CallLike``)."""

    def __init__(self, dialer: MemoryDialer, to: str, metadata: dict[str, Any]) -> None:
        self._dialer = dialer
        self.id = "CA" + uuid.uuid4().hex
        self.to = to
        self.metadata = metadata
        self.end_reason: Reason | None = None
        self.end_reason_raw: str | None = None
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.tool_results: list[dict[str, Any]] = []
        self.disposition: str | None = None
        self.prompt_vars: dict[str, str] = {}
        self.hung_up = False
        self._hangup = anyio.Event()
        self._ended = anyio.Event()
        self._step: Answer | Hang | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    async def hangup(self) -> None:
        self.hung_up = True
        self._hangup.set()

    async def set_prompt_vars(self, vars: Mapping[str, str]) -> None:
        if isinstance(self._step, Answer) and self._step.prompt_vars_error:
            raise RequestFailed(self._step.prompt_vars_error, code="REQUEST_REJECTED")
        self.prompt_vars = dict(vars)

    async def _wait_hangup_or(self, seconds: float | None) -> bool:
        """True when hung up before ``seconds`` of the dialer's clock passed."""
        clock = self._dialer.clock
        deadline = None if seconds is None else clock.now() + seconds
        await wait_event_until(self._hangup, clock, deadline)
        return self._hangup.is_set()

    def _end(self, raw: str) -> None:
        if self._ended.is_set():
            return
        self.end_reason_raw = raw
        self.end_reason = normalize_reason(raw)
        self.ended_at = self._dialer.clock.now()
        self._dialer._call_ended(self)
        self._ended.set()

    async def wait_ended(self) -> MemoryCall:
        """Play the rest of the scripted call (first caller drives it)."""
        if not self._ended.is_set() and not self._dialer._driving(self):
            step = self._step
            duration = step.duration_s if isinstance(step, Answer) else None
            hung_up = await self._wait_hangup_or(duration)
            if isinstance(step, Answer):
                self.tool_results = list(step.tool_results)
                self.disposition = step.disposition
            self._end("hangup" if hung_up or not isinstance(step, Answer) else step.reason)
        await self._ended.wait()
        return self


class MemoryDialer:
    """An in-memory dialer with scripted outcomes per number.

    ``script`` maps a number to the outcomes of its successive dials (the last one
    repeats); other numbers get ``default``. Observations for assertions:
    :attr:`dials`, :attr:`live`, :attr:`max_live`, :attr:`calls`.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        script: Mapping[str, Sequence[Step | str]] | None = None,
        default: Step | str = Answer(),
    ) -> None:
        self.clock = clock
        self.default = _as_step(default)
        self._script: dict[str, deque[Step]] = {}
        for number, steps in (script or {}).items():
            self.set_script(number, steps)
        self.dials: list[DialLog] = []
        self.calls: list[MemoryCall] = []
        self.live = 0
        self.max_live = 0
        self.live_by_phone: dict[str, int] = {}
        self.max_live_per_phone = 0
        self._drivers: set[str] = set()

    def set_script(self, number: str, steps: Iterable[Step | str]) -> None:
        self._script[number] = deque(_as_step(s) for s in steps)

    def _next_step(self, to: str) -> Step:
        steps = self._script.get(to)
        if not steps:
            return self.default
        return steps.popleft() if len(steps) > 1 else steps[0]

    def _driving(self, call: MemoryCall) -> bool:
        if call.id in self._drivers:
            return True
        self._drivers.add(call.id)
        return False

    def _call_started(self, to: str) -> None:
        self.live += 1
        self.max_live = max(self.max_live, self.live)
        self.live_by_phone[to] = self.live_by_phone.get(to, 0) + 1
        self.max_live_per_phone = max(self.max_live_per_phone, self.live_by_phone[to])

    def _call_ended(self, call: MemoryCall) -> None:
        self.live -= 1
        self.live_by_phone[call.to] -= 1
        self._drivers.discard(call.id)

    async def dial(
        self,
        to: str,
        *,
        from_: str | None = None,
        greeting: str | None = None,
        metadata: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        timeout_s: float = 70.0,
        on_dialing: Any = None,
        **_: Any,
    ) -> MemoryCall:
        """Place a scripted call; see :class:`~dispatch.hub.dialer.Dialer`."""
        step = self._next_step(to)
        if isinstance(step, Raise):
            raise step.error
        call = MemoryCall(self, to, dict(metadata or {}))
        self.calls.append(call)
        self.dials.append(
            DialLog(to, from_, greeting, dict(metadata or {}), config, self.clock.now(), call.id)
        )
        self._call_started(to)
        await call_maybe_async(on_dialing, call)
        ring_s = step.ring_s
        if ring_s > timeout_s:
            step, ring_s = Fail("timeout"), timeout_s
        if await call._wait_hangup_or(ring_s):
            call._end("canceled")
            raise DialFailed(Reason.CANCELED, "canceled", call_id=call.id, to=to)
        if isinstance(step, Fail):
            call._end(step.reason)
            call_id = call.id if step.with_call_id else None
            raise DialFailed(normalize_reason(step.reason), step.reason, call_id=call_id, to=to)
        call._step = step
        call.started_at = self.clock.now()
        return call


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
