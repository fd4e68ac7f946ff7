"""The transport seam of the SDK: one narrow interface, two implementations.

``Transport.connect(url, timeout_s)`` returns a :class:`Connection` that sends and
receives text frames. :class:`WebSocketTransport` (in ``dispatch.sdk.ws``) is
the real one; :class:`MemoryTransport` connects the client straight to a server
handler in the same event loop (the sandbox accepts the same
:class:`Connection`), for unit tests of one layer.

Errors: ``recv``/``send`` raise :class:`TransportClosed` (with the close code and
reason) once the connection is closed from either side; ``connect`` raises
``OSError``/``TimeoutError``-derived errors that the client translates.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = [
    "Connection",
    "MemoryConnection",
    "MemoryTransport",
    "Transport",
    "TransportClosed",
    "memory_pair",
]


class TransportClosed(Exception):
    """The connection is closed. ``code``/``reason`` are the WebSocket close values."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


class Connection(Protocol):
    """One open, bidirectional stream of text frames."""

    async def send(self, text: str) -> None: ...

    async def recv(self) -> str: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Transport(Protocol):
    """Opens connections. ``url`` is the full endpoint (``.../client``)."""

    async def connect(self, url: str, timeout_s: float) -> Connection: ...


class MemoryConnection:
    """One side of an in-memory connection (see :func:`memory_pair`)."""

    def __init__(
        self,
        send_stream: MemoryObjectSendStream[str | TransportClosed],
        receive_stream: MemoryObjectReceiveStream[str | TransportClosed],
    ) -> None:
        self._send = send_stream
        self._recv = receive_stream
        self._closed: TransportClosed | None = None

    async def send(self, text: str) -> None:
        if self._closed is not None:
            raise self._closed
        try:
            await self._send.send(text)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self._closed = self._closed or TransportClosed(1006, "")
            self._release()
            raise self._closed from None

    async def recv(self) -> str:
        if self._closed is not None:
            raise self._closed
        try:
            item = await self._recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._closed = self._closed or TransportClosed(1006, "")
            self._release()
            raise self._closed from None
        if isinstance(item, TransportClosed):
            self._closed = item
            self._release()
            raise item
        return item

    def _release(self) -> None:
        # close both stream ends so none is left for the GC to warn about
        self._send.close()
        self._recv.close()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is not None:
            return
        self._closed = TransportClosed(code, reason)
        try:
            self._send.send_nowait(TransportClosed(code, reason))
        except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        self._release()


def memory_pair() -> tuple[MemoryConnection, MemoryConnection]:
    """Two connected in-memory connections (client side, server side)."""
    a_send, b_recv = anyio.create_memory_object_stream[str | TransportClosed](math.inf)
    b_send, a_recv = anyio.create_memory_object_stream[str | TransportClosed](math.inf)
    return MemoryConnection(a_send, a_recv), MemoryConnection(b_send, b_recv)


ServerHandler = Callable[[Connection], Awaitable[None]]


class MemoryTransport:
    """Connects a client to ``handler`` (e.g. ``sandbox.handle_connection``) in memory.

    Each ``connect`` spawns the handler in ``task_group`` with the server side of a
    fresh :func:`memory_pair`. The task group is the caller's, so nothing is orphaned.
    """

    def __init__(self, handler: ServerHandler, task_group: anyio.abc.TaskGroup) -> None:
        self._handler = handler
        self._tg = task_group

    async def connect(self, url: str, timeout_s: float) -> Connection:
        client, server = memory_pair()
        self._tg.start_soon(self._serve, server)
        return client

    async def _serve(self, server: MemoryConnection) -> None:
        try:
            await self._handler(server)
        finally:
            await server.close(1000, "")
