"""Connection and registration commands: connect, ping, agents and phone channels.

Handlers take the :class:`~dispatch.sandbox.session.Session` and the parsed frame
and only queue replies. Agent ids are owned per live socket (``AGENT_CONFLICT``
for another socket); phone refs likewise (``PHONE_IN_USE``); a closed session's
names are freed by :func:`release_session`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dispatch.log import get_logger
from dispatch.sandbox.calls import CallLimits
from dispatch.sandbox.state import phone_key, slugify

if TYPE_CHECKING:
    from dispatch.sandbox.session import Session

__all__ = [
    "AgentState",
    "greeting_text",
    "on_agent_configure",
    "on_agent_create",
    "on_channel_add",
    "on_channel_remove",
    "on_connect",
    "on_ping",
    "own_agent",
    "release_session",
]


def log() -> Any:
    """The sandbox logger, looked up per use so that it follows ``configure_logging``
    called after import (``get_logger`` binds the configuration at call time)."""
    return get_logger("dispatch.sandbox")


@dataclass
class AgentState:
    """An agent registered on one connection."""

    slug: str
    wire_id: str
    greeting: str | None = None
    limits: CallLimits = field(default_factory=CallLimits)
    channels: dict[str, str] = field(default_factory=dict)  # phone_key(ref) -> ref


def greeting_text(raw: object) -> str | None:
    if isinstance(raw, str):
        return raw or None
    if isinstance(raw, dict) and raw:  # per-language map: English, else the first
        value = raw.get("en", next(iter(raw.values())))
        return value if isinstance(value, str) and value else None
    return None


def _error(session: Session, code: str, text: str, **extra: Any) -> None:
    session.emit({"event": "error", "code": code, "error": text, **extra})


# -- connection ------------------------------------------------------------------


def on_connect(session: Session, frame: dict[str, Any]) -> None:
    expected = session.state.api_key
    if expected is not None and frame.get("api_key") != expected:
        _error(session, "INVALID_KEY", "invalid api key")
        session.close_soon(1008, "invalid api key")
        return
    session.emit({"event": "connected", "org_id": session.state.org_id})
    if not session.authed:
        session.on_authenticated()


def on_ping(session: Session, frame: dict[str, Any]) -> None:
    if not session.state.faults.ignore_pings:
        session.emit({"event": "pong", "timestamp": time.time()})


# -- agents and channels ---------------------------------------------------------


def on_agent_create(session: Session, frame: dict[str, Any]) -> None:
    raw_id = frame.get("agent_id")
    slug = slugify(raw_id) if isinstance(raw_id, str) else ""
    if not slug:
        _error(session, "REGISTRATION_ERROR", "agent_id missing or empty", agent_id=raw_id)
        return
    state = session.state
    refusal = state.faults.take_registration_refusal()
    if refusal is not None:
        _refuse(session, refusal, raw_id)
        return
    holder = state.agents.get(slug)
    if holder is not None and holder is not session:
        _error(
            session,
            "AGENT_CONFLICT",
            f"agent {slug!r} is connected on another socket",
            agent_id=raw_id,
            retry_after_s=state.conflict_retry_after_s,
            holder_alive=True,
        )
        return
    state.agents[slug] = session
    agent = session.agents.get(slug) or AgentState(slug, state.wire_agent_id(slug))
    session.agents[slug] = agent
    _configure(agent, frame)
    session.emit({"event": "agent.created", "agent_id": agent.wire_id})


def _refuse(session: Session, code: str, agent_id: object) -> None:
    extra: dict[str, Any] = {"agent_id": agent_id}
    text = f"{code}: registration refused by sandbox fault"
    if code == "SERVER_AT_CAPACITY":
        extra.update(used=100, limit=100)
        text = "SERVER_AT_CAPACITY: Maximum clients (100) reached"
    elif code in ("AGENT_CONFLICT", "AGENT_CONFLICT_FATAL"):
        extra["holder_alive"] = True
        if code == "AGENT_CONFLICT":
            extra["retry_after_s"] = session.state.conflict_retry_after_s
    _error(session, code, text, **extra)


def _configure(agent: AgentState, frame: dict[str, Any]) -> None:
    if "greeting" in frame:
        agent.greeting = greeting_text(frame["greeting"])
    if "session_limits" in frame:
        agent.limits = CallLimits.from_wire(frame["session_limits"])


def own_agent(session: Session, frame: dict[str, Any]) -> AgentState | None:
    raw_id = frame.get("agent_id")
    return session.agents.get(slugify(raw_id)) if isinstance(raw_id, str) else None


def on_agent_configure(session: Session, frame: dict[str, Any]) -> None:
    agent = own_agent(session, frame)
    if agent is None:
        _error(session, "AGENT_NOT_FOUND", "unknown agent", agent_id=frame.get("agent_id"))
        return
    _configure(agent, frame)
    session.emit({"event": "agent.configured", "agent_id": agent.wire_id})


def on_channel_add(session: Session, frame: dict[str, Any]) -> None:
    agent, ref = own_agent(session, frame), frame.get("ref")
    if agent is None or not isinstance(ref, str) or not ref:
        _error(
            session,
            "REGISTRATION_ERROR",
            "channel.add needs a registered agent_id and a ref",
            agent_id=frame.get("agent_id"),
        )
        return
    key = phone_key(ref)
    holder = session.state.phones.get(key)
    if holder is not None and holder is not session:
        _error(
            session,
            "PHONE_IN_USE",
            f"PHONE_IN_USE: {ref} belongs to another agent",
            phone=ref,
            agent_id=frame.get("agent_id"),
        )
        return
    session.state.phones[key] = session
    agent.channels[key] = ref
    kind = frame.get("type", "phone")
    session.emit({"event": "channel.added", "agent_id": agent.wire_id, "type": kind, "ref": ref})


def on_channel_remove(session: Session, frame: dict[str, Any]) -> None:
    agent, ref = own_agent(session, frame), frame.get("ref")
    if agent is None or not isinstance(ref, str):
        return
    key = phone_key(ref)
    agent.channels.pop(key, None)
    if session.state.phones.get(key) is session and not any(
        key in other.channels for other in session.agents.values()
    ):
        del session.state.phones[key]
    session.emit({"event": "channel.removed", "agent_id": agent.wire_id, "ref": ref})


def release_session(session: Session) -> None:
    """Free every agent id and phone number held by a closed session."""
    state = session.state
    for slug in session.agents:
        if state.agents.get(slug) is session:
            del state.agents[slug]
    for key in [k for k, holder in state.phones.items() if holder is session]:
        del state.phones[key]
    session.agents.clear()
