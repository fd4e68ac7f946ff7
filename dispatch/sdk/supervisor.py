"""The connection supervisor: connect, serve, settle, back off, reconnect.

It runs as one task in the client's task group. On every drop it settles what
depended on the socket *synchronously* (so it also happens under cancellation):
pending dials raise :class:`ConnectionLost`, live calls end with reason
``disconnected`` (raw: the close reason or ``connection_lost``), waiting requests
fail, agents go back to unregistered; then the client emits ``disconnected`` and a
``call.ended`` per call, so no dispatcher slot leaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from dispatch.log import get_logger, redact
from dispatch.reasons import Reason
from dispatch.sdk.backoff import reconnect_delay_s
from dispatch.sdk.errcopy import clone_error
from dispatch.sdk.errors import (
    AuthenticationError,
    ConnectionLost,
    NotConnected,
    PinecallConnectionError,
    PinecallError,
)
from dispatch.sdk.session import Closed, Session, open_connection
from dispatch.sdk.transport import Connection

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from dispatch.sdk.client import Pinecall

__all__ = ["DISPLACED_CLOSE_CODE", "Supervisor"]

DISPLACED_CLOSE_CODE = 4001
_log = get_logger("dispatch.sdk")


class Supervisor:
    """Owns the connect/serve/reconnect loop of one :class:`Pinecall`."""

    def __init__(self, client: Pinecall) -> None:
        self._client = client
        self.state = "idle"
        self._fatal: PinecallError | None = None
        self._first = anyio.Event()
        self._first_error: PinecallError | None = None
        self._done = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._stopping = False

    def start(self, tg: TaskGroup) -> None:
        self.state = "connecting"
        self._fatal = self._first_error = None
        self._first, self._done = anyio.Event(), anyio.Event()
        self._stopping = False
        tg.start_soon(self.run)

    async def wait_first_outcome(self) -> None:
        await self._first.wait()
        if self._first_error is not None:
            raise clone_error(self._first_error)

    def raise_if_unusable(self) -> None:
        if self._fatal is not None:
            raise clone_error(self._fatal)
        if self._client._closed or self.state in ("closed", "idle"):
            raise NotConnected("client is not running (closed or never connected)")

    async def stop(self) -> None:
        """Close the socket (or abort connecting) and wait for the loop to end."""
        self._stopping = True
        session = self._client.session
        if session is not None:
            await session.stop(1000, "client_disconnect")
        elif self._scope is not None:
            self._scope.cancel()
        await self._done.wait()

    async def run(self) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                await self._loop()
        finally:
            if self.state != "failed":
                self.state = "closed"
            self._first.set()
            self._done.set()
            self._wake_agents()

    async def _loop(self) -> None:
        attempt, reconnect = 0, False
        while True:
            self.state = "reconnecting" if reconnect else "connecting"
            try:
                conn, org_id = await open_connection(
                    self._client.transport, self._client.url, self._client._api_key,
                    self._client.connect_timeout_s, self._client.handshake_timeout_s)
            except AuthenticationError as exc:
                return self._give_up(exc)
            except PinecallConnectionError as exc:
                if not reconnect:
                    return self._give_up(exc)
                self._client.events.emit("error", exc)
            else:
                attempt = 0
                closed = await self._serve(conn, org_id, reconnect)
                reconnect = True
                if self._should_stop(closed):
                    return None
            await self._back_off(attempt)
            attempt += 1

    def _should_stop(self, closed: Closed) -> bool:
        if closed.code == DISPLACED_CLOSE_CODE or "displaced" in closed.reason.lower():
            self._fatal = NotConnected(f"connection displaced ({closed.reason})",
                                       code="DISPLACED")
            self.state = "failed"
            self._client.events.emit("error", self._fatal)
            return True
        return self._stopping or not self._client.auto_reconnect

    def _give_up(self, error: PinecallError) -> None:
        _log.warning("connection failed; giving up", error=str(error), code=error.code)
        self._fatal = error
        self.state = "failed"
        if self._first.is_set():
            self._client.events.emit("error", error)
        else:
            self._first_error = error

    async def _back_off(self, attempt: int) -> None:
        delay = reconnect_delay_s(attempt, base_s=self._client.reconnect_base_s,
                                  max_s=self._client.reconnect_max_s)
        self.state = "reconnecting"
        self._client.events.emit("reconnecting", {"attempt": attempt + 1, "delay_s": delay})
        await anyio.sleep(delay)

    async def _serve(self, conn: Connection, org_id: str | None, reconnect: bool) -> Closed:
        client = self._client
        session = Session(conn, org_id, client.book,
                          client.ping_interval_s, client.pong_timeout_s)
        client.session, client.org_id = session, org_id
        self.state = "connected"
        self._first.set()
        closed = Closed(1000, "client_disconnect", local=True)
        try:
            client.events.emit("connected", {"org_id": org_id, "reconnect": reconnect})
            for agent in list(client.agents.values()):
                try:
                    agent.register()
                except PinecallError as exc:  # validated in Pinecall.agent: not expected
                    _log.error("agent.create not sent", agent_id=agent.id, error=str(exc))
            closed = await session.run(client.route)
        finally:
            client.session = None
            session.open = False
            self._settle(closed)
        return closed

    def _settle(self, closed: Closed) -> None:
        client = self._client
        raw = redact(closed.reason) or ("client_disconnect" if closed.local else "connection_lost")
        dials = list(client.book.drain())
        for dial in dials:
            dial.fail(ConnectionLost(f"connection lost while dialling {dial.to} ({raw})",
                                     code="CONNECTION_LOST"))
        ended = [c for c in client.calls.values() if c.end(raw, reason=Reason.DISCONNECTED)]
        client.calls.clear()
        client.requests.fail_all(raw)
        self._wake_agents(reset=True)
        _log.info("disconnected", code=closed.code, reason=raw, calls=len(ended),
                  dials=len(dials))
        client.events.emit("disconnected", {
            "code": closed.code, "reason": raw, "call_ids": [c.id for c in ended],
            "dials_failed": len(dials)})
        for call in ended:
            client.emit_call_event("call.ended", call)

    def _wake_agents(self, reset: bool = False) -> None:
        for agent in self._client.agents.values():
            if reset:
                agent.reset()
            else:
                agent.notify()
