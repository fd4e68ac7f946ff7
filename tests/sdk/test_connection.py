"""Handshake, auth failure, heartbeat, reconnect, displacement and registration."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from dispatch.sdk import (
    AuthenticationError,
    Call,
    ConnectionLost,
    ConnectTimeout,
    DialFailed,
    NotConnected,
    Pinecall,
    Reason,
    RegistrationError,
)
from dispatch.sdk.transport import MemoryTransport

from .fake_server import API_KEY, FakeServer, connected

pytestmark = pytest.mark.anyio
FROM = "+15005550006"


async def test_connect_is_idempotent_and_key_is_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeServer()
    async with connected(server) as pc:
        await pc.connect()
        assert server.connections == 1 and pc.online and pc.org_id == "org_test"
        assert server.received[0] == {"event": "connect", "api_key": API_KEY}
        assert API_KEY not in repr(pc) and API_KEY not in str(vars(pc).get("url"))
    assert pc.state == "closed" and API_KEY not in caplog.text


async def test_bad_key_raises_authentication_error_without_retry() -> None:
    server = FakeServer(api_key="the-right-key")
    async with anyio.create_task_group() as tg:
        pc = Pinecall("wrong-key", "ws://fake", transport=MemoryTransport(server.handle, tg))
        with pytest.raises(AuthenticationError) as info:
            await pc.connect()
        assert info.value.code == "INVALID_KEY" and "wrong-key" not in str(info.value)
        await anyio.sleep(0.05)
        assert server.connections == 1
        with pytest.raises(AuthenticationError):
            await pc.connect()  # a second try is one more attempt, not a loop
        assert server.connections == 2
        await pc.close()
        with pytest.raises(NotConnected):
            await pc.connect()


async def test_handshake_timeout() -> None:
    server = FakeServer(handshake=False)
    async with anyio.create_task_group() as tg:
        pc = Pinecall("k", "ws://fake", transport=MemoryTransport(server.handle, tg),
                      handshake_timeout_s=0.1)
        with pytest.raises(ConnectTimeout):
            await pc.connect()
        tg.cancel_scope.cancel()


async def test_env_key_and_url_normalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINECALL_API_KEY", "pk_env_key")
    pc = Pinecall(url="https://voice.example.com/")
    assert pc._api_key == "pk_env_key" and pc.url == "wss://voice.example.com/client"
    assert "pk_env_key" not in repr(pc)


@pytest.mark.parametrize("echo", [lambda i: i.lower().replace(" ", "-"),
                                  lambda i: "org_test:" + i.lower().replace(" ", "-")])
async def test_slugified_and_compound_acks_match(echo: Any) -> None:
    server = FakeServer(echo_id=echo)
    async with connected(server) as pc:
        agent = pc.agent("Lead Bot", phone_number=FROM)
        with anyio.fail_after(5):
            await agent.ready()
        assert agent.state == "ready"


async def test_pong_deadline_closes_silent_socket_and_reconnects() -> None:
    server = FakeServer(answer_pings=False)
    async with connected(server, ping_interval_s=0.05, pong_timeout_s=0.15) as pc:
        reasons: list[dict[str, Any]] = []
        pc.on("disconnected", reasons.append)
        await server.wait_connections(2)
        assert reasons and reasons[0]["reason"] == "pong_timeout"
        assert len(server.frames("ping")) >= 1


async def test_drop_settles_dials_and_calls_then_reregisters() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        events: list[tuple[str, Any]] = []
        pc.on("disconnected", lambda p: events.append(("disconnected", p)))
        pc.on("call.ended", lambda c: events.append(("call.ended", c.id)))
        pc.on("reconnecting", lambda p: events.append(("reconnecting", p)))
        live: list[Call] = []
        lost: list[BaseException] = []

        async def live_dial() -> None:
            live.append(await agent.dial("+15551230001"))

        async def pending_dial() -> None:
            try:
                await agent.dial("+15551230002")
            except ConnectionLost as exc:
                lost.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(live_dial)
            await server.wait_for("call.dial")
            await server.answer(next(iter(server.dials)))
            tg.start_soon(pending_dial)
            await server.wait_for("call.dial", 2)
            await server.drop(1006, "")
        [call] = live
        assert call.ended and call.end_reason is Reason.DISCONNECTED
        assert call.end_reason_raw == "connection_lost" and len(lost) == 1
        disconnected = next(p for name, p in events if name == "disconnected")
        assert call.id in disconnected["call_ids"] and disconnected["dials_failed"] == 1
        assert ("call.ended", call.id) in events
        await server.wait_connections(2)
        with anyio.fail_after(5):
            await agent.ready()
        assert len(server.frames("agent.create")) == 2


async def test_dial_while_offline_waits_and_cancelled_one_is_never_replayed() -> None:
    server = FakeServer()
    async with connected(server, reconnect_base_s=0.3, reconnect_max_s=0.3) as pc:
        agent = pc.agent("a", phone_number=FROM)
        await agent.ready()
        offline = anyio.Event()
        pc.on("disconnected", lambda _: offline.set())
        await server.drop(1006, "")
        await offline.wait()
        with anyio.move_on_after(0.05):  # caller gives up while offline
            await agent.dial("+15551230009")
        async with anyio.create_task_group() as tg:
            async def answer() -> None:
                [dial] = await server.wait_for("call.dial")
                await server.answer(server.call_id_for(dial["metadata"]["dispatch_attempt"]))
            tg.start_soon(answer)
            call = await agent.dial("+15551230001")  # waits for the reconnect
        assert call.to == "+15551230001"
        assert [d["to"] for d in server.frames("call.dial")] == ["+15551230001"]


async def test_offline_wait_is_bounded() -> None:
    server = FakeServer()
    async with connected(server, reconnect_base_s=5, reconnect_max_s=5,
                         dial_ready_wait_s=0.1) as pc:
        agent = pc.agent("a", phone_number=FROM)
        await agent.ready()
        offline = anyio.Event()
        pc.on("disconnected", lambda _: offline.set())
        await server.drop(1006, "")
        await offline.wait()
        with pytest.raises(NotConnected):
            await agent.dial("+15551230001")


async def test_conflict_is_retried_then_succeeds() -> None:
    def conflict_twice(frame: dict[str, Any], n: int) -> list[dict[str, Any]] | None:
        if n <= 2:
            return [{"event": "error", "code": "AGENT_CONFLICT", "agent_id": frame["agent_id"],
                     "error": "held", "retry_after_s": 0.02, "holder_alive": True}]
        return None

    server = FakeServer(on_agent_create=conflict_twice)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        with anyio.fail_after(5):
            await agent.ready()
        assert server.creates == 3


async def test_conflict_budget_exhausted() -> None:
    server = FakeServer(on_agent_create=lambda f, n: [
        {"event": "error", "code": "AGENT_CONFLICT", "agent_id": f["agent_id"], "error": "held"}])
    async with connected(server, conflict_retry_budget_s=0.2, conflict_base_delay_s=0.03) as pc:
        agent = pc.agent("a", phone_number=FROM)
        with pytest.raises(RegistrationError) as info:
            await agent.ready(timeout_s=5)
        assert info.value.code == "RETRY_BUDGET_EXHAUSTED" and server.creates >= 3


@pytest.mark.parametrize("code", ["AGENT_CONFLICT_FATAL", "SERVER_AT_CAPACITY",
                                  "REGISTRATION_ERROR", "PHONE_IN_USE"])
async def test_terminal_registration_errors(code: str) -> None:
    def refuse(frame: dict[str, Any], n: int) -> list[dict[str, Any]] | None:
        created = {"event": "agent.created", "agent_id": frame["agent_id"]}
        error = {"event": "error", "code": code, "agent_id": frame["agent_id"], "error": "no"}
        return [created, error] if code == "PHONE_IN_USE" else [error]

    server = FakeServer(on_agent_create=refuse)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        with pytest.raises(RegistrationError) as info:
            await agent.dial("+15551230001")
        assert info.value.code == code and info.value.agent_id == "a"
        with pytest.raises(RegistrationError):
            await agent.ready()
        assert server.frames("call.dial") == []


async def test_displacement_fails_pending_dials_and_4001_stops_reconnect() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        errors: list[BaseException] = []

        async def dial() -> None:
            try:
                await agent.dial("+15551230001")
            except RegistrationError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(dial)
            await server.wait_for("call.dial")
            await server.send({"event": "agent.displaced", "agent_id": "a", "reason": "taken"})
        assert errors[0].code == "AGENT_DISPLACED"  # type: ignore[attr-defined]
        with pytest.raises(RegistrationError):
            await agent.dial("+15551230001")
        other = pc.agent("b", phone_number="+15005550007")
        await other.ready()
        offline = anyio.Event()
        pc.on("disconnected", lambda _: offline.set())
        await server.drop(4001, "displaced")
        await offline.wait()
        with pytest.raises(NotConnected) as info:
            await other.dial("+15551230001")
        assert info.value.code == "DISPLACED" and server.connections == 1


async def test_raising_handlers_never_kill_the_client() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        def boom(_: Any) -> None:
            raise RuntimeError("sync handler")

        async def aboom(_: Any) -> None:
            raise RuntimeError("async handler")

        for name in ("call.dialing", "call.ended"):
            pc.on(name, boom)
            pc.on(name, aboom)
        agent = pc.agent("a", phone_number=FROM)
        async with anyio.create_task_group() as tg:
            async def bust() -> None:
                await server.wait_for("call.dial")
                await server.end(next(iter(server.dials)), "busy")
            tg.start_soon(bust)
            with pytest.raises(DialFailed):
                await agent.dial("+15551230001", on_dialing=boom)
        assert pc.online
