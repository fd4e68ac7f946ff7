"""Tool-call round trips, msg_id dedupe, set_prompt_vars acks, and pure helpers."""

from __future__ import annotations

import random
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from dispatch.sdk import Call, NotConnected, RequestFailed, tool
from dispatch.sdk.backoff import ConflictBackoff, reconnect_delay_s
from dispatch.sdk.registration import agent_create_frame, expand_stt
from dispatch.sdk.tools import BoundedSet
from dispatch.sdk.wire import slugify

from .fake_server import FakeServer, connected

FROM = "+15005550006"


class Outcome(BaseModel):
    disposition: str
    attempts: int = 1


def record(args: Outcome, call: Call | None) -> dict[str, Any]:
    return {"ok": True, "disposition": args.disposition, "call": call.id if call else None}


async def explode(args: dict[str, Any], call: Call | None) -> None:
    raise RuntimeError("tool failed")


TOOLS = [
    tool(name="record_outcome", description="save", schema=Outcome, execute=record),
    tool(name="explode", parameters={"type": "object"}, execute=explode),
]


async def _answered_call(server: FakeServer, agent: Any) -> Call:
    async with anyio.create_task_group() as tg:
        async def answer() -> None:
            await server.wait_for("call.dial", len(server.frames("call.dial")) + 1)
            await server.answer(list(server.dials)[-1])
        tg.start_soon(answer)
        call: Call = await agent.dial("+15551230001")
    return call


@pytest.mark.anyio
async def test_tool_round_trip_validation_errors_and_dedupe() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM, tools=TOOLS)
        call = await _answered_call(server, agent)
        [create] = server.frames("agent.create")
        assert create["tools"][0]["function"]["parameters"] == Outcome.model_json_schema()
        frame = {"event": "llm.tool_call", "agent_id": "a", "call_id": call.id, "msg_id": "m1",
                 "tool_calls": [
                     {"id": "t1", "name": "record_outcome",
                      "arguments": '{"disposition": "confirmed"}'},
                     {"id": "t2", "function": {"name": "record_outcome",
                                               "arguments": '{"attempts": "x"}'}},
                     {"id": "t3", "name": "explode", "arguments": "{}"},
                     {"id": "t4", "name": "nope", "arguments": "{}"}]}
        await server.send(frame)
        await server.send(frame)  # resent msg_id: ignored
        [reply] = await server.wait_for("llm.tool_result")
        assert reply["call_id"] == call.id and reply["msg_id"] == "m1"
        results = {r["tool_call_id"]: r["result"] for r in reply["results"]}
        assert results["t1"] == {"ok": True, "disposition": "confirmed", "call": call.id}
        assert "invalid arguments" in results["t2"]["error"]
        assert results["t3"] == {"error": "RuntimeError: tool failed"}
        assert results["t4"] == {"error": "Unknown tool: nope"}
        assert call.disposition == "confirmed" and len(call.tool_results) == 4
        assert call.tool_results[0] == {"name": "record_outcome",
                                        "arguments": {"disposition": "confirmed"},
                                        "result": results["t1"]}
        await server.send({**frame, "msg_id": "m2", "tool_calls": frame["tool_calls"][:1]})
        await server.wait_for("llm.tool_result", 2)
        assert len(server.frames("llm.tool_result")) == 2


@pytest.mark.anyio
async def test_set_prompt_vars_ack_reject_timeout_and_offline() -> None:
    server = FakeServer()
    async with connected(server, request_timeout_s=0.2) as pc:
        agent = pc.agent("a", phone_number=FROM)
        call = await _answered_call(server, agent)

        async def ack(error: str | None, with_id: bool = True) -> None:
            n = len(server.frames("history.set_vars")) + 1
            request = (await server.wait_for("history.set_vars", n))[-1]
            reply: dict[str, Any] = {"event": "history.updated", "call_id": call.id, "count": 3}
            if with_id:
                reply["request_id"] = request["request_id"]
            if error:
                reply["error"] = error
            await server.send(reply)

        async with anyio.create_task_group() as tg:
            tg.start_soon(ack, None)
            await call.set_prompt_vars({"name": "Ana"})
        assert server.frames("history.set_vars")[0]["vars"] == {"name": "Ana"}
        async with anyio.create_task_group() as tg:
            tg.start_soon(ack, "call not found")
            with pytest.raises(RequestFailed) as info:
                await call.set_prompt_vars({"name": "Ana"})
        assert info.value.code == "REQUEST_REJECTED"
        async with anyio.create_task_group() as tg:
            tg.start_soon(ack, None, False)  # no request_id: never matched
            with pytest.raises(RequestFailed) as info:
                await call.set_prompt_vars({"name": "Ana"})
        assert info.value.code == "REQUEST_TIMEOUT"
        offline = anyio.Event()
        pc.on("disconnected", lambda _: offline.set())
        await server.drop(1012, "restart")
        await offline.wait()
        assert call.end_reason_raw == "restart"
        with pytest.raises(NotConnected):
            await call.set_prompt_vars({"name": "Ana"})
        await call.hangup()  # ended: a no-op, never raises


@pytest.mark.anyio
async def test_call_events_and_transcript() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        call = await _answered_call(server, agent)
        heard: list[str] = []
        ended: list[Call] = []

        async def on_user(frame: dict[str, Any]) -> None:
            heard.append(frame["text"])

        call.on("user.message", on_user)
        call.on("ended", ended.append)
        await server.send({"event": "bot.speaking", "call_id": call.id, "message_id": "b1",
                           "text": "Hello"})
        await server.send({"event": "user.message", "call_id": call.id, "message_id": "u1",
                           "text": "Hi", "confidence": 0.9})
        await call.hangup()
        [hangup] = await server.wait_for("call.hangup")
        await server.end(hangup["call_id"], "hangup", duration_seconds=12.5)
        assert await call.wait_ended() is call
        assert [(e["role"], e["text"]) for e in call.transcript] == [
            ("assistant", "Hello"), ("user", "Hi")]
        assert call.duration_s == 12.5 and call.ended_at is not None and ended == [call]
        assert heard == ["Hi"]


def test_reconnect_delays() -> None:
    delays = [reconnect_delay_s(n, rng=lambda: 0.0) for n in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert reconnect_delay_s(0, rng=lambda: 1.0) == 1.25


def test_conflict_backoff_budget_and_hints() -> None:
    now = [0.0]
    backoff = ConflictBackoff(budget_s=90, base_delay_s=5, rng=lambda: 0.5,
                              monotonic=lambda: now[0])
    assert backoff.next_delay_s(None, None) == 5.0
    assert backoff.next_delay_s(None, None) == 10.0
    assert backoff.next_delay_s(2.0, True) == 2.0  # the server's hint wins
    now[0] = 85.0
    assert backoff.next_delay_s(None, None) == 5.0  # clipped to the budget left
    now[0] = 90.0
    assert backoff.next_delay_s(None, None) is None
    backoff.restart()
    assert backoff.next_delay_s(None, None) == 5.0


def test_wire_helpers() -> None:
    assert slugify("Lead Bot") == "lead-bot" and slugify("a__B--c!") == "a-b-c"
    assert expand_stt("deepgram:nova-3:es") == {"provider": "deepgram", "model": "nova-3",
                                                "language": "es"}
    assert expand_stt("deepgram/nova-3") == "deepgram/nova-3"
    frame = agent_create_frame("x", {"prompt": "p", "voice": None, "greeting_in_chat": True,
                                     "extra": {"custom": 1}}, [])
    assert frame == {"event": "agent.create", "agent_id": "x", "prompt": "p",
                     "greetingInChat": True, "custom": 1}


def test_bounded_set() -> None:
    seen = BoundedSet(3)
    assert [seen.add(i) for i in (1, 2, 1, 3, 4)] == [True, True, False, True, True]
    assert len(seen) == 3 and seen.add(1)  # forgotten: oldest evicted
    assert random.Random(1).random() < 1


@pytest.mark.anyio
async def test_non_json_arguments_are_configuration_errors() -> None:
    from dispatch.sdk import ConfigurationError

    server = FakeServer()
    async with connected(server) as pc:
        with pytest.raises(ConfigurationError):
            pc.agent("bad", phone_number=FROM, config={"x": object()})
        agent = pc.agent("a", phone_number=FROM)
        with pytest.raises(ConfigurationError):
            await agent.dial("+15551230001", metadata={"when": object()})
        assert server.frames("call.dial") == [] and pc.online


def test_public_surface() -> None:
    import dispatch.sdk as sdk

    assert {"Pinecall", "Agent", "Call", "tool", "Tool", "Reason", "DialFailed",
            "AuthenticationError", "RegistrationError", "ConnectionLost", "NotConnected",
            "RequestFailed", "ConfigurationError", "PinecallError"} <= set(sdk.__all__)
    assert all(hasattr(sdk, name) for name in sdk.__all__)
