"""MemoryDialer: the hub's dialer interface with scripted outcomes per number."""

from __future__ import annotations

import dataclasses
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio

from dispatch.clock import Clock
from dispatch.hub.waiting import wait_event_until
from dispatch.reasons import Reason
from dispatch.sdk.dialing import RateToken
from dispatch.sdk.errors import DialFailed, RequestFailed
from dispatch.sdk.reasons import normalize_reason
from dispatch.strategy import call_maybe_async

__all__ = ["Answer", "DialLog", "Fail", "Hang", "MemoryCall", "MemoryDialer", "Raise", "Step"]


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

    async def _wait_hangup_or(self, seconds: float | None, since: float | None = None) -> bool:
        """True when hung up before ``seconds`` of the dialer's clock passed ``since``
        (default: now)."""
        clock = self._dialer.clock
        start = clock.now() if since is None else since
        deadline = None if seconds is None else start + seconds
        await wait_event_until(self._hangup, clock, deadline)
        return self._hangup.is_set()

    def _end(self, raw: str, *, at: float | None = None) -> None:
        if self._ended.is_set():
            return
        self.end_reason_raw = raw
        self.end_reason = normalize_reason(raw)
        now = self._dialer.clock.now()
        self.ended_at = now if at is None else min(now, at)
        self._dialer._call_ended(self)
        self._ended.set()

    async def wait_ended(self) -> MemoryCall:
        """Play the rest of the scripted call (first caller drives it)."""
        if not self._ended.is_set() and not self._dialer._driving(self):
            step = self._step
            duration = step.duration_s if isinstance(step, Answer) else None
            # a real call runs from its answer, however late the app starts waiting
            hung_up = await self._wait_hangup_or(duration, since=self.started_at)
            if isinstance(step, Answer):
                self.tool_results = list(step.tool_results)
                self.disposition = step.disposition
            scripted_end = None
            if not hung_up and duration is not None and self.started_at is not None:
                scripted_end = self.started_at + duration  # it ended then, even if seen late
            self._end("hangup" if hung_up or not isinstance(step, Answer) else step.reason,
                      at=scripted_end)
        await self._ended.wait()
        return self


class MemoryDialer:
    """An in-memory dialer with scripted outcomes per number.

    ``script`` maps a number to the outcomes of its successive dials (the last one
    repeats); other numbers get ``default``. Observations for assertions:
    :attr:`dials`, :attr:`live`, :attr:`max_live`, :attr:`calls`.

    ``send_delay_s`` (seconds of the dialer's clock, or a function of the number) is
    how long a dial waits before its frame "leaves" (a busy socket). At that send
    point, like the real SDK, the dial spends its ``rate_token`` and is logged in
    :attr:`dials` (``at`` is the send instant); a dial cancelled before it, or a
    :class:`Raise` step (an error before anything is sent), releases the token.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        script: Mapping[str, Sequence[Step | str]] | None = None,
        default: Step | str = Answer(),
        send_delay_s: float | Callable[[str], float] = 0.0,
    ) -> None:
        self.clock = clock
        self.send_delay_s = send_delay_s
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

    async def _wait_send(self, to: str) -> None:
        delay = self.send_delay_s
        delay_s = delay(to) if callable(delay) else delay
        if delay_s > 0:
            await self.clock.sleep(delay_s)

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
        rate_token: RateToken | None = None,
        **_: Any,
    ) -> MemoryCall:
        """Place a scripted call; see :class:`~dispatch.hub.dialer.Dialer`."""
        step = self._next_step(to)
        try:
            await self._wait_send(to)
            if isinstance(step, Raise):
                raise step.error
        except BaseException:
            if rate_token is not None:
                rate_token.release()  # the frame never left
            raise
        if rate_token is not None:
            rate_token.spend()  # the send point: same step as the log entry below
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
