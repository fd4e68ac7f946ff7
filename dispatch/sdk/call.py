"""One phone call as the client sees it, from ``call.dialing`` to ``call.ended``."""

from __future__ import annotations

from typing import Any, Protocol

import anyio

from dispatch.reasons import Reason
from dispatch.sdk.emitter import AsyncFn, Emitter, Handler
from dispatch.sdk.errors import NotConnected, RequestFailed
from dispatch.sdk.reasons import normalize_reason

__all__ = ["Call", "CallLink"]

_TRANSCRIPT_ROLES = {"user.message": "user", "bot.speaking": "assistant"}


class CallLink(Protocol):
    """What a :class:`Call` needs from its client (implemented by ``Pinecall``)."""

    @property
    def online(self) -> bool: ...

    def now(self) -> float: ...

    def send_for_call(self, frame: dict[str, Any]) -> None: ...

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]: ...

    def spawn(self, fn: AsyncFn) -> None: ...


class Call:
    """A call placed (or received) by an agent.

    Attributes: ``id``, ``agent_id``, ``from_``, ``to``, ``direction``, ``metadata`` (the
    dial's metadata, or the server's echo), ``started_at``/``ended_at`` (epoch s, ``None``
    until known), ``duration_s``, ``end_reason`` (:class:`Reason`) and ``end_reason_raw``,
    ``transcript`` (``{"role": "user"|"assistant", "text", "message_id"}`` entries),
    ``tool_results`` (``{"name", "arguments", "result"}``), ``disposition``.
    """

    def __init__(
        self,
        link: CallLink,
        call_id: str,
        *,
        agent_id: str,
        to: str | None,
        from_: str | None,
        direction: str | None = "outbound",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._link = link
        self.id = call_id
        self.agent_id = agent_id
        self.to = to
        self.from_ = from_
        self.direction = direction
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.answered = False
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.duration_s: float | None = None
        self.end_reason: Reason | None = None
        self.end_reason_raw: str | None = None
        self.transcript: list[dict[str, Any]] = []
        self.tool_results: list[dict[str, Any]] = []
        self.disposition: str | None = None
        self._ended = anyio.Event()
        self._events = Emitter(link.spawn, f"call {call_id}")

    def __repr__(self) -> str:
        state = self.end_reason_raw if self.ended else ("live" if self.answered else "dialing")
        return f"<Call {self.id} to={self.to} {state}>"

    @property
    def ended(self) -> bool:
        """``True`` once the call has ended (for any reason, including a lost socket)."""
        return self._ended.is_set()

    def on(self, name: str, handler: Handler) -> Handler:
        """Subscribe to ``"started"``, ``"ended"`` (payload: the call) or any call-scoped
        wire event (``"user.message"``, ``"bot.speaking"``, ``"session.timeout"``...;
        payload: the frame dict). Sync or async handlers; a raising handler is logged."""
        return self._events.on(name, handler)

    async def wait_ended(self) -> Call:
        """Wait until the call has ended; returns the call. Never raises on its own."""
        await self._ended.wait()
        return self

    async def hangup(self) -> None:
        """Ask the server to end the call (``call.hangup``); returns once sent.

        The end arrives as ``call.ended`` (see :meth:`wait_ended`). A no-op on an ended
        call. Raises :class:`NotConnected` when the client is offline.
        """
        if not self.ended:
            self._link.send_for_call({"event": "call.hangup", "call_id": self.id})

    async def set_prompt_vars(self, variables: dict[str, str]) -> None:
        """Set per-call prompt variables (``history.set_vars``) and wait for the ack.

        Raises :class:`RequestFailed` (``REQUEST_REJECTED`` when the server refuses or
        the call has ended, ``REQUEST_TIMEOUT`` without an ack in time),
        :class:`NotConnected` when offline, :class:`ConnectionLost` on a drop.
        """
        if not self._link.online:
            raise NotConnected(f"offline; history.set_vars for {self.id} not sent")
        if self.ended:
            raise RequestFailed(f"call {self.id} has ended", code="REQUEST_REJECTED")
        frame = {"event": "history.set_vars", "call_id": self.id, "vars": dict(variables)}
        await self._link.request(frame)

    # -- driven by the client ------------------------------------------------------

    def mark_started(self, frame: dict[str, Any]) -> None:
        """``call.started``: the callee answered."""
        if self.answered or self.ended:
            return
        self.answered = True
        self.started_at = self._link.now()
        self._update_parties(frame)
        self._events.emit("started", self)

    def end(
        self, raw_reason: str, frame: dict[str, Any] | None = None, reason: Reason | None = None
    ) -> bool:
        """Settle the call once (``reason`` overrides the normalised ``raw_reason``);
        ``False`` when it had already ended."""
        if self.ended:
            return False
        frame = frame or {}
        self._update_parties(frame)
        self.end_reason_raw = raw_reason
        self.end_reason = reason or normalize_reason(raw_reason)
        self.ended_at = _number(frame.get("ended_at")) or self._link.now()
        if self.answered:
            self.started_at = _number(frame.get("started_at")) or self.started_at
        duration = _number(frame.get("duration_seconds"))
        if duration is None and self.started_at is not None:
            duration = max(0.0, self.ended_at - self.started_at)
        self.duration_s = duration if duration is not None else 0.0
        self._ended.set()
        self._events.emit("ended", self)
        return True

    def handle_frame(self, event: str, frame: dict[str, Any]) -> None:
        """A conversation frame for this call: transcript, then listeners."""
        role = _TRANSCRIPT_ROLES.get(event)
        if role is not None and isinstance(frame.get("text"), str):
            self.transcript.append(
                {"role": role, "text": frame["text"], "message_id": frame.get("message_id")}
            )
        self._events.emit(event, frame)

    def record_tool_result(self, name: str, arguments: Any, result: Any) -> None:
        """Remember a tool round; a dict result with ``"disposition"`` sets it."""
        self.tool_results.append({"name": name, "arguments": arguments, "result": result})
        if isinstance(result, dict) and result.get("disposition") is not None:
            self.disposition = str(result["disposition"])

    def _update_parties(self, frame: dict[str, Any]) -> None:
        self.to = frame.get("to") or self.to
        self.from_ = frame.get("from") or self.from_
        self.direction = frame.get("direction") or self.direction
        echoed = frame.get("metadata")
        if isinstance(echoed, dict) and not self.metadata:
            self.metadata = {k: v for k, v in echoed.items() if k != "dispatch_attempt"}


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
