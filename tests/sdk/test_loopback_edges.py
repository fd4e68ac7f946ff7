"""Connection edge cases over a real loopback socket (sandbox or a tiny raw server).

Covers protocol §9.9 (connect never hangs), §9.11 (a timed-out handshake closes its
socket), §1.3 (close before ``connected``), §9.12 (pong deadline against the real
sandbox), the client event sequence, and refusals reported by the sandbox.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from websockets.asyncio.server import ServerConnection, serve

from dispatch.sandbox import Faults, Sandbox
from dispatch.sdk import (
    AuthenticationError,
    ConnectTimeout,
    DialFailed,
    Pinecall,
    PinecallConnectionError,
    Reason,
    RegistrationError,
)

pytestmark = pytest.mark.anyio
FROM = "+15005550006"
FAST = {"reconnect_base_s": 0.05, "reconnect_max_s": 0.2}
KEY = "pk_loopback_s3cret"


@asynccontextmanager
async def raw_server(handler: Callable[[ServerConnection], Awaitable[None]]
                     ) -> AsyncIterator[tuple[str, list[ServerConnection]]]:
    """A bare WebSocket server running ``handler``; yields (url, connections seen)."""
    seen: list[ServerConnection] = []

    async def wrapped(ws: ServerConnection) -> None:
        seen.append(ws)
        await handler(ws)

    async with serve(wrapped, "127.0.0.1", 0, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", seen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_connect_to_nothing_listening_fails_fast_without_hanging() -> None:
    pc = Pinecall(KEY, f"ws://127.0.0.1:{free_port()}", **FAST)
    with anyio.fail_after(10), pytest.raises(PinecallConnectionError) as info:
        await pc.connect()
    assert not isinstance(info.value, AuthenticationError)
    assert pc.state == "failed" and KEY not in str(info.value)
    await pc.close()


async def test_tcp_without_websocket_upgrade_is_a_connect_timeout() -> None:
    async def mute(stream: Any) -> None:
        async with stream:
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, mute)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        pc = Pinecall(KEY, f"ws://127.0.0.1:{port}", connect_timeout_s=0.3)
        with anyio.fail_after(10), pytest.raises(ConnectTimeout):
            await pc.connect()
        tg.cancel_scope.cancel()


async def test_handshake_timeout_closes_the_socket_it_opened() -> None:
    got_connect = anyio.Event()

    async def silent(ws: ServerConnection) -> None:
        await ws.recv()  # the `connect` frame; never answered
        got_connect.set()
        await ws.wait_closed()

    async with raw_server(silent) as (url, seen):
        pc = Pinecall(KEY, url, handshake_timeout_s=0.3)
        with anyio.fail_after(10), pytest.raises(ConnectTimeout):
            await pc.connect()
        assert got_connect.is_set() and len(seen) == 1
        with anyio.fail_after(10):
            await seen[0].wait_closed()  # no stale socket left open (§9.11)
        assert seen[0].close_code == 1000


@pytest.mark.parametrize(("code", "auth"), [(1008, True), (4003, True), (1011, False)])
async def test_close_before_connected(code: int, auth: bool) -> None:
    async def closer(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.close(code, f"refused {KEY}")

    async with raw_server(closer) as (url, seen):
        pc = Pinecall(KEY, url, **FAST)
        with anyio.fail_after(10), pytest.raises(PinecallConnectionError) as info:
            await pc.connect()
        assert isinstance(info.value, AuthenticationError) is auth
        assert str(code) in str(info.value) and KEY not in str(info.value)
        await anyio.sleep(0.3)  # FAST backoff would have retried several times by now
        assert len(seen) == 1 and pc.state == "failed"


async def test_error_frame_echoing_the_key_is_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def refuse(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(f'{{"event":"error","code":"INVALID_KEY","error":"bad key {KEY}"}}')
        await ws.close(1008, "invalid api key")

    async with raw_server(refuse) as (url, _):
        pc = Pinecall(KEY, url)
        with anyio.fail_after(10), pytest.raises(AuthenticationError) as info:
            await pc.connect()
    assert info.value.code == "INVALID_KEY" and "bad key ***" in str(info.value)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("websockets.server")]
    assert any("api_key" in m for m in ours), "frame dumps were logged (DEBUG)"
    assert not [m for m in ours if KEY in m] and KEY not in repr(pc)


async def test_events_and_pong_deadline_against_the_sandbox() -> None:
    faults = Faults(ignore_pings=True)
    async with Sandbox(speed=100, faults=faults, api_key=KEY) as sandbox:
        events: list[tuple[str, Any]] = []
        reconnected = anyio.Event()

        def on(name: str) -> Callable[[Any], None]:
            def handler(payload: Any) -> None:
                events.append((name, payload))
                if name == "connected" and payload["reconnect"]:
                    faults.ignore_pings = False
                    reconnected.set()
            return handler

        pc = Pinecall(KEY, sandbox.url, ping_interval_s=0.1, pong_timeout_s=0.3, **FAST)
        for name in ("connected", "disconnected", "reconnecting", "error"):
            pc.on(name, on(name))
        async with pc:
            agent = pc.agent("pong", phone_number=FROM)
            await agent.ready()
            with anyio.fail_after(20):
                await reconnected.wait()
                await agent.ready()
            assert pc.online
        await sandbox.wait_until(lambda s: s.connections == 0, timeout_s=10)
    names = [name for name, _ in events]
    assert names[:4] == ["connected", "disconnected", "reconnecting", "connected"]
    assert events[0][1] == {"org_id": events[0][1]["org_id"], "reconnect": False}
    assert events[1][1]["reason"] == "pong_timeout" and events[2][1]["attempt"] == 1
    assert names[-1] == "disconnected" and events[-1][1]["reason"] == "client_disconnect"


async def test_sandbox_refusals_surface_with_their_codes() -> None:
    faults = Faults(refuse_registrations="SERVER_AT_CAPACITY", refuse_count=1,
                    refuse_dials="RATE_LIMITED", refuse_dials_count=1)
    async with Sandbox(speed=100, faults=faults) as sandbox, \
            Pinecall(KEY, sandbox.url, **FAST) as pc:
        full = pc.agent("full", phone_number=FROM)
        with anyio.fail_after(10), pytest.raises(RegistrationError) as reg:
            await full.ready()
        assert reg.value.code == "SERVER_AT_CAPACITY" and reg.value.agent_id == "full"
        agent = pc.agent("limited", phone_number="+15005550007")
        with anyio.fail_after(10), pytest.raises(DialFailed) as info:
            await agent.dial("+15551230001", metadata={"k": "v"})
        # refuse: a rate refusal is typed at the SDK boundary (issue 9)
        assert info.value.code == "RATE_LIMITED"
        assert info.value.reason is Reason.PLATFORM_RATE_LIMITED
        assert info.value.to == "+15551230001" and not len(pc.book)
        call = await agent.dial("+15551230002")  # the next dial goes through
        await call.wait_ended()
        assert call.end_reason is Reason.HANGUP
