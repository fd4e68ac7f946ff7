"""Hosting ``dispatch.control``'s Starlette app in the daemon's task tree (uvicorn,
signals left to the daemon: see :mod:`dispatch.asgi`)."""

from __future__ import annotations

import functools
import os
from typing import Any

import anyio
from anyio.abc import TaskStatus

from dispatch.asgi import bind_socket, serve_asgi
from dispatch.control import check_bind, create_app
from dispatch.daemon.voice import FatalError

__all__ = ["serve_control"]


async def serve_control(daemon: Any, host: str, port: int, token: str | None, *,
                        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
    """Serve until cancelled, then shut uvicorn down cleanly (open requests get 5 s).
    ``check_bind`` refuses a non-loopback bind without a token; an address that cannot
    be bound is a :class:`FatalError` (exit 2)."""
    check_bind(host, token)
    app = create_app(daemon, token=token)
    try:
        sock = bind_socket(host, port, "control plane")
    except OSError as exc:
        why = os.strerror(exc.errno) if exc.errno else str(exc)
        raise FatalError(f"control.bind {host}:{port}: cannot listen there ({why})", 2) from None
    async with anyio.create_task_group() as tg:
        await tg.start(functools.partial(serve_asgi, app, sock, what="control plane"))
        task_status.started()
