"""Named events with sync or async handlers that can never hurt the emitter.

A sync handler runs inline; an async one is started in the owner's task group
(through the ``spawn`` callable). A handler that raises is logged and forgotten.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from dispatch.log import get_logger

__all__ = ["AsyncFn", "Emitter", "Handler", "run_handler"]

Handler = Callable[[Any], Any]
AsyncFn = Callable[[], Coroutine[Any, Any, None]]
Spawn = Callable[[AsyncFn], None]

_log = get_logger("dispatch.sdk")


class Emitter:
    """``on(name, handler)`` / ``off`` / ``emit(name, payload)``."""

    def __init__(self, spawn: Spawn, owner: str) -> None:
        self._spawn = spawn
        self._owner = owner
        self._handlers: dict[str, list[Handler]] = {}

    def on(self, name: str, handler: Handler) -> Handler:
        """Register ``handler(payload)`` for ``name``; returns it (usable as a decorator)."""
        self._handlers.setdefault(name, []).append(handler)
        return handler

    def off(self, name: str, handler: Handler) -> None:
        """Remove ``handler`` (no error when it was not registered)."""
        handlers = self._handlers.get(name)
        if handlers and handler in handlers:
            handlers.remove(handler)

    def has(self, name: str) -> bool:
        return bool(self._handlers.get(name))

    def emit(self, name: str, payload: Any) -> None:
        """Call every handler of ``name``; never raises."""
        handlers = self._handlers.get(name)
        if not handlers:
            return
        for handler in tuple(handlers):
            run_handler(handler, payload, self._spawn, f"{self._owner}:{name}")


def run_handler(handler: Handler, payload: Any, spawn: Spawn, label: str) -> None:
    """Run one handler: inline when sync, in ``spawn`` when it returns an awaitable."""
    try:
        result = handler(payload)
    except Exception:
        _log.exception("event handler raised", handler_of=label)
        return
    if inspect.isawaitable(result):
        spawn(_guarded(result, label))


def _guarded(awaitable: Awaitable[Any], label: str) -> AsyncFn:
    async def runner() -> None:
        try:
            await awaitable
        except Exception:
            _log.exception("event handler raised", handler_of=label)

    return runner
