"""Protocol corner cases against the scripted in-memory server (protocol §9)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from dispatch.sdk import (
    AuthenticationError,
    Call,
    ConfigurationError,
    ConnectionLost,
    DialFailed,
    Pinecall,
    PinecallError,
    Reason,
    tool,
)
from dispatch.sdk.transport import Connection, MemoryTransport

from .fake_server import API_KEY, FakeServer, connected

pytestmark = pytest.mark.anyio
FROM = "+15005550006"


async def _answer_next(server: FakeServer) -> None:
    await server.wait_for("call.dial", len(server.frames("call.dial")) + 1)
    await server.answer(list(server.dials)[-1])


async def _answered(server: FakeServer, agent: Any, **kw: Any) -> Call:
    async with anyio.create_task_group() as tg:
        tg.start_soon(_answer_next, server)
        call: Call = await agent.dial("+15551230001", **kw)
    return call


async def test_agent_is_idempotent_and_frames_wait_for_the_ack() -> None:
    held: list[dict[str, Any]] = []

    def hold(frame: dict[str, Any], n: int) -> list[dict[str, Any]]:
        held.append(frame)
        return []  # no ack: the test sends it

    server = FakeServer(on_agent_create=hold)
    async with connected(server) as pc:
        agent = pc.agent("Lead Bot", phone_number=FROM)
        assert pc.agent("Lead Bot", phone_number="+15005550099") is agent
        out: list[Call] = []

        async def dial() -> None:
            # a timeout shorter than the time spent waiting for the ack below
            out.append(await agent.dial("+15551230001", timeout_s=0.8))

        async with anyio.create_task_group() as tg:
            tg.start_soon(dial)
            await server.wait_for("agent.create")
            await anyio.sleep(1.2)  # time passes: the dial is held, its clock not running
            assert [f["event"] for f in server.received] == ["connect", "agent.create"]
            await server.send({"event": "agent.created", "agent_id": "org_test:lead-bot"})
            [dial_frame] = await server.wait_for("call.dial")
            await server.answer(server.call_id_for(dial_frame["metadata"]["dispatch_attempt"]))
        events = [f["event"] for f in server.received]
        assert events == ["connect", "agent.create", "channel.add", "call.dial"]
        assert out[0].answered and len(held) == 1


async def test_dial_frame_carries_every_option_and_keeps_one_call_object() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=[FROM, "+15005550007"])
        dialing: list[Call] = []
        call = await _answered(server, agent, from_="+15005550007", greeting="Hi!",
                               metadata={"record": "r1"}, config={"language": "es"},
                               detect_turn_end=True, on_dialing=dialing.append)
        [frame] = server.frames("call.dial")
        attempt = frame["metadata"]["dispatch_attempt"]
        assert frame == {"event": "call.dial", "agent_id": "a", "to": "+15551230001",
                         "from": "+15005550007", "greeting": "Hi!",
                         "metadata": {"record": "r1", "dispatch_attempt": attempt},
                         "config": {"language": "es"}, "detect_turn_end": True}
        assert dialing == [call] and dialing[0] is call  # not replaced on call.started
        assert call.metadata == {"record": "r1"} and call.direction == "outbound"
        assert (call.from_, call.to) == ("+15005550007", "+15551230001")
        with pytest.raises(ConfigurationError, match="caller id"):
            await agent.dial("+15551230001", from_="15005550007")
        assert len(server.frames("call.dial")) == 1


async def test_generic_error_frame_fails_the_dial_it_refers_to() -> None:
    server = FakeServer(auto_dialing=False, echo_metadata=False)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        client_errors: list[PinecallError] = []
        pc.on("error", client_errors.append)
        out: dict[str, Call | DialFailed] = {}

        async def dial(to: str) -> None:
            try:
                out[to] = await agent.dial(to)
            except DialFailed as exc:
                out[to] = exc

        async with anyio.create_task_group() as tg:
            for n in (1, 2, 3):
                tg.start_soon(dial, f"+1555123000{n}")
                await server.wait_for("call.dial", n)
            one, two, three = server.frames("call.dial")
            # about a live call (has call_id): never settles a dial
            await server.send({"event": "error", "agent_id": "a", "call_id": "CAx",
                               "error": "call not found"})
            # names the dial's `to`: that one, not the oldest
            await server.send({"event": "error", "agent_id": "org_test:a", "to": two["to"],
                               "error": "Outbound calling not enabled on this plan",
                               "code": "FORBIDDEN"})
            # nothing but the agent: the oldest unbound dial (in order, like call.dialing)
            await server.send({"event": "error", "agent_id": "a", "error": "RATE_LIMITED"})
            call_id = await server.dialing(three)
            await server.answer(call_id)
        refused_two, refused_one, answered = (out[f["to"]] for f in (two, one, three))
        assert isinstance(refused_two, DialFailed) and refused_two.code == "FORBIDDEN"
        assert refused_two.reason is Reason.ERROR and "plan" in refused_two.raw_reason
        assert isinstance(refused_one, DialFailed) and refused_one.raw_reason == "RATE_LIMITED"
        assert isinstance(answered, Call) and answered.id == call_id
        assert [e.message for e in client_errors] == ["call not found"]


async def test_unknown_echoed_attempt_never_binds_by_number() -> None:
    server = FakeServer(auto_dialing=False)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        out: list[Call] = []
        started: list[Call] = []
        stale_started = anyio.Event()

        def on_started(call: Call) -> None:
            started.append(call)
            stale_started.set()

        pc.on("call.started", on_started)
        async with anyio.create_task_group() as tg:
            async def dial() -> None:
                out.append(await agent.dial("+15551230001"))
            tg.start_soon(dial)
            [frame] = await server.wait_for("call.dial")
            # a call of an earlier connection, same number, echoing its own attempt id
            stale = {**frame, "metadata": {"dispatch_attempt": "da_old_1"}}
            stale_id = await server.dialing(stale)
            await server.answer(stale_id)
            with anyio.fail_after(5):
                await stale_started.wait()
            assert out == [] and [c.id for c in started] == [stale_id]
            await server.answer(await server.dialing(frame))
        assert out[0].id != stale_id and out[0].to == "+15551230001"


async def test_conflict_without_agent_id_is_retried_for_the_only_waiting_agent() -> None:
    def conflict_once(frame: dict[str, Any], n: int) -> list[dict[str, Any]] | None:
        if n == 1:
            return [{"event": "error", "code": "AGENT_CONFLICT", "error": "name held",
                     "retry_after_s": 0.02}]
        return None

    server = FakeServer(on_agent_create=conflict_once)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        with anyio.fail_after(5):
            await agent.ready()
        assert server.creates == 2


async def test_frames_without_agent_id_route_by_call_id() -> None:
    async def lookup(args: dict[str, Any], call: Call | None) -> dict[str, Any]:
        return {"who": call.id if call else None}

    def broken(args: dict[str, Any], call: Call | None) -> None:
        raise KeyError("db down")

    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM, tools=[
            tool(name="lookup", parameters={"type": "object"}, execute=lookup),
            tool(name="broken", parameters={"type": "object"}, execute=broken)])
        call = await _answered(server, agent)
        ended: list[Call] = []
        agent.on("call.ended", ended.append)
        with capture_logs() as logs:
            await server.send({"event": "llm.tool_call", "call_id": call.id, "message_id": "m1",
                               "tool_calls": [{"id": "t1", "name": "lookup", "arguments": ""},
                                              {"id": "t2", "name": "broken", "arguments": "{}"}]})
            [reply] = await server.wait_for("llm.tool_result")
        assert reply["msg_id"] == "m1" and reply["results"] == [
            {"tool_call_id": "t1", "result": {"who": call.id}},
            {"tool_call_id": "t2", "result": {"error": "KeyError: 'db down'"}}]
        assert [e["tool"] for e in logs if e["event"] == "tool raised"] == ["broken"]
        await server.send({"event": "call.ended", "call_id": call.id, "reason": "hangup",
                           "duration_seconds": 3})
        await call.wait_ended()
        assert ended == [call] and call.end_reason is Reason.HANGUP and call.duration_s == 3
        assert pc.online and not pc.calls


async def test_pending_request_fails_with_connection_lost_on_a_drop() -> None:
    server = FakeServer()
    async with connected(server, reconnect_base_s=5, reconnect_max_s=5) as pc:
        call = await _answered(server, pc.agent("a", phone_number=FROM))
        async with anyio.create_task_group() as tg:
            async def drop() -> None:
                await server.wait_for("history.set_vars")
                await server.drop(1011, "server restart")
            tg.start_soon(drop)
            with anyio.fail_after(5), pytest.raises(ConnectionLost):
                await call.set_prompt_vars({"name": "Ana"})
        assert call.ended and call.end_reason is Reason.DISCONNECTED


class _GatedTransport:
    """MemoryTransport whose client sends block while ``gate`` is closed."""

    def __init__(self, inner: MemoryTransport) -> None:
        self._inner = inner
        self.blocked = anyio.Event()
        self.open = True

    async def connect(self, url: str, timeout_s: float) -> Connection:
        conn = await self._inner.connect(url, timeout_s)
        outer = self

        class Gated:
            async def send(self, text: str) -> None:
                if not outer.open:
                    outer.blocked.set()
                    await anyio.sleep_forever()
                await conn.send(text)

            async def recv(self) -> str:
                return await conn.recv()

            async def close(self, code: int = 1000, reason: str = "") -> None:
                await conn.close(code, reason)

        return Gated()


async def test_dial_still_queued_when_the_socket_drops_is_settled() -> None:
    server = FakeServer()
    async with anyio.create_task_group() as tg:
        transport = _GatedTransport(MemoryTransport(server.handle, tg))
        async with Pinecall(API_KEY, "ws://fake", transport=transport,
                            reconnect_base_s=5, reconnect_max_s=5) as pc:
            agent = pc.agent("a", phone_number=FROM)
            await agent.ready()
            transport.open = False
            pc.send({"event": "noop"})  # the writer blocks on this frame...
            async with anyio.create_task_group() as inner:
                async def drop() -> None:
                    # dial() queues its frame before its first checkpoint, so once the
                    # writer is blocked the dial is already waiting behind the noop
                    await transport.blocked.wait()
                    await server.drop(1006, "")
                inner.start_soon(drop)
                with anyio.fail_after(5), pytest.raises(ConnectionLost):
                    await agent.dial("+15551230001")
            assert server.frames("call.dial") == [] and not len(pc.book)
        tg.cancel_scope.cancel()


async def test_auth_refused_on_reconnect_stops_and_is_reported() -> None:
    server = FakeServer(api_key=API_KEY)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        await agent.ready()
        errors: list[BaseException] = []
        failed = anyio.Event()

        def on_error(exc: BaseException) -> None:
            errors.append(exc)
            if isinstance(exc, AuthenticationError):
                failed.set()

        pc.on("error", on_error)
        server.api_key = "rotated"
        await server.drop(1012, "restart")
        with anyio.fail_after(5):
            await failed.wait()
        await anyio.sleep(0.2)  # reconnect_base_s is 0.01: a loop would show here
        assert server.connections == 2 and pc.state == "failed"
        assert isinstance(errors[-1], AuthenticationError) and errors[-1].code == "INVALID_KEY"
        with pytest.raises(AuthenticationError):
            await agent.dial("+15551230001")


async def test_secret_never_in_logs_reprs_or_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeServer()
    errors: list[PinecallError] = []
    got_error = anyio.Event()
    with capture_logs() as logs:  # the raw event dicts, before any redaction stage
        async with connected(server) as pc:
            pc.on("error", lambda e: (errors.append(e), got_error.set()))
            agent = pc.agent("a", phone_number=FROM)
            call = await _answered(server, agent)
            await server.send({"event": "error", "error": f"echo {API_KEY}"})
            with anyio.fail_after(5):
                await got_error.wait()
            texts = [repr(pc), repr(agent), repr(call), str(vars(call)), str(errors[0]),
                     repr(errors[0])]
            await server.drop(1011, f"bye {API_KEY}")
            await call.wait_ended()
            texts += [repr(call), str(vars(call))]
    assert errors[0].message == "echo ***"
    assert logs and not [e for e in logs if API_KEY in str(e)]
    assert not [t for t in texts if API_KEY in t] and API_KEY not in caplog.text
