"""Call commands (dial, hang-up, history, tool results) and the frame dispatcher.

Every command of the protocol is answered (the other per-call ones live in
``dispatch.sandbox.call_commands``); an unknown command gets an ``error`` frame with
code ``UNKNOWN_COMMAND`` naming it (``command``). Before the handshake, everything
but ``connect`` is ignored (an ``error`` then would read as an auth failure).

Each handler takes the :class:`~dispatch.sandbox.session.Session` and the parsed
frame, and only queues replies (no awaiting), so the session runs them inline and
``call.dialing`` frames leave in the order the dials arrived. Frame shapes are
those of the wire contract in DESIGN.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dispatch.phone import is_e164
from dispatch.sandbox.call_commands import CALL_HANDLERS, command_error
from dispatch.sandbox.calls import SimCall, new_id
from dispatch.sandbox.dial_log import DialRecord
from dispatch.sandbox.refusals import Refusal
from dispatch.sandbox.registration import (
    AgentState,
    greeting_text,
    log,
    on_agent_configure,
    on_agent_create,
    on_channel_add,
    on_channel_remove,
    on_connect,
    on_ping,
    own_agent,
)
from dispatch.sandbox.state import phone_key

if TYPE_CHECKING:
    from dispatch.sandbox.session import Session

__all__ = ["HANDLERS", "dispatch_frame"]

Handler = Callable[["Session", dict[str, Any]], None]

# -- calls ------------------------------------------------------------------------


def on_call_dial(session: Session, frame: dict[str, Any]) -> None:
    session.dials_received += 1
    agent = own_agent(session, frame)
    to, from_ = frame.get("to"), frame.get("from")
    metadata = frame.get("metadata") if isinstance(frame.get("metadata"), dict) else None
    record = DialRecord(
        call_id=None,
        agent_id=agent.wire_id if agent else str(frame.get("agent_id")),
        to=str(to),
        from_=from_ if isinstance(from_, str) else None,
        metadata=metadata,
        received_at=time.time(),
        connection=session.id,
    )
    code = _dial_refusal(session, agent, to, from_)
    refusal = session.state.refusals.check(str(to)) if code is None else None
    if code is not None:
        _call_error(session, frame, record, code)
    elif refusal is not None:
        _platform_refusal(session, frame, record, refusal)
    else:
        assert agent is not None and isinstance(to, str)
        _place_call(session, frame, agent, record, to)
        session.state.refusals.placed(to)
    limit = session.state.faults.drop_after_dials
    if limit is not None and session.dials_received >= limit:
        session.drop_fault()


def _dial_refusal(
    session: Session, agent: AgentState | None, to: object, from_: object
) -> str | None:
    if agent is None:
        return "AGENT_NOT_FOUND"
    if not isinstance(to, str) or not is_e164(to):
        return "INVALID_NUMBER"
    if not isinstance(from_, str) or phone_key(from_) not in agent.channels:
        return "INVALID_FROM"
    return session.state.faults.take_dial_refusal()


_ERROR_TEXT = {
    "AGENT_NOT_FOUND": "unknown agent on this connection",
    "INVALID_NUMBER": "'to' is not an E.164 number",
    "INVALID_FROM": "'from' is not a phone channel of this agent",
}


def _call_error(session: Session, frame: dict[str, Any], record: DialRecord, code: str) -> None:
    session.state.dial_log.rejected(record, code)
    reply: dict[str, Any] = {"event": "call.error", "agent_id": record.agent_id}
    reply["to"] = frame.get("to")
    if "metadata" in frame:
        reply["metadata"] = frame["metadata"]
    reply["error"] = _ERROR_TEXT.get(code, f"{code}: dial refused by sandbox fault")
    reply["code"] = code
    session.emit(reply)


def _platform_refusal(session: Session, frame: dict[str, Any], record: DialRecord,
                      refusal: Refusal) -> None:
    """The simulated platform refuses the dial (``dispatch.sandbox.refusals``)."""
    session.state.dial_log.rejected(record, refusal.code)
    base: dict[str, Any] = {"agent_id": record.agent_id, "to": frame.get("to")}
    if "metadata" in frame:
        base["metadata"] = frame["metadata"]
    session.emit(refusal.frame(session.state.refusals.settings.frame, base))


def _place_call(
    session: Session, frame: dict[str, Any], agent: AgentState, record: DialRecord, to: str
) -> None:
    state = session.state
    record.call_id = new_id("CA", 32)
    greeting = greeting_text(frame.get("greeting")) or agent.greeting
    call = SimCall(
        session,
        record,
        state.plan_call(to),
        agent_id=agent.wire_id,
        greeting=greeting,
        limits=agent.limits,
        metadata_given="metadata" in frame,
    )
    state.dial_log.opened(record)
    call.entry = state.call_log.open(record, agent.slug)
    state.notify()
    call.send(call.dialing_frame())
    session.start_call(call)


def on_call_hangup(session: Session, frame: dict[str, Any]) -> None:
    call = session.calls.get(str(frame.get("call_id")))
    if call is not None:
        call.hangup()


def on_history(session: Session, frame: dict[str, Any]) -> None:
    """``history.set_vars`` and the other ``history.*`` writes: ack with the count."""
    call_id, request_id = frame.get("call_id"), frame.get("request_id")
    call = session.calls.get(str(call_id))
    reply: dict[str, Any] = {"event": "history.updated", "call_id": call_id}
    if request_id is not None:
        reply["request_id"] = request_id
    if call is None:
        reply["error"] = "call not found"
    else:
        _apply_history(call, frame)
        reply["count"] = call.history_count
    session.emit(reply)


def _apply_history(call: SimCall, frame: dict[str, Any]) -> None:
    event, messages = frame["event"], frame.get("messages")
    valid = [dict(m) for m in messages if isinstance(m, dict)] if isinstance(
        messages, list) else []
    if event == "history.set_vars" and isinstance(frame.get("vars"), dict):
        call.record.vars.update(frame["vars"])
    elif event == "history.add":
        call.messages.extend(valid)
    elif event == "history.set":
        call.messages[:] = valid
    elif event == "history.clear":
        call.messages.clear()
    elif event == "history.add_context" and isinstance(frame.get("text"), str):
        call.messages.append({"role": "system", "content": frame["text"]})


def on_tool_result(session: Session, frame: dict[str, Any]) -> None:
    call = session.calls.get(str(frame.get("call_id")))
    msg_id = frame.get("msg_id", frame.get("message_id"))
    if call is None or not isinstance(msg_id, str):
        return
    if not call.deliver_tool_result(msg_id, frame.get("results")):
        session.state.duplicate_tool_results += 1


def _ignore(session: Session, frame: dict[str, Any]) -> None:
    pass


def on_agent_resume(session: Session, frame: dict[str, Any]) -> None:
    """``agent.resume`` of an agent registered on this socket → ``agent.resumed``."""
    agent = own_agent(session, frame)
    if agent is None:
        command_error(session, frame, "AGENT_NOT_FOUND", "agent not registered on this "
                      "connection; send agent.create")
        return
    session.emit({"event": "agent.resumed", "agent_id": agent.wire_id})


def on_channel_configure(session: Session, frame: dict[str, Any]) -> None:
    agent, ref = own_agent(session, frame), frame.get("ref")
    if agent is None or not isinstance(ref, str) or phone_key(ref) not in agent.channels:
        command_error(session, frame, "CHANNEL_NOT_FOUND", "needs a registered agent_id and "
                      "one of its channel refs")
        return
    session.emit({"event": "channel.configured", "agent_id": agent.wire_id, "ref": ref})


HANDLERS: dict[str, Handler] = {
    "connect": on_connect,
    "ping": on_ping,
    "pong": _ignore,
    "agent.create": on_agent_create,
    "agent.configure": on_agent_configure,
    "channel.add": on_channel_add,
    "channel.remove": on_channel_remove,
    "channel.configure": on_channel_configure,
    "agent.resume": on_agent_resume,
    "dev.config": _ignore,  # dev callers: nothing to simulate, and no ack in the protocol
    "call.dial": on_call_dial,
    "call.hangup": on_call_hangup,
    "history.set_vars": on_history,
    "history.add": on_history,
    "history.set": on_history,
    "history.clear": on_history,
    "history.add_context": on_history,
    "history.set_instructions": on_history,
    "llm.tool_result": on_tool_result,
    **CALL_HANDLERS,
}


def dispatch_frame(session: Session, frame: dict[str, Any]) -> None:
    """Run the handler of ``frame['event']``. Before the handshake anything but
    ``connect`` is ignored (logged at debug); after it an unknown event, or a
    handler failing on a malformed frame, is answered with an ``error`` frame
    naming the command, and the connection carries on."""
    event = frame["event"]
    handler = HANDLERS.get(event)
    if not session.authed and event != "connect":
        log().debug("sandbox.ignored_frame", frame_event=event, connection=session.id)
        return
    if handler is None:
        command_error(session, frame, "UNKNOWN_COMMAND", "unknown command")
        return
    try:
        handler(session, frame)
    except Exception:
        log().exception("sandbox.bad_frame", frame_event=event, connection=session.id)
        command_error(session, frame, "BAD_REQUEST", "malformed frame")
