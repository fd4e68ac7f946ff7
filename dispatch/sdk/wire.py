"""Frame encoding helpers: compact JSON, unset keys dropped, agent-id matching (§2.3)."""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["compact", "decode", "encode", "slugify", "split_agent_id"]

_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODE = json.JSONDecoder().decode
_NOT_SLUG = re.compile(r"[^a-z0-9-]")
_DASHES = re.compile(r"-{2,}")

Frame = dict[str, Any]


def encode(frame: Frame) -> str:
    """One frame as compact JSON text (raises ``TypeError``/``ValueError`` when not JSON)."""
    return _ENCODER.encode(frame)


def decode(text: str | bytes) -> Frame | None:
    """Parse one text frame; ``None`` for binary, unparsable or non-object frames."""
    if not isinstance(text, str):
        return None
    try:
        value = _DECODE(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def compact(**fields: Any) -> Frame:
    """A frame from keyword fields with every ``None`` left out (never send null)."""
    return {k: v for k, v in fields.items() if v is not None}


def slugify(agent_id: str) -> str:
    """The server's slug of an agent id: ``"Lead Bot"`` -> ``"lead-bot"``."""
    text = agent_id.lower().replace(" ", "-").replace("_", "-")
    text = _DASHES.sub("-", _NOT_SLUG.sub("", text))
    return text.strip("-")


def split_agent_id(echoed: str) -> tuple[str, str]:
    """``(exact tail after the last ':', its slug)`` for ``org:slug`` echoes."""
    tail = echoed.rsplit(":", 1)[-1]
    return tail, slugify(tail)
