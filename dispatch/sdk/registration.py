"""``agent.create`` encoding (protocol §2.2): unset keys are left out, never null."""

from __future__ import annotations

from typing import Any

from dispatch.phone import is_dialable
from dispatch.sdk.errors import ConfigurationError
from dispatch.sdk.tools import Tool

__all__ = ["AGENT_FIELDS", "agent_create_frame", "expand_stt", "validate_phone_numbers"]

#: Keyword arguments of ``Pinecall.agent`` that map to ``agent.create`` keys, in wire order.
AGENT_FIELDS: dict[str, str] = {
    "voice": "voice",
    "language": "language",
    "flash": "flash",
    "stt": "stt",
    "interruption": "interruption",
    "llm": "llm",
    "prompt": "prompt",
    "prompt_vars": "vars",
    "greeting": "greeting",
    "greeting_in_chat": "greetingInChat",
    "memory": "memory",
    "timezone": "timezone",
    "preparing": "preparing",
    "raw_prompt": "raw_prompt",
    "tools": "tools",
    "skills": "skills",
    "session_limits": "session_limits",
    "config": "config",
    "knowledge_base": "knowledge_base",
    "mode": "mode",
    "media": "media",
    "allowed_origins": "allowed_origins",
}


def expand_stt(stt: Any) -> Any:
    """``"prov:model[:lang]"`` -> ``{provider, model, language?}``; anything else unchanged."""
    if not isinstance(stt, str) or ":" not in stt or "/" in stt:
        return stt
    parts = stt.split(":")
    out: dict[str, str] = {"provider": parts[0], "model": parts[1]}
    if len(parts) > 2 and parts[2]:
        out["language"] = parts[2]
    return out


def validate_phone_numbers(phone_number: str | list[str] | None) -> list[str]:
    """The agent's phone channels, each E.164 or ``sip:``; raises ConfigurationError."""
    if phone_number is None:
        return []
    numbers = [phone_number] if isinstance(phone_number, str) else list(phone_number)
    for number in numbers:
        if not is_dialable(number):
            raise ConfigurationError(
                f"Invalid phone number {number!r}: must be E.164 format (+, 7-15 digits)")
    return numbers


def agent_create_frame(agent_id: str, config: dict[str, Any], tools: list[Tool]) -> dict[str, Any]:
    """The ``agent.create`` frame. ``config`` holds ``Pinecall.agent`` keyword values;
    ``config["extra"]`` holds further wire keys, sent as given."""
    frame: dict[str, Any] = {"event": "agent.create", "agent_id": agent_id}
    for name, wire in AGENT_FIELDS.items():
        value: Any = [t.to_wire() for t in tools] or None if name == "tools" else config.get(name)
        if value is None:
            continue
        frame[wire] = expand_stt(value) if name == "stt" else value
    for key, value in config.get("extra", {}).items():
        if value is not None:
            frame[key] = value
    return frame
