"""Hosting ``dispatch.control``'s Starlette app with uvicorn in the daemon's task tree.

uvicorn's own signal handling is switched off: the daemon owns SIGTERM and SIGHUP.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import anyio
import uvicorn

# absent on a build without the control plane: the daemon then skips it
from dispatch.control import (  # type: ignore[import-not-found, unused-ignore]
    check_bind,
    create_app,
)
from dispatch.daemon.voice import FatalError

__all__ = ["serve_control"]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon handles signals

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass


async def serve_control(daemon: Any, host: str, port: int, token: str | None, *,
                        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
                        ) -> None:
    """Serve until cancelled, then shut uvicorn down cleanly (its socket closed, open
    requests given up to 5 s). ``check_bind`` refuses a non-loopback bind without a token."""
    check_bind(host, token)
    app = create_app(daemon, token=token)
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                    lifespan="off"))
    stopped = anyio.Event()

    async def serve() -> None:
        try:
            with anyio.CancelScope(shield=True):  # stopped by should_exit, not cancelled
                await server.serve()
        except SystemExit:  # uvicorn exits when it cannot listen (it logged why)
            raise FatalError(f"control.bind {host}:{port}: cannot listen there (address in "
                             "use or not local?)", 2) from None
        finally:
            stopped.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, name="control plane")
        task_status.started()
        try:
            await anyio.sleep_forever()
        finally:
            server.should_exit = True
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(5.0):
                    await stopped.wait()
                server.force_exit = True  # requests still open after 5 s are dropped
                await stopped.wait()
