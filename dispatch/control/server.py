"""Hosting the control app with uvicorn inside the caller's task group.

``uvicorn.Server.serve`` replaces the process's SIGINT/SIGTERM handlers while it runs
(and re-raises them afterwards); a daemon that drains on SIGTERM must keep its own, so
:class:`ControlServer` leaves signals alone. Usage::

    async with anyio.create_task_group() as tg:
        server = ControlServer(create_app(target, token=token), host, port)
        url = await tg.start(server.run)   # listening once this returns
        ...
        server.stop()                       # run() returns after open requests end
"""

from __future__ import annotations

import functools
from typing import Any

import anyio
from anyio.abc import TaskStatus

from dispatch.asgi import bind_socket, serve_asgi
from dispatch.control.auth import check_bind

__all__ = ["ControlServer"]


class ControlServer:
    """uvicorn on ``host:port`` (``port=0``: any free port) for one ASGI app.

    Refuses (:class:`~dispatch.control.BindRefused`) a non-loopback ``host`` unless
    ``token_set`` says the app requires a token.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8765, *,
                 token_set: bool = False) -> None:
        check_bind(host, "set" if token_set else None)
        self._app, self._host, self._port = app, host, port
        self._bound: int | None = None
        self._scope: anyio.CancelScope | None = None
        self._stopped = False

    @property
    def started(self) -> bool:
        return self._bound is not None

    def bound_port(self) -> int:
        """The port actually bound (after start)."""
        if self._bound is None:
            raise RuntimeError("the control server is not listening")
        return self._bound

    async def run(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`stop` (or cancellation); reports ``http://host:port`` once
        listening. Raises ``OSError`` when the address cannot be bound."""
        sock = bind_socket(self._host, self._port, "control plane")
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._stopped:
                scope.cancel()
            async with anyio.create_task_group() as tg:
                self._bound = await tg.start(functools.partial(
                    serve_asgi, self._app, sock, what="control plane"))
                task_status.started(f"http://{self._host}:{self._bound}")

    def stop(self) -> None:
        """Ask uvicorn to exit (it finishes open requests first)."""
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()
