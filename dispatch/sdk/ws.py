"""The real transport: a ``websockets`` client connection behind :class:`Connection`.

websockets' own keepalive pings are disabled (the client runs its own ping with a
pong deadline) and compression is off (small JSON frames, CPU matters more).
Close and I/O failures surface as :class:`TransportClosed`; ``connect`` failures as
``OSError`` / ``TimeoutError``, which the client translates into its error tree.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from dispatch.log import secret_safe_logger
from dispatch.sdk.transport import Connection, TransportClosed

__all__ = ["WebSocketConnection", "WebSocketTransport"]

#: The logger handed to websockets (it would otherwise use ``websockets.client``).
WS_LOGGER = secret_safe_logger("dispatch.sdk.websockets")


class WebSocketConnection:
    """A :class:`Connection` over one ``websockets`` client connection."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        try:
            await self._ws.send(text)
        except ConnectionClosed as exc:
            raise _closed(exc) from exc
        except OSError as exc:
            raise TransportClosed(1006, "") from exc

    async def recv(self) -> str:
        while True:
            try:
                message = await self._ws.recv()
            except ConnectionClosed as exc:
                raise _closed(exc) from exc
            except OSError as exc:
                raise TransportClosed(1006, "") from exc
            if isinstance(message, str):
                return message
            # binary frames are not part of /client: ignored

    async def close(self, code: int = 1000, reason: str = "") -> None:
        try:
            await self._ws.close(code, reason)
        except (ConnectionClosed, OSError):
            pass


def _closed(exc: ConnectionClosed) -> TransportClosed:
    if exc.rcvd is not None:
        return TransportClosed(exc.rcvd.code, exc.rcvd.reason)
    if exc.sent is not None:
        return TransportClosed(exc.sent.code, exc.sent.reason)
    return TransportClosed(1006, "")


class WebSocketTransport:
    """Opens real WebSocket connections. Extra keyword arguments go to ``websockets``."""

    def __init__(self, **options: Any) -> None:
        self._options: dict[str, Any] = {
            "ping_interval": None,
            "compression": None,
            "max_size": 16 * 2**20,
            "max_queue": 1024,
            "close_timeout": 2.0,
            "user_agent_header": "dispatch-pinecall",
            "logger": WS_LOGGER,
            **options,
        }

    async def connect(self, url: str, timeout_s: float) -> Connection:
        """Open ``url``; raises ``TimeoutError`` or ``OSError`` (refused, bad URL, bad upgrade)."""
        try:
            ws = await connect(url, open_timeout=timeout_s, **self._options)
        except InvalidURI as exc:
            raise OSError(f"invalid URL: {exc}") from exc
        except InvalidHandshake as exc:
            raise OSError(f"WebSocket upgrade refused: {exc}") from exc
        return WebSocketConnection(ws)
