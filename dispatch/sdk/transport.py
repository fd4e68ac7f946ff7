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


#: frames one direction of an in-memory connection buffers before ``send`` waits,
#: as a socket's buffers make a writer wait for a reader that falls behind
MEMORY_BUFFER_FRAMES = 1024


class _Closing:
    """How one direction of an in-memory pair was closed (read by the far side)."""

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed: TransportClosed | None = None


class MemoryConnection:
    """One side of an in-memory connection (see :func:`memory_pair`)."""

    def __init__(
        self,
        send_stream: MemoryObjectSendStream[str],
        receive_stream: MemoryObjectReceiveStream[str],
        outgoing: _Closing,
        incoming: _Closing,
    ) -> None:
        self._send = send_stream
        self._recv = receive_stream
        self._closed: TransportClosed | None = None
        self._outgoing = outgoing  # our close, for the peer
        self._incoming = incoming  # the peer's close, for us

    async def send(self, text: str) -> None:
        if self._closed is not None:
            raise self._closed
        try:
            await self._send.send(text)  # waits while the peer's buffer is full
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            # the peer is gone; what it sent before is still there for recv
            self._send.close()
            raise self._peer_close() from None

    async def recv(self) -> str:
        if self._closed is not None:
            raise self._closed
        try:
            return await self._recv.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            # what was sent before the close has been read: now the close itself
            self._closed = self._closed or self._peer_close()
            self._release()
            raise self._closed from None

    def _peer_close(self) -> TransportClosed:
        closed = self._incoming.closed
        return TransportClosed(closed.code, closed.reason) if closed else TransportClosed(1006)

    def _release(self) -> None:
        # close both stream ends so none is left for the GC to warn about
        self._send.close()
        self._recv.close()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is not None:
            return
        self._closed = TransportClosed(code, reason)
        self._outgoing.closed = TransportClosed(code, reason)
        self._release()


def memory_pair(buffer_frames: int = MEMORY_BUFFER_FRAMES,
                ) -> tuple[MemoryConnection, MemoryConnection]:
    """Two connected in-memory connections (client side, server side); each direction
    buffers ``buffer_frames`` frames, then its ``send`` waits for the reader."""
    if buffer_frames < 1:
        raise ValueError(f"buffer_frames must be >= 1, got {buffer_frames}")
    a_send, b_recv = anyio.create_memory_object_stream[str](buffer_frames)
    b_send, a_recv = anyio.create_memory_object_stream[str](buffer_frames)
    a_to_b, b_to_a = _Closing(), _Closing()
    return (MemoryConnection(a_send, a_recv, outgoing=a_to_b, incoming=b_to_a),
            MemoryConnection(b_send, b_recv, outgoing=b_to_a, incoming=a_to_b))


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
