"""A small scripted ``/client`` server for unit tests (runs over MemoryTransport).

Auto-answers the handshake, registrations and pings; records every frame it gets;
places dials (``call.dialing`` in order) and lets the test drive each outcome.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio

from dispatch.sdk import Pinecall
from dispatch.sdk.transport import Connection, MemoryTransport, TransportClosed

Frame = dict[str, Any]
RegistrationHook = Callable[[Frame, int], list[Frame] | None]

API_KEY = "pk_test_s3cr3t_value"


class FakeServer:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        echo_id: Callable[[str], str] = lambda agent_id: agent_id,
        echo_metadata: bool = True,
        auto_dialing: bool = True,
        answer_pings: bool = True,
        handshake: bool = True,
        on_agent_create: RegistrationHook | None = None,
    ) -> None:
        self.api_key = api_key
        self.echo_id = echo_id
        self.echo_metadata = echo_metadata
        self.auto_dialing = auto_dialing
        self.answer_pings = answer_pings
        self.handshake = handshake
        self.on_agent_create = on_agent_create
        self.received: list[Frame] = []
        self.connections = 0
        self.dials: dict[str, Frame] = {}  # call_id -> call.dial frame
        self.creates = 0
        self._conn: Connection | None = None
        self._changed = anyio.Event()
        self._next_call = 0

    # -- test helpers --------------------------------------------------------------------

    def frames(self, event: str) -> list[Frame]:
        return [f for f in self.received if f.get("event") == event]

    async def wait_for(self, event: str, count: int = 1, timeout_s: float = 5.0) -> list[Frame]:
        """Wait until ``count`` frames named ``event`` were received; returns them all."""
        with anyio.fail_after(timeout_s):
            while len(self.frames(event)) < count:
                changed = self._changed
                await changed.wait()
        return self.frames(event)

    async def wait_connections(self, count: int, timeout_s: float = 5.0) -> None:
        with anyio.fail_after(timeout_s):
            while self.connections < count or self._conn is None:
                await self._changed.wait()

    async def send(self, frame: Frame) -> None:
        assert self._conn is not None, "no client connected"
        await self._conn.send(json.dumps(frame))

    async def drop(self, code: int = 1006, reason: str = "") -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close(code, reason)

    def call_id_for(self, attempt: str) -> str:
        for call_id, frame in self.dials.items():
            if frame["metadata"]["dispatch_attempt"] == attempt:
                return call_id
        raise KeyError(attempt)

    async def dialing(self, dial: Frame, *, echo: bool | None = None) -> str:
        self._next_call += 1
        call_id = f"CA{self._next_call:032x}"
        self.dials[call_id] = dial
        frame = {"event": "call.dialing", "agent_id": dial["agent_id"], "call_id": call_id,
                 "to": dial["to"], "from": dial["from"]}
        if self.echo_metadata if echo is None else echo:
            frame["metadata"] = dial.get("metadata")
        await self.send(frame)
        return call_id

    async def answer(self, call_id: str) -> None:
        dial = self.dials[call_id]
        await self.send({"event": "call.started", "agent_id": dial["agent_id"],
                         "call_id": call_id, "session_id": call_id, "from": dial["from"],
                         "to": dial["to"], "direction": "outbound", "transport": "phone"})

    async def end(self, call_id: str, reason: str, **extra: Any) -> None:
        dial = self.dials[call_id]
        await self.send({"event": "call.ended", "agent_id": dial["agent_id"],
                         "call_id": call_id, "session_id": call_id, "reason": reason,
                         "duration_seconds": 0, "direction": "outbound", "to": dial["to"],
                         "from": dial["from"], **extra})

    # -- the server ----------------------------------------------------------------------

    async def handle(self, conn: Connection) -> None:
        self.connections += 1
        try:
            if not await self._handshake(conn):
                return
            self._conn = conn
            self._notify()
            while True:
                frame = json.loads(await conn.recv())
                self.received.append(frame)
                self._notify()
                await self._auto_reply(frame)
        except TransportClosed:
            pass
        finally:
            if self._conn is conn:
                self._conn = None
            self._notify()

    async def _handshake(self, conn: Connection) -> bool:
        frame = json.loads(await conn.recv())
        self.received.append(frame)
        if not self.handshake:
            await anyio.sleep_forever()
        if self.api_key is not None and frame.get("api_key") != self.api_key:
            await conn.send(json.dumps({"event": "error", "code": "INVALID_KEY",
                                        "error": "invalid api key"}))
            await conn.close(1008, "invalid api key")
            return False
        await conn.send(json.dumps({"event": "connected", "org_id": "org_test"}))
        return True

    async def _auto_reply(self, frame: Frame) -> None:
        event = frame.get("event")
        if event == "ping" and self.answer_pings:
            await self.send({"event": "pong", "timestamp": 1.0})
        elif event == "agent.create":
            self.creates += 1
            replies = self.on_agent_create(frame, self.creates) if self.on_agent_create else None
            if replies is None:
                replies = [{"event": "agent.created", "agent_id": self.echo_id(frame["agent_id"])}]
            for reply in replies:
                await self.send(reply)
        elif event == "channel.add":
            await self.send({"event": "channel.added", "agent_id": self.echo_id(
                frame["agent_id"]), "type": "phone", "ref": frame["ref"]})
        elif event == "call.dial" and self.auto_dialing:
            await self.dialing(frame)

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()


@asynccontextmanager
async def connected(server: FakeServer, **options: Any) -> AsyncIterator[Pinecall]:
    """A connected client talking to ``server`` in memory."""
    options.setdefault("reconnect_base_s", 0.01)
    options.setdefault("reconnect_max_s", 0.05)
    async with anyio.create_task_group() as tg:
        transport = MemoryTransport(server.handle, tg)
        async with Pinecall(API_KEY, "ws://fake", transport=transport, **options) as pc:
            yield pc
        tg.cancel_scope.cancel()
