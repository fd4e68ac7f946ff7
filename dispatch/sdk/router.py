"""Routes server frames: by ``call_id`` first, by agent second (protocol §7, §9.15).

Every handler is synchronous and O(1) (dict lookups); the only scan is over the
unbound dials of one agent when ``call.dialing`` carries no metadata echo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dispatch.log import get_logger
from dispatch.reasons import DIAL_FAILURE_REASONS, Reason
from dispatch.sdk.call import Call
from dispatch.sdk.dialing import ATTEMPT_KEY, PendingDial, dial_error
from dispatch.sdk.emitter import run_handler
from dispatch.sdk.errcopy import clone_error
from dispatch.sdk.errors import DialFailed, PinecallError
from dispatch.sdk.reasons import normalize_reason
from dispatch.sdk.tools import BoundedSet, run_tool_calls
from dispatch.sdk.wire import slugify, split_agent_id

if TYPE_CHECKING:
    from dispatch.sdk.agent import Agent
    from dispatch.sdk.client import Pinecall

__all__ = ["Router"]

_log = get_logger("dispatch.sdk.router")
_KNOWN_CODES = ("AGENT_CONFLICT_FATAL", "AGENT_CONFLICT", "AGENT_IN_USE", "SERVER_AT_CAPACITY",
                "REGISTRATION_ERROR", "PHONE_IN_USE")
_IGNORED = frozenset({"pong", "connected", "authenticated", "agent.configured",
                      "channel.configured", "channel.removed"})


def dial_failure_reason(raw: str) -> Reason:
    """The :class:`Reason` of an unanswered call's end (``hangup`` before answer = failed)."""
    reason = normalize_reason(raw)
    return reason if reason in DIAL_FAILURE_REASONS or reason is Reason.DISCONNECTED \
        else Reason.FAILED


class Router:
    """Frame dispatcher for one :class:`Pinecall`."""

    def __init__(self, client: Pinecall) -> None:
        self._c = client
        self._by_slug: dict[str, Agent] = {}
        self._tool_msgs = BoundedSet(4096)
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "ping": self._on_ping,
            "agent.created": self._on_agent_created,
            "agent.resumed": self._on_agent_created,
            "channel.added": self._on_channel_added,
            "agent.displaced": self._on_displaced,
            "error": self._on_error,
            "call.dialing": self._on_dialing,
            "call.started": self._on_started,
            "call.ended": self._on_ended,
            "call.error": self._on_call_error,
            "llm.tool_call": self._on_tool_call,
            "history.updated": self._on_history_ack,
            "history.data": self._on_history_ack,
        }

    def index_agent(self, agent: Agent) -> None:
        self._by_slug.setdefault(slugify(agent.id), agent)

    def agent(self, echoed: Any) -> Agent | None:
        """Local agent for an echoed id: exact, then the part after ``:``, then slugs."""
        if not isinstance(echoed, str):
            return None
        agents = self._c.agents
        found = agents.get(echoed)
        if found is None:
            tail, slug = split_agent_id(echoed)
            found = agents.get(tail) or self._by_slug.get(slug)
        return found

    def route(self, frame: dict[str, Any]) -> None:
        event = frame.get("event")
        handler = self._handlers.get(event) if isinstance(event, str) else None
        if handler is not None:
            handler(frame)
        elif event not in _IGNORED and isinstance(event, str):
            self._on_call_frame(event, frame)

    # -- connection and registration ---------------------------------------------------

    def _on_ping(self, frame: dict[str, Any]) -> None:
        try:
            self._c.send({"event": "pong"})
        except PinecallError:
            pass

    def _on_agent_created(self, frame: dict[str, Any]) -> None:
        agent = self.agent(frame.get("agent_id"))
        if agent is not None:
            agent.on_created()
        else:
            _log.warning("ack for an unknown agent", agent_id=frame.get("agent_id"))

    def _on_channel_added(self, frame: dict[str, Any]) -> None:
        agent = self.agent(frame.get("agent_id"))
        if agent is not None and isinstance(frame.get("ref"), str):
            agent.on_channel_added(frame["ref"])

    def _on_displaced(self, frame: dict[str, Any]) -> None:
        agent = self.agent(frame.get("agent_id"))
        if agent is None:
            return
        agent.on_displaced(str(frame.get("reason") or "displaced"))
        assert agent.error is not None
        for dial in self._c.book.drain(agent.id):
            dial.fail(clone_error(agent.error))
        _log.warning("agent displaced", agent_id=agent.id, reason=frame.get("reason"))
        agent.events.emit("displaced", frame)
        self._c.events.emit("agent.displaced", frame)

    def _on_error(self, frame: dict[str, Any]) -> None:
        text = str(frame.get("error") or frame.get("message") or "Unknown error")
        code = frame.get("code") if isinstance(frame.get("code"), str) else None
        code = code or next((c for c in _KNOWN_CODES if c in text), None)
        agent = self.agent(frame.get("agent_id")) or self._conflict_owner(frame, code)
        if agent is not None and code is not None and agent.on_error(code, text, frame):
            _log.info("registration error", agent_id=agent.id, code=code)
        elif code not in _KNOWN_CODES and self._fail_dial(agent, frame, text, code):
            return
        self._c.events.emit("error", PinecallError(text, code=code))

    def _conflict_owner(self, frame: dict[str, Any], code: str | None) -> Agent | None:
        """A conflict without ``agent_id`` (§9.14): the agent, if only one awaits its ack."""
        if "agent_id" in frame or code not in ("AGENT_CONFLICT", "AGENT_IN_USE"):
            return None
        waiting = [a for a in self._c.agents.values() if a.awaiting_ack]
        return waiting[0] if len(waiting) == 1 else None

    def _fail_dial(self, agent: Agent | None, frame: dict[str, Any], text: str,
                   code: str | None) -> bool:
        """A generic ``error`` refusing a dial (§9.3): it names no call, so it answers the
        dial it echoes (metadata / ``to``), else the agent's oldest unbound dial, in the
        same order-based way ``call.dialing`` binds. ``True`` when a dial took it."""
        if "call_id" in frame or (agent is None and "metadata" not in frame):
            return False
        book = self._c.book
        agent_id = agent.id if agent is not None else None
        if "metadata" in frame or "to" in frame:
            dial = book.match_unbound(agent_id, frame, by_to=True)
        else:
            dial = book.oldest_unbound(agent_id or "")
        if dial is None:
            return False
        book.take_unbound(dial)
        _log.info("dial refused by an error frame", agent_id=dial.agent_id, code=code)
        dial.fail(dial_error(frame, text, code=code, call_id=None, to=dial.to))
        return True

    # -- dial correlation --------------------------------------------------------------

    def _on_dialing(self, frame: dict[str, Any]) -> None:
        call_id = frame.get("call_id")
        if not isinstance(call_id, str) or call_id in self._c.calls:
            return
        agent = self.agent(frame.get("agent_id"))
        dial = self._c.book.bind(agent.id if agent else None, frame, by_to=True)
        call = self._new_call(call_id, frame, agent, dial)
        if dial is not None:
            dial.call = call
            if dial.settled:
                self._c.hangup_quietly(call_id)  # its caller gave up before the id was known
            elif dial.on_dialing is not None:
                run_handler(dial.on_dialing, call, self._c.spawn, "on_dialing")
        self._c.emit_call_event("call.dialing", call)

    def _on_started(self, frame: dict[str, Any]) -> None:
        call_id = frame.get("call_id")
        if not isinstance(call_id, str):
            return
        call = self._c.calls.get(call_id)
        dial = self._c.book.by_call(call_id)
        if call is None:
            agent = self.agent(frame.get("agent_id"))
            dial = self._c.book.bind(agent.id if agent else None, frame,
                                     by_to=frame.get("direction") == "outbound")
            call = self._new_call(call_id, frame, agent, dial)
            if dial is not None:
                dial.call = call
        call.mark_started(frame)
        if dial is not None:
            if dial.settled:
                self._c.hangup_quietly(call_id)  # answered after its caller gave up
            else:
                dial.resolve()
                self._c.book.forget_call(call_id)
        self._c.emit_call_event("call.started", call)

    def _on_ended(self, frame: dict[str, Any]) -> None:
        call_id = frame.get("call_id")
        if not isinstance(call_id, str):
            return
        raw = str(frame.get("reason") or "unknown")
        call = self._c.calls.pop(call_id, None)
        dial = self._c.book.by_call(call_id)
        self._c.book.forget_call(call_id)
        if call is None:
            # only a metadata echo may tie an unknown call to a dial (never direction)
            agent = self.agent(frame.get("agent_id"))
            dial = self._c.book.bind(agent.id if agent else None, frame, by_to=False)
            if dial is None:
                _log.debug("call.ended for an unknown call", call_id=call_id, reason=raw)
                return
            self._c.book.forget_call(call_id)
            call = dial.call = self._new_call(call_id, frame, agent, dial)
        call.end(raw, frame)
        if dial is not None and not dial.settled:
            dial.fail(DialFailed(dial_failure_reason(raw), raw, call_id=call_id, to=dial.to))
        self._c.emit_call_event("call.ended", call)

    def _on_call_error(self, frame: dict[str, Any]) -> None:
        text = str(frame.get("error") or "Unknown call error")
        code = frame.get("code") if isinstance(frame.get("code"), str) else None
        call_id = frame.get("call_id") if isinstance(frame.get("call_id"), str) else None
        book = self._c.book
        dial: PendingDial | None
        if call_id is not None:
            dial = book.by_call(call_id)
        else:
            agent = self.agent(frame.get("agent_id"))
            dial = book.match_unbound(agent.id if agent else None, frame, by_to=True)
            if dial is not None:
                book.take_unbound(dial)
        if dial is not None and not dial.settled:
            dial.fail(dial_error(frame, text, code=code, call_id=call_id, to=dial.to))
        call = self._c.calls.get(call_id) if call_id else None
        if call is not None and not call.answered:
            self._c.calls.pop(call.id, None)
            book.forget_call(call.id)
            call.end(text, reason=Reason.ERROR)
            self._c.emit_call_event("call.ended", call)
        elif call is not None:
            call.handle_frame("call.error", frame)
        if dial is None:
            self._c.events.emit("error", PinecallError(text, code=code))

    def _new_call(self, call_id: str, frame: dict[str, Any], agent: Agent | None,
                  dial: PendingDial | None) -> Call:
        meta = dial.frame.get("metadata") if dial is not None else frame.get("metadata")
        user_meta = {k: v for k, v in (meta or {}).items() if k != ATTEMPT_KEY}
        call = Call(self._c, call_id,
                    agent_id=dial.agent_id if dial else (agent.id if agent else
                                                         str(frame.get("agent_id", ""))),
                    to=frame.get("to") or (dial.to if dial else None),
                    from_=frame.get("from") or (dial.frame.get("from") if dial else None),
                    direction=frame.get("direction") or ("outbound" if dial else None),
                    metadata=user_meta)
        self._c.calls[call_id] = call
        return call

    # -- calls: tools, requests, conversation -----------------------------------------

    def _on_tool_call(self, frame: dict[str, Any]) -> None:
        call_id = frame.get("call_id")
        msg_id = frame.get("msg_id") or frame.get("message_id")
        tool_calls = frame.get("tool_calls")
        if not isinstance(call_id, str) or msg_id is None or not isinstance(tool_calls, list):
            return
        if not self._tool_msgs.add((call_id, str(msg_id))):
            return  # a resent msg_id: answered once already
        call = self._c.calls.get(call_id)
        agent = self.agent(frame.get("agent_id")) or (
            self._c.agents.get(call.agent_id) if call else None)
        tools = agent.tools if agent is not None else {}

        async def answer() -> None:
            results = await run_tool_calls(tools, tool_calls, call)
            reply = {"event": "llm.tool_result", "call_id": call_id, "msg_id": msg_id,
                     "results": results}
            try:
                self._c.send(reply)
            except PinecallError:
                _log.warning("tool result not sent: offline", call_id=call_id)
            except (TypeError, ValueError):
                _log.exception("tool result not JSON", call_id=call_id)

        self._c.spawn_in_session(answer)

    def _on_history_ack(self, frame: dict[str, Any]) -> None:
        self._c.requests.resolve(frame)

    def _on_call_frame(self, event: str, frame: dict[str, Any]) -> None:
        call_id = frame.get("call_id")
        call = self._c.calls.get(call_id) if isinstance(call_id, str) else None
        if call is not None:
            call.handle_frame(event, frame)
