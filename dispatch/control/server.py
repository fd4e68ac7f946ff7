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

import contextlib
from collections.abc import Iterator
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus

from dispatch.control.auth import check_bind

__all__ = ["ControlServer"]

_STARTUP_POLL_S = 0.01


class _QuietServer(uvicorn.Server):  # type: ignore[misc]
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host process owns its signals


class ControlServer:
    """uvicorn on ``host:port`` (``port=0``: any free port) for one ASGI app.

    Refuses (:class:`~dispatch.control.BindRefused`) a non-loopback ``host`` unless
    ``token_set`` says the app requires a token.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8765, *,
                 token_set: bool = False, startup_timeout_s: float = 30.0) -> None:
        check_bind(host, "set" if token_set else None)
        self._server = _QuietServer(uvicorn.Config(
            app, host=host, port=port, lifespan="off", ws="none", log_level="warning",
            access_log=False))
        self._startup_timeout_s = startup_timeout_s
        self._failed = False

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    def bound_port(self) -> int:
        """The port actually bound (after start)."""
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    async def run(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`stop`; reports ``http://host:port`` once listening.

        Raises ``OSError`` when the address cannot be bound (uvicorn exits instead of
        listening: reported here rather than as a silent exit).
        """
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._serve)
                await self._wait_started()
                host = self._server.config.host
                task_status.started(f"http://{host}:{self.bound_port()}")
        except ExceptionGroup as group:  # one task failed: raise its error, not a group
            bind_errors = group.subgroup(OSError)
            if bind_errors is not None and len(bind_errors.exceptions) == 1:
                raise bind_errors.exceptions[0] from None
            raise

    async def _wait_started(self) -> None:
        with anyio.fail_after(self._startup_timeout_s):
            while not self._server.started:  # uvicorn has no started event: poll
                if self._failed:
                    raise OSError(f"cannot listen on {self._server.config.host}:"
                                  f"{self._server.config.port}")
                await anyio.sleep(_STARTUP_POLL_S)

    async def _serve(self) -> None:
        try:
            await self._server.serve()
        except SystemExit:  # uvicorn's answer to a bind error
            self._failed = True
            raise OSError(f"cannot listen on {self._server.config.host}:"
                          f"{self._server.config.port}") from None
        if not self._server.started:
            self._failed = True

    def stop(self) -> None:
        """Ask uvicorn to exit (it finishes open requests first)."""
        self._server.should_exit = True
