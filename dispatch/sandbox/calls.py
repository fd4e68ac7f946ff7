"""One simulated phone call: ring, answer, converse, end. One task per call.

A :class:`SimCall` follows its :class:`~dispatch.sandbox.scenario.CallPlan` and
sends frames through its host (the connection's session). It ends exactly once,
with one of: the plan's outcome, ``canceled``/``hangup`` after a client
``call.hangup``, ``transferred`` after ``call.forward``, ``max_duration``/``idle_timeout``
at a session limit (after a ``session.timeout`` frame), or ``app_detached`` (no frame)
when its task is cancelled from outside (the socket went away, or the sandbox closed).

Durations (``call.ended.duration_seconds``, the dial log, the REST state) are in
*simulated* seconds, like every time of the scenario and of the session limits.
Every frame a call sends is also appended to its :class:`CallEntry` (REST log).

Every wait goes through :meth:`SimCall._wait`, which converts simulated to real
seconds and raises :class:`_Limit` when a session-limit deadline comes first, so
a call needs no helper tasks.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from dispatch.sandbox.call_log import CallEntry
from dispatch.sandbox.dial_log import DialRecord
from dispatch.sandbox.scenario import CallPlan, PlannedTurn
from dispatch.sandbox.state import SandboxState

__all__ = ["CallHost", "CallLimits", "SimCall"]

_SPOKEN_CHARS_PER_S = 15.0


class CallHost(Protocol):
    """What a call needs from its connection."""

    state: SandboxState

    def emit(self, frame: dict[str, Any]) -> None: ...

    def forget(self, call_id: str) -> None: ...

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None: ...


@dataclass(frozen=True, slots=True)
class CallLimits:
    """Session limits in simulated seconds; 0 disables one (protocol §4.3).

    The idle timeout applies only when the agent set ``idle_timeout_seconds``.
    """

    max_duration_s: float = 600.0
    idle_timeout_s: float = 0.0

    @classmethod
    def from_wire(cls, raw: object) -> CallLimits:
        """Read ``agent.create.session_limits``; bad values fall back to defaults."""
        if not isinstance(raw, dict):
            return cls()
        return cls(
            max_duration_s=_number(raw.get("max_duration_seconds"), 600.0),
            idle_timeout_s=_number(raw.get("idle_timeout_seconds"), 0.0),
        )


def _number(value: object, default: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else default  # type: ignore[arg-type]


class _Limit(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class _PendingTool:
    __slots__ = ("arguments", "done", "name", "result", "tool_call_id")

    def __init__(self, tool_call_id: str, name: str, arguments: dict[str, Any]) -> None:
        self.tool_call_id, self.name, self.arguments = tool_call_id, name, arguments
        self.done = anyio.Event()
        self.result: Any = None


def new_id(prefix: str, hex_chars: int) -> str:
    """A random id: ``prefix`` + ``hex_chars`` lowercase hex characters."""
    return prefix + secrets.token_hex(hex_chars // 2)


class SimCall:
    """A simulated callee on one call. Drive it with :meth:`run` in the session's task group."""

    def __init__(
        self,
        host: CallHost,
        record: DialRecord,
        plan: CallPlan,
        *,
        agent_id: str,
        greeting: str | None,
        limits: CallLimits,
        metadata_given: bool,
    ) -> None:
        assert record.call_id is not None
        self.host, self.record, self.plan = host, record, plan
        self.call_id: str = record.call_id
        self.agent_id, self.greeting, self.limits = agent_id, greeting, limits
        self._metadata_given = metadata_given
        self.scope = anyio.CancelScope()
        self.ended = False
        self.entry: CallEntry | None = None
        #: the call's LLM history as ``{role, content}`` messages (``history.*`` commands)
        self.messages: list[dict[str, Any]] = []
        self._cut_reason: str | None = None
        self._answered_mono: float | None = None
        self._last_speech_mono = 0.0
        self._tools: dict[str, _PendingTool] = {}

    @property
    def history_count(self) -> int:
        return len(self.messages)

    @property
    def answered(self) -> bool:
        return self._answered_mono is not None

    # -- frames -------------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        """Emit ``frame`` to the client (if still connected) and log it for REST."""
        self.host.emit(frame)
        if self.entry is not None:
            self.host.state.call_log.append(self.entry, frame)

    def frame(self, event: str, **extra: Any) -> dict[str, Any]:
        """A frame of this call (``agent_id`` and ``call_id`` set)."""
        return self._frame(event, **extra)

    def _frame(self, event: str, **extra: Any) -> dict[str, Any]:
        frame: dict[str, Any] = {"event": event, "agent_id": self.agent_id, "call_id": self.call_id}
        frame.update(extra)
        return frame

    def _parties(self, frame: dict[str, Any]) -> dict[str, Any]:
        frame["from"], frame["to"] = self.record.from_, self.record.to
        if self._metadata_given:
            frame["metadata"] = self.record.metadata
        return frame

    def dialing_frame(self) -> dict[str, Any]:
        """The ``call.dialing`` frame (sent by the session, in receipt order)."""
        return self._parties(self._frame("call.dialing"))

    # -- client commands ------------------------------------------------------

    def hangup(self) -> None:
        """Client ``call.hangup``: ends as ``canceled`` while ringing, else ``hangup``."""
        self.scope.cancel()

    def forward(self, to: str) -> None:
        """Client ``call.forward`` of an answered call: ``call.forwarded``, then the call
        leaves the agent and ends as ``transferred``."""
        self.send(self._frame("call.forwarded", to=to))
        self._cut_reason = "transferred"
        self.scope.cancel()

    def say(self, message_id: str, text: str, *, add_to_history: bool = True) -> None:
        """Client ``bot.reply`` on an answered call: ``message.confirmed``, then
        ``bot.speaking`` and, after the speaking time, ``bot.finished``."""
        self.send(self._frame("message.confirmed", message_id=message_id))
        if add_to_history:
            self.messages.append({"role": "assistant", "content": text})
        self.host.spawn(lambda: self._speak_reply(message_id, text))

    async def _speak_reply(self, message_id: str, text: str) -> None:
        self.send(self._frame("bot.speaking", message_id=message_id, text=text))
        spoken_s = len(text) / _SPOKEN_CHARS_PER_S
        await anyio.sleep(self.host.state.real_s(spoken_s))
        if not self.ended:
            self.send(self._frame(
                "bot.finished", message_id=message_id, duration_ms=int(spoken_s * 1000)))

    def deliver_tool_result(self, msg_id: str, results: object) -> bool:
        """An ``llm.tool_result``; False when ``msg_id`` is unknown or already answered."""
        pending = self._tools.get(msg_id)
        if pending is None or pending.done.is_set():
            return False
        entries = results if isinstance(results, list) else []
        pending.result = next(
            (
                e.get("result")
                for e in entries
                if isinstance(e, dict) and e.get("tool_call_id") == pending.tool_call_id
            ),
            entries[0].get("result") if entries and isinstance(entries[0], dict) else None,
        )
        pending.done.set()
        return True

    # -- lifecycle ------------------------------------------------------------

    async def run(self) -> None:
        """Play the call to its end. Cancellation from outside ends it as ``app_detached``."""
        try:
            with self.scope:
                reason = await self._lifecycle()
                self._end(reason)
            if not self.ended:  # the scope was cancelled by hangup() or forward()
                self._end(self._cut_reason or ("hangup" if self.answered else "canceled"))
        finally:
            if not self.ended:
                self._end("app_detached", send=False)

    async def _lifecycle(self) -> str:
        plan = self.plan
        await self._wait(plan.ring_s)
        if not plan.answers:
            return plan.outcome
        self._answer()
        try:
            if self.greeting:
                await self._speak(self.greeting)
            for turn in plan.turns:
                await self._turn(turn)
            await self._wait(math.inf if plan.outcome == "no-hangup" else plan.final_pause_s)
        except _Limit as limit:
            self.send(
                self._frame("session.timeout", session_id=self.call_id, reason=limit.reason)
            )
            return limit.reason
        return plan.outcome

    def _answer(self) -> None:
        self._answered_mono = self._last_speech_mono = anyio.current_time()
        self.record.answered_at = time.time()
        frame = self._frame("call.started", session_id=self.call_id)
        frame["direction"] = "outbound"
        self._parties(frame)
        frame["transport"] = "phone"
        self.send(frame)

    async def _speak(self, text: str) -> None:
        message_id = new_id("msg_", 12)
        self.send(self._frame("bot.speaking", message_id=message_id, text=text))
        self.messages.append({"role": "assistant", "content": text})
        spoken_s = len(text) / _SPOKEN_CHARS_PER_S
        await self._wait(spoken_s, bot_speaking=True)
        self.send(
            self._frame("bot.finished", message_id=message_id, duration_ms=int(spoken_s * 1000))
        )

    async def _turn(self, turn: PlannedTurn) -> None:
        await self._wait(turn.pause_s)
        self.send(
            self._frame(
                "user.message", message_id=new_id("msg_", 12), text=turn.say, confidence=0.94
            )
        )
        self.messages.append({"role": "user", "content": turn.say})
        self._last_speech_mono = anyio.current_time()
        if turn.tool is not None:
            await self._tool_call(turn.tool, turn.arguments or {})
        if turn.reply:
            await self._speak(turn.reply)

    async def _tool_call(self, name: str, arguments: dict[str, Any]) -> None:
        msg_id, tool_call_id = new_id("msg_", 12), new_id("call_", 24)
        pending = self._tools[msg_id] = _PendingTool(tool_call_id, name, arguments)
        frame = self._frame(
            "llm.tool_call",
            msg_id=msg_id,
            tool_calls=[{"id": tool_call_id, "name": name, "arguments": json.dumps(arguments)}],
        )
        self.send(frame)
        if self.host.state.faults.duplicate_tool_calls:
            self.send(frame)
        try:
            await self._wait(math.inf, event=pending.done)
        finally:
            if not pending.done.is_set():
                pending.result = {"error": "tool timeout"}
            self.record.tool_results.append(
                {"name": name, "arguments": arguments, "result": pending.result}
            )

    def _end(self, reason: str, *, send: bool = True) -> None:
        self.ended = True
        ended_at = time.time()
        state = self.host.state
        self.host.forget(self.call_id)
        duration_s = 0.0
        if self._answered_mono is not None:
            duration_s = state.simulated_s(anyio.current_time() - self._answered_mono)
        state.dial_log.ended(self.record, reason, ended_at, duration_s)
        if not send:
            self._seal()
            return
        frame = self._frame(
            "call.ended",
            session_id=self.call_id,
            reason=reason,
            duration_seconds=self.record.duration_seconds,
        )
        if self.record.answered_at is not None:
            frame["started_at"] = self.record.answered_at
        frame["ended_at"] = ended_at
        frame["direction"] = "outbound"
        self.send(self._parties(frame))
        self._seal()

    def _seal(self) -> None:
        state = self.host.state
        if self.entry is not None:
            state.call_log.seal(self.entry)
        state.notify()

    # -- time -----------------------------------------------------------------

    def _next_limit(self) -> tuple[str | None, float]:
        """The earliest session-limit deadline (monotonic), or (None, inf)."""
        if self._answered_mono is None:
            return None, math.inf
        state = self.host.state
        best: tuple[str | None, float] = (None, math.inf)
        if self.limits.max_duration_s > 0:
            best = ("max_duration", self._answered_mono + state.real_s(self.limits.max_duration_s))
        if self.limits.idle_timeout_s > 0:
            idle = self._last_speech_mono + state.real_s(self.limits.idle_timeout_s)
            if idle < best[1]:
                best = ("idle_timeout", idle)
        return best

    async def _wait(
        self, simulated_s: float, *, event: anyio.Event | None = None, bot_speaking: bool = False
    ) -> None:
        """Sleep ``simulated_s`` (or until ``event``; tool waits are capped by the real
        ``tool_timeout_s``); raise :class:`_Limit` if a session limit comes first.

        Zero-length sleeps return at once (instant calls at infinite speed); at
        infinite speed tool waits are not cut by session limits.
        """
        real = self.host.state.real_s(simulated_s)
        if event is not None:
            real = self.plan.tool_timeout_s
        elif real <= 0:
            return
        limit, deadline = self._next_limit()
        if event is not None and math.isinf(self.host.state.speed):
            limit = None
        if bot_speaking and limit == "idle_timeout":
            limit = None  # bot speech pauses the idle counter (approximation: never cuts it)
        remaining = deadline - anyio.current_time() if limit else math.inf
        with anyio.move_on_after(min(real, max(remaining, 0.0))):
            await (event.wait() if event is not None else anyio.sleep_forever())
        if limit and remaining <= real and not (event is not None and event.is_set()):
            raise _Limit(limit)
