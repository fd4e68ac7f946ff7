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
    """Run until cancelled; ``check_bind`` refuses a non-loopback bind without a token."""
    check_bind(host, token)
    app = create_app(daemon, token=token)
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                    lifespan="off"))
    task_status.started()
    try:
        await server.serve()
    finally:
        server.should_exit = True
