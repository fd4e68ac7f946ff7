"""Did the callee opt out during the call? Read the call's tool results and its
disposition for ``do_not_call`` / ``opt_out`` and the usual synonyms.

The hub asks :func:`is_opt_out` when a call ends (and for each tool result as it
arrives) and adds the number to the internal list *before* settling the outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["OPT_OUT_WORDS", "is_opt_out"]

#: normalised spellings (lower case, ``-``/space/``.`` → ``_``)
OPT_OUT_WORDS = frozenset({
    "do_not_call", "donotcall", "dnc", "opt_out", "optout", "opted_out", "unsubscribe",
    "unsubscribed", "remove_me", "remove_from_list", "stop_calling", "dont_call", "do_not_contact",
})
#: keys whose *value* names what happened
_NAME_KEYS = ("name", "tool", "disposition", "action", "status", "result", "outcome", "intent")
_SEPARATORS = re.compile(r"[\s\-.']+")
_MAX_DEPTH = 3


def _word(text: str) -> str:
    return _SEPARATORS.sub("_", text.strip().lower()).strip("_")


def _says_opt_out(value: object, depth: int = 0) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, str):
        return _word(value) in OPT_OUT_WORDS
    if isinstance(value, Mapping):
        for key, item in value.items():
            # {"opt_out": true}, {"do_not_call": "yes"}
            if isinstance(key, str) and _word(key) in OPT_OUT_WORDS and item not in (
                    False, None, "", 0, "false", "no"):
                return True
            if key in _NAME_KEYS and _says_opt_out(item, depth + 1):
                return True
        return False
    if isinstance(value, list | tuple):
        return any(_says_opt_out(item, depth + 1) for item in value)
    return False


def is_opt_out(tool_results: Iterable[object] = (), disposition: str | None = None) -> bool:
    """True when the disposition or any tool result says the callee opted out.

    Case-insensitive; ``"Do-Not-Call"``, ``"opt out"``, ``{"name": "opt_out"}``,
    ``{"result": {"disposition": "DNC"}}`` and ``{"opt_out": True}`` all count. Free
    text is not parsed ("please don't call me" in a transcript is the agent's job to
    turn into the ``opt_out`` tool)."""
    if disposition is not None and _says_opt_out(disposition):
        return True
    return any(_says_opt_out(result) for result in tool_results)
