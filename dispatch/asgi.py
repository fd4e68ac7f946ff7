"""One way to serve an ASGI app (Starlette) with uvicorn inside an anyio task tree.

Used by the webhook intake, the control plane and the daemon. Three things uvicorn
does not do for an embedded server, done here once:

- the socket is bound here, so a port in use is an ``OSError`` naming the address
  (uvicorn would log it and ``sys.exit``);
- uvicorn's own SIGINT/SIGTERM handlers stay off: the host process owns its signals
  (the daemon drains on SIGTERM);
- cancelling the task asks uvicorn to exit (``should_exit``) and waits for it,
  shielded: a cancelled ``Server.serve`` leaves its listener registered with the event
  loop, and the next server on that port then hangs.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus

__all__ = ["bind_socket", "serve_asgi"]

_STARTUP_POLL_S = 0.01


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host process owns its signals

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        pass


def bind_socket(host: str, port: int, what: str = "http server") -> socket.socket:
    """A TCP socket bound to ``host:port`` (``0``: any free port) for :func:`serve_asgi`;
    ``OSError`` naming ``what`` and the address when it cannot be bound."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"{what} cannot listen on {host}:{port}: "
                      f"{exc.strerror}") from None
    return sock


async def serve_asgi(
    app: Any, sock: socket.socket, *, what: str = "http server",
    graceful_s: float = 5.0, limit_concurrency: int | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``sock`` (from :func:`bind_socket`; closed here) until cancelled.

    Reports the bound port once uvicorn listens. On cancellation open requests get
    ``graceful_s`` seconds, then the server is closed.
    """
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                            ws="none", server_header=False, date_header=False,
                            timeout_graceful_shutdown=max(1, round(graceful_s)),
                            limit_concurrency=limit_concurrency)
    server = _EmbeddedServer(config)
    ended = anyio.Event()

    async def _serve() -> None:
        try:
            with anyio.CancelScope(shield=True):  # ended by should_exit, never cancelled
                await server.serve([sock])
        finally:
            ended.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_serve, name=what)
            try:
                while not server.started and not ended.is_set():  # noqa: ASYNC110
                    await anyio.sleep(_STARTUP_POLL_S)  # uvicorn has no started event
                if not server.started:
                    raise OSError(f"{what} on {sock.getsockname()} did not start")
                task_status.started(int(sock.getsockname()[1]))
                await anyio.sleep_forever()
            finally:
                server.should_exit = True
                with anyio.CancelScope(shield=True):
                    with anyio.move_on_after(graceful_s + 1.0):
                        await ended.wait()
                    server.force_exit = True
                    await ended.wait()
    finally:
        sock.close()
