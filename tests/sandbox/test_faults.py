"""Fault injection: drops, refusals, noise, duplicate tool calls, silent pings."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import anyio
import pytest
from websockets.exceptions import ConnectionClosed

from dispatch.sandbox import Faults, Sandbox

from .helpers import RawClient, ended, open_client

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).with_name("reminder.toml")


async def closed_with(c: RawClient) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await c.recv()
    frame = info.value.rcvd
    assert frame is not None
    return frame.code, frame.reason


async def test_drop_after_n_frames_then_recover() -> None:
    faults = Faults(drop_after_frames=3, drop_code=1012, drop_reason="restart")
    async with Sandbox(speed=200, faults=faults) as sb:
        c = await open_client(sb)
        await c.handshake()  # frame 1
        await c.send(event="agent.create", agent_id="a")  # frame 2
        await c.send(event="ping")  # frame 3, then the drop
        await c.send(event="ping")
        assert [(await c.recv())["event"] for _ in range(2)] == ["agent.created", "pong"]
        assert await closed_with(c) == (1012, "restart")
        assert faults.drop_after_frames is None  # one-shot: disarmed
        again = await open_client(sb)
        await again.handshake()
        await again.send(event="agent.create", agent_id="a")  # the name was freed
        await again.expect("agent.created")
        await again.ws.close()


async def test_drop_after_dials_detaches_the_call() -> None:
    async with Sandbox(speed=200, faults=Faults(drop_after_dials=2)) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register()
        await c.dial("+15550000097")
        await c.dial("+15550000098")
        frames = await c.until(lambda f: f["event"] == "call.dialing" and f["to"] == "+15550000098")
        assert frames[-1]["event"] == "call.dialing"
        assert (await closed_with(c))[0] == 1011
        await sb.wait_until(lambda s: s.live_calls == 0)
        assert [d.outcome for d in sb.dials] == ["app_detached", "app_detached"]


async def test_drop_connections_now(sandbox: Sandbox, client: RawClient) -> None:
    await client.dial("+15550000095")
    await client.until(lambda f: f["event"] == "call.started")
    assert await sandbox.drop_connections(code=1013, reason="try again later") == 1
    assert await closed_with(client) == (1013, "try again later")
    assert sandbox.dials[-1].outcome == "app_detached"


@pytest.mark.parametrize(
    "code", ["SERVER_AT_CAPACITY", "REGISTRATION_ERROR", "AGENT_CONFLICT_FATAL", "AGENT_CONFLICT"]
)
async def test_refuse_registrations(code: str) -> None:
    faults = Faults(refuse_registrations=code, refuse_count=1)
    async with Sandbox(faults=faults) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.send(event="agent.create", agent_id="a")
        error = await c.expect("error")
        assert (error["code"], error["agent_id"]) == (code, "a")
        if code == "SERVER_AT_CAPACITY":
            assert error["error"].startswith("SERVER_AT_CAPACITY:")
            assert error["used"] == error["limit"]
        await c.send(event="agent.create", agent_id="a")  # count used up
        await c.expect("agent.created")
        await c.ws.close()


async def test_refuse_dials(sandbox: Sandbox, client: RawClient) -> None:
    sandbox.faults.refuse_dials = "RATE_LIMITED"
    await client.dial("+15550000001")
    assert (await client.expect("call.error"))["code"] == "RATE_LIMITED"


async def test_noise_and_garbage_frames(sandbox: Sandbox, client: RawClient) -> None:
    sandbox.faults.unknown_events = True
    sandbox.faults.garbage_frames = True
    await client.send(event="ping")
    raw = [await client.ws.recv() for _ in range(3)]
    assert json.loads(raw[0])["event"] == "sandbox.noise"
    assert raw[1] == "this is not json {"
    assert json.loads(raw[2])["event"] == "pong"


async def test_frame_delay(sandbox: Sandbox, client: RawClient) -> None:
    sandbox.faults.frame_delay_s = 0.05
    await client.send(event="ping")
    before = anyio.current_time()
    await client.expect("pong")
    assert anyio.current_time() - before >= 0.04


async def test_ignore_pings(sandbox: Sandbox, client: RawClient) -> None:
    sandbox.faults.ignore_pings = True
    await client.send(event="ping")
    with pytest.raises(TimeoutError):
        await client.recv(timeout_s=0.3)
    sandbox.faults.ignore_pings = False
    await client.send(event="ping")
    await client.expect("pong")


async def test_duplicate_tool_calls_counts_duplicate_results() -> None:
    async with Sandbox(scenario=EXAMPLE, speed=200, faults=Faults(duplicate_tool_calls=True)) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register()
        await c.dial("+15550100002")
        frames = await c.until(lambda f: f["event"] == "llm.tool_call")
        second = await c.expect("llm.tool_call")
        assert second == frames[-1]  # same msg_id, same tool call
        result = {
            "event": "llm.tool_result",
            "call_id": second["call_id"],
            "msg_id": second["msg_id"],
            "results": [{"tool_call_id": second["tool_calls"][0]["id"], "result": "ok"}],
        }
        await c.send(**result)
        await c.send(**result)  # a client that does not dedupe
        await c.until(ended())
        assert sb.statistics().duplicate_tool_results == 1
        assert sb.dials[-1].tool_results[0]["result"] == "ok"
        await c.ws.close()


async def test_server_pings() -> None:
    async with Sandbox(ping_interval_s=0.05) as sb:
        c = await open_client(sb)
        await c.handshake()
        assert (await c.recv(timeout_s=5))["event"] == "ping"
        await c.send(event="pong")
        await c.ws.close()


async def test_handshake_timeout_closes_1008() -> None:
    async with Sandbox(handshake_timeout_s=0.1) as sb:
        c = await open_client(sb)
        assert await closed_with(c) == (1008, "handshake timeout")


async def test_drop_after_seconds() -> None:
    async with Sandbox(faults=Faults(drop_after_s=0.1, drop_code=1001, drop_reason="bye")) as sb:
        c = await open_client(sb)
        await c.handshake()
        assert await closed_with(c) == (1001, "bye")
        assert sb.faults.drop_after_s is None
        await sb.wait_until(lambda s: s.connections == 0)


async def test_a_client_that_stops_reading_is_closed_when_its_outbox_fills() -> None:
    from dispatch.sdk.transport import TransportClosed, memory_pair

    sb = Sandbox(speed=500)
    sb.state.max_outbox_frames = 5
    client, server = memory_pair(buffer_frames=1)  # the socket's buffers are full at once
    async with anyio.create_task_group() as tg:
        tg.start_soon(sb.handle_connection, server)
        await client.send(json.dumps({"event": "connect", "api_key": "k"}))
        for _ in range(4):  # within the bound: the session keeps them queued
            await client.send(json.dumps({"event": "ping"}))
        with anyio.fail_after(5):
            while sb.statistics().frames_received < 5:  # noqa: ASYNC110 - no event for it
                await anyio.sleep(0.002)
        assert sb.statistics().connections == 1, "a client within the bound is served"
        with contextlib.suppress(TransportClosed):  # the server may close mid-way
            for _ in range(20):  # replies the client never reads
                await client.send(json.dumps({"event": "ping"}))
        with anyio.fail_after(5):
            frames: list[str] = []
            with pytest.raises(TransportClosed) as info:
                while True:
                    frames.append(await client.recv())
    assert (info.value.code, info.value.reason) == (1013, "client too slow")
    assert json.loads(frames[0])["event"] == "connected"
    assert len(frames) <= 1 + 5 + 1  # the socket's buffer, the outbox, one being written
    assert sb.statistics().connections == 0
