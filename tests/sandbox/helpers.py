"""A raw ``websockets`` test client speaking JSON frames (no dependency on dispatch.sdk)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
from websockets.asyncio.client import ClientConnection, connect

from dispatch.sandbox import Sandbox

PHONE = "+15005550006"
Frame = dict[str, Any]


class RawClient:
    """A test client: ``send`` frames, ``recv``/``expect``/``until`` with timeouts."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout_s: float = 10.0) -> Frame:
        """The next JSON frame (non-JSON and ``sandbox.noise`` frames are skipped)."""
        with anyio.fail_after(timeout_s):
            while True:
                raw = await self.ws.recv()
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                if frame.get("event") != "sandbox.noise":
                    return dict(frame)

    async def expect(self, event: str, timeout_s: float = 10.0) -> Frame:
        frame = await self.recv(timeout_s)
        assert frame["event"] == event, frame
        return frame

    async def until(
        self, predicate: Callable[[Frame], bool], timeout_s: float = 20.0
    ) -> list[Frame]:
        """Frames up to and including the first one matching ``predicate``."""
        seen: list[Frame] = []
        with anyio.fail_after(timeout_s):
            while True:
                frame = await self.recv(timeout_s)
                seen.append(frame)
                if predicate(frame):
                    return seen

    async def handshake(self, api_key: str = "k") -> Frame:
        await self.send(event="connect", api_key=api_key)
        return await self.expect("connected")

    async def register(self, agent_id: str = "reminder", phone: str = PHONE, **config: Any) -> str:
        await self.send(event="agent.create", agent_id=agent_id, **config)
        created = await self.expect("agent.created")
        await self.send(event="channel.add", agent_id=agent_id, type="phone", ref=phone)
        await self.expect("channel.added")
        return str(created["agent_id"])

    async def dial(self, to: str, agent_id: str = "reminder", **extra: Any) -> None:
        await self.send(event="call.dial", agent_id=agent_id, to=to, **{"from": PHONE}, **extra)


def ended(call_id: str | None = None) -> Callable[[Frame], bool]:
    return lambda f: f["event"] == "call.ended" and call_id in (None, f["call_id"])


async def open_client(sandbox: Sandbox) -> RawClient:
    ws = await connect(sandbox.url + "/client", compression=None, ping_interval=None)
    return RawClient(ws)
