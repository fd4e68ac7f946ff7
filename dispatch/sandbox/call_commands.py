"""The per-call commands of protocol §4.2 and §4.6 beyond dial and hang-up.

Each handler answers as the protocol describes (``bot.reply`` → ``message.confirmed``,
``bot.speaking``, ``bot.finished``; ``history.get`` → ``history.data``; ``call.dtmf``
→ ``call.dtmf_sent``; ``call.forward`` → ``call.forwarded`` then the call ends
``transferred``; ``session.configure`` → ``session.configured``; hold, mute and
skills with their acks), or with an ``error`` frame that names the command
(``command``), its ``code`` and the ``call_id``: ``CALL_NOT_FOUND`` for a call this
connection does not hold, ``CALL_NOT_ANSWERED`` for a command that needs media,
``BAD_REQUEST`` for a malformed field, ``NOT_SUPPORTED`` for what the sandbox does
not simulate. A rejected ``bot.reply`` gets ``reply.rejected`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dispatch.phone import is_dialable
from dispatch.sandbox.calls import CallLimits, SimCall

if TYPE_CHECKING:
    from dispatch.sandbox.session import Session

__all__ = ["CALL_HANDLERS", "command_error"]

Handler = Callable[["Session", dict[str, Any]], None]

_MAX_STREAMS = 64
_DTMF = re.compile(r"[0-9*#A-Da-d]+")
#: command -> (ack event, needs an answered call)
_SIMPLE_ACKS = {
    "call.hold": ("call.held", True),
    "call.unhold": ("call.unheld", True),
    "call.mute": ("call.muted", True),
    "call.unmute": ("call.unmuted", True),
    "skill.load": ("skill.loaded", False),
    "skill.unload": ("skill.unloaded", False),
}


def command_error(session: Session, frame: dict[str, Any], code: str, text: str) -> None:
    """Answer ``frame`` with an ``error`` frame naming its command."""
    command = str(frame.get("event"))
    reply: dict[str, Any] = {"event": "error", "code": code, "error": f"{command}: {text}",
                             "command": command}
    for key in ("call_id", "agent_id", "session_id", "request_id", "message_id"):
        if key in frame:
            reply[key] = frame[key]
    session.emit(reply)


def _call(session: Session, frame: dict[str, Any], *, answered: bool) -> SimCall | None:
    """The live call ``frame`` names, or None after answering with an error."""
    call_id = frame.get("call_id", frame.get("session_id"))
    call = session.calls.get(call_id) if isinstance(call_id, str) else None
    if call is None:
        command_error(session, frame, "CALL_NOT_FOUND", f"no live call {call_id!r} here")
        return None
    if answered and not call.answered:
        command_error(session, frame, "CALL_NOT_ANSWERED", "the call is not answered yet")
        return None
    return call


def on_bot_reply(session: Session, frame: dict[str, Any]) -> None:
    call_id, message_id, text = frame.get("call_id"), frame.get("message_id"), frame.get("text")
    call = session.calls.get(call_id) if isinstance(call_id, str) else None
    reason = None
    if call is None:
        reason = "call not found"
    elif not call.answered:
        reason = "call not answered"
    elif not isinstance(message_id, str) or not message_id:
        reason = "message_id missing"
    elif not isinstance(text, str) or not text:
        reason = "text missing or empty"
    if reason is not None or call is None:
        session.emit({"event": "reply.rejected", "call_id": call_id, "message_id": message_id,
                      "reason": reason})
        return
    assert isinstance(message_id, str) and isinstance(text, str)
    call.say(message_id, text, add_to_history=frame.get("add_to_history") is not False)


def on_bot_reply_stream(session: Session, frame: dict[str, Any]) -> None:
    """``start`` / ``chunk`` (``token``) / ``end``: spoken as one reply at ``end``."""
    call = _call(session, frame, answered=True)
    action, message_id = frame.get("action"), frame.get("message_id")
    if call is None:
        return
    if action not in ("start", "chunk", "end") or not isinstance(message_id, str):
        command_error(session, frame, "BAD_REQUEST", "needs message_id and action "
                      "start|chunk|end")
        return
    if message_id not in session.reply_streams and len(session.reply_streams) >= _MAX_STREAMS:
        command_error(session, frame, "BAD_REQUEST", f"more than {_MAX_STREAMS} open streams")
        return
    parts = session.reply_streams.setdefault(message_id, [])
    if action == "chunk" and isinstance(frame.get("token"), str):
        parts.append(frame["token"])
    elif action == "end":
        text = "".join(session.reply_streams.pop(message_id, []))
        on_bot_reply(session, {**frame, "event": "bot.reply", "text": text})


def on_bot_cancel(session: Session, frame: dict[str, Any]) -> None:
    """``bot.cancel`` / ``bot.clear``: no reply in the protocol; an unknown call errs."""
    _call(session, frame, answered=False)


def on_history_get(session: Session, frame: dict[str, Any]) -> None:
    call_id, request_id = frame.get("call_id"), frame.get("request_id")
    reply: dict[str, Any] = {"event": "history.data", "call_id": call_id}
    if request_id is not None:
        reply["request_id"] = request_id
    call = session.calls.get(call_id) if isinstance(call_id, str) else None
    if call is None:
        reply["error"] = "call not found"
        reply["messages"] = []
    else:
        reply["messages"] = [dict(m) for m in call.messages]
    session.emit(reply)


def on_dtmf(session: Session, frame: dict[str, Any]) -> None:
    call = _call(session, frame, answered=True)
    digits = frame.get("digits")
    if call is None:
        return
    if not isinstance(digits, str) or not _DTMF.fullmatch(digits):
        command_error(session, frame, "BAD_REQUEST", f"digits must be 0-9 * # A-D, got {digits!r}")
        return
    call.send(call.frame("call.dtmf_sent", digits=digits))


def on_forward(session: Session, frame: dict[str, Any]) -> None:
    call = _call(session, frame, answered=True)
    to = frame.get("to")
    if call is None:
        return
    if not isinstance(to, str) or not is_dialable(to):
        command_error(session, frame, "BAD_REQUEST", f"'to' must be E.164 or sip:, got {to!r}")
        return
    call.forward(to)


def on_session_configure(session: Session, frame: dict[str, Any]) -> None:
    """Ack with ``session.configured``; ``session_limits`` apply to the live call."""
    call = _call(session, frame, answered=False)
    if call is None:
        return
    if "session_limits" in frame:
        call.limits = CallLimits.from_wire(frame["session_limits"])
    session.emit({"event": "session.configured", "session_id": call.call_id,
                  "call_id": call.call_id, "agent_id": call.agent_id})


def on_simple_ack(session: Session, frame: dict[str, Any]) -> None:
    ack, needs_answer = _SIMPLE_ACKS[str(frame["event"])]
    call = _call(session, frame, answered=needs_answer)
    if call is None:
        return
    extra: dict[str, Any] = {}
    if "skill" in frame:
        extra["skill"] = frame["skill"]
    if ack == "call.unmuted":
        extra["muted_transcript"] = ""
    call.send(call.frame(ack, **extra))


def on_llm_ready(session: Session, frame: dict[str, Any]) -> None:
    """The sandbox never holds a turn (no ``llm.before``): accepted, nothing to release."""


def on_not_simulated(session: Session, frame: dict[str, Any]) -> None:
    command_error(session, frame, "NOT_SUPPORTED", "not simulated by the sandbox")


CALL_HANDLERS: dict[str, Handler] = {
    "bot.reply": on_bot_reply,
    "bot.reply.stream": on_bot_reply_stream,
    "bot.cancel": on_bot_cancel,
    "bot.clear": on_bot_cancel,
    "history.get": on_history_get,
    "call.dtmf": on_dtmf,
    "call.forward": on_forward,
    "session.configure": on_session_configure,
    "llm.ready": on_llm_ready,
    "call.bridge": on_not_simulated,
    "line.create": on_not_simulated,
    **dict.fromkeys(_SIMPLE_ACKS, on_simple_ack),
}
