"""Adapter from a ``websockets`` server connection to the SDK's :class:`Connection`.

The sandbox's session code only knows :class:`~dispatch.sdk.transport.Connection`,
so the same code serves real sockets and ``MemoryTransport``. ``ConnectionClosed``
becomes :class:`~dispatch.sdk.transport.TransportClosed` with the close code and
reason; binary frames are ignored (the protocol is text-only).
"""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from dispatch.sdk.transport import TransportClosed

__all__ = ["WebSocketServerConnection"]


def _closed(exc: ConnectionClosed) -> TransportClosed:
    frame = exc.rcvd or exc.sent
    if frame is None:
        return TransportClosed(1006, "")
    return TransportClosed(frame.code, frame.reason)


class WebSocketServerConnection:
    """A :class:`~dispatch.sdk.transport.Connection` over a websockets server connection."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws

    async def send(self, text: str) -> None:
        try:
            await self.ws.send(text)
        except ConnectionClosed as exc:
            raise _closed(exc) from None

    async def recv(self) -> str:
        while True:
            try:
                message = await self.ws.recv()
            except ConnectionClosed as exc:
                raise _closed(exc) from None
            if isinstance(message, str):
                return message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self.ws.close(code, reason)
