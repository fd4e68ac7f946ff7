"""One live connection: handshake, then reader, writer and pinger tasks.

The writer drains an unbounded in-memory queue in order, so frames leave in the
order they were produced without any lock. A dial is entered into the correlation
book right before its frame is written (the answer may be read before ``send``
returns) and its timeout starts once the write completed. Its rate token (if any) is
spent in that same step, with no ``await`` between it and the write, and released
for a dial that is skipped or still queued when the connection ends. When the
connection ends, its queue is dropped: nothing is replayed on the next connection.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup

from dispatch.log import get_logger
from dispatch.sdk.dialing import DialBook, PendingDial
from dispatch.sdk.emitter import AsyncFn
from dispatch.sdk.errors import (
    AuthenticationError,
    ConnectTimeout,
    PinecallConnectionError,
)
from dispatch.sdk.transport import Connection, Transport, TransportClosed
from dispatch.sdk.wire import decode, encode
from dispatch.streams import bursts

__all__ = ["Closed", "Session", "open_connection"]

_log = get_logger("dispatch.sdk.session")

TRANSIENT_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
Router = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Closed:
    """How a session ended: WebSocket close ``code`` and ``reason`` text."""

    code: int
    reason: str
    local: bool = False


async def open_connection(
    transport: Transport, url: str, api_key: str, connect_timeout_s: float,
    handshake_timeout_s: float,
) -> tuple[Connection, str | None]:
    """Open the socket and complete the handshake; returns ``(connection, org_id)``.

    Raises :class:`AuthenticationError` (``error`` frame, or a non-transient close before
    ``connected``), :class:`ConnectTimeout`, or :class:`PinecallConnectionError`.
    """
    try:
        with anyio.fail_after(connect_timeout_s):
            conn = await transport.connect(url, connect_timeout_s)
    except TimeoutError as exc:
        raise ConnectTimeout(f"no connection to {url} within {connect_timeout_s} s") from exc
    except OSError as exc:
        raise PinecallConnectionError(f"cannot connect to {url}: {exc}") from exc
    try:
        org_id = await _handshake(conn, api_key, handshake_timeout_s)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await conn.close(1000, "handshake failed")
        raise
    return conn, org_id


async def _handshake(conn: Connection, api_key: str, timeout_s: float) -> str | None:
    try:
        with anyio.fail_after(timeout_s):
            await conn.send(encode({"event": "connect", "api_key": api_key}))
            while True:
                frame = decode(await conn.recv())
                event = frame.get("event") if frame else None
                if event == "connected":
                    org = frame.get("org_id") if frame else None
                    return org if isinstance(org, str) else None
                if event == "error" and frame is not None:
                    text = frame.get("error") or frame.get("message") or "authentication failed"
                    raise AuthenticationError(_scrub(str(text), api_key), code=frame.get("code"))
                if event == "ping":
                    await conn.send(encode({"event": "pong"}))
    except TimeoutError as exc:
        raise ConnectTimeout(f"no `connected` frame within {timeout_s} s") from exc
    except TransportClosed as exc:
        text = f"server closed the connection before `connected` ({exc.code} {exc.reason})"
        text = _scrub(text, api_key)
        if exc.code in TRANSIENT_CLOSE_CODES:
            raise PinecallConnectionError(text) from exc
        raise AuthenticationError(text.strip()) from exc


def _scrub(text: str, api_key: str) -> str:
    """Server text may echo the key it refused: never let it into an exception."""
    return text.replace(api_key, "***") if api_key else text


class Session:
    """A connected socket. ``run`` serves it until it closes; ``send`` never blocks."""

    def __init__(self, conn: Connection, org_id: str | None, book: DialBook,
                 ping_interval_s: float, pong_timeout_s: float) -> None:
        self.conn = conn
        self.org_id = org_id
        self.open = True
        self._book = book
        self._ping_interval_s = ping_interval_s
        self._pong_timeout_s = pong_timeout_s
        # bounded by its producers, not by the buffer: a dial frame is queued by a
        # caller that waits for its answer, and the other frames (pongs, call commands)
        # by live calls and pings; a socket that stops draining fails the pong deadline
        self._out_send, self._out_recv = anyio.create_memory_object_stream[
            tuple[str, PendingDial | None]](math.inf)
        self._tg: TaskGroup | None = None
        self._closed: Closed | None = None
        self._silent_since: float | None = None

    def send(self, frame: dict[str, Any]) -> None:
        """Queue ``frame`` for writing (raises ``TypeError``/``ValueError`` if not JSON)."""
        self._out_send.send_nowait((encode(frame), None))

    def send_dial(self, dial: PendingDial) -> None:
        """Queue a dial frame; the writer books and stamps it when it goes out."""
        self._out_send.send_nowait((encode(dial.frame), dial))

    def spawn(self, fn: AsyncFn) -> None:
        """Run ``fn`` for the life of this connection (cancelled when it closes)."""
        if self._tg is not None and self.open:
            self._tg.start_soon(fn)

    async def run(self, route: Router) -> Closed:
        """Serve the socket until it closes (or :meth:`stop`); returns how it ended."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._writer)
                tg.start_soon(self._pinger)
                await self._reader(route)
                tg.cancel_scope.cancel()
        finally:
            self.open = False
            self._book_unwritten_dials()
            self._out_send.close()
            self._out_recv.close()
        return self._closed or Closed(1006, "")

    def _book_unwritten_dials(self) -> None:
        """Dials still queued when the socket ended go into the book, so the supervisor
        settles them (``ConnectionLost``) like every other dial; never left hanging."""
        while True:
            try:
                _, dial = self._out_recv.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return
            if dial is not None:
                dial.release_token()  # never written
                if not dial.settled:
                    self._book.add_written(dial)

    async def stop(self, code: int, reason: str) -> None:
        """Close from this side; :meth:`run` returns ``Closed(code, reason, local=True)``."""
        self._finish(Closed(code, reason, local=True))
        with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
            await self.conn.close(code, reason)

    def _finish(self, closed: Closed) -> None:
        if self._closed is None:
            self._closed = closed
        self.open = False
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    async def _reader(self, route: Router) -> None:
        while True:
            try:
                text = await self.conn.recv()
            except TransportClosed as exc:
                self._finish(Closed(exc.code, exc.reason))
                return
            self._silent_since = None
            frame = decode(text)
            if frame is None:
                continue
            try:
                route(frame)
            except Exception:
                _log.exception("frame handler failed", frame_event=frame.get("event"))

    async def _writer(self) -> None:
        # frames already queued leave in one turn of the loop (a turn per frame would
        # cost more than the frame); one not taken stays queued for the book
        async with contextlib.aclosing(bursts(self._out_recv)) as items:
            async for text, dial in items:
                if not await self._write(text, dial):
                    return

    async def _write(self, text: str, dial: PendingDial | None) -> bool:
        """Write one frame; ``False`` once the socket is closed."""
        if dial is not None:
            if dial.settled:
                dial.release_token()
                return True  # the caller gave up before the frame left: never sent
            self._book.add_written(dial)
            dial.spend_token()  # the send instant: the pace is stamped now
        try:
            await self.conn.send(text)
        except TransportClosed as exc:
            self._finish(Closed(exc.code, exc.reason))
            return False
        if dial is not None:
            dial.mark_sent()
        return True

    async def _pinger(self) -> None:
        """Ping every interval; close when nothing came back within the pong deadline."""
        next_ping = time.monotonic() + self._ping_interval_s
        while True:
            now = time.monotonic()
            if self._silent_since is not None and now - self._silent_since >= self._pong_timeout_s:
                await self._close_silent(now - self._silent_since)
                return
            if now >= next_ping:
                if self._silent_since is None:
                    self._silent_since = now
                self.send({"event": "ping"})
                next_ping = now + self._ping_interval_s
            wake = next_ping
            if self._silent_since is not None:
                wake = min(wake, self._silent_since + self._pong_timeout_s)
            await anyio.sleep(max(0.0, wake - time.monotonic()))

    async def _close_silent(self, silent_s: float) -> None:
        _log.warning("no pong from the server; closing the socket", silent_s=round(silent_s, 1))
        self._finish(Closed(1006, "pong_timeout"))
        with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
            await self.conn.close(4000, "pong timeout")
