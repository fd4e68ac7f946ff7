"""Simulated callees: digit outcomes, hang-ups, session limits, order, scale."""

from __future__ import annotations

import json
import math
from pathlib import Path

import anyio
import pytest

from dispatch.sandbox import Sandbox

from .helpers import RawClient, ended, open_client

pytestmark = pytest.mark.anyio

GREETING = "Hi, this is Acme Dental about tomorrow."


def events(frames: list[dict[str, object]]) -> list[object]:
    return [f["event"] for f in frames]


ANSWERED_SEQUENCE = [
    "call.dialing",
    "call.started",
    "bot.speaking",
    "bot.finished",
    "user.message",
    "call.ended",
]


@pytest.mark.parametrize(
    ("suffix", "reason", "sequence"),
    [
        ("00", "hangup", ANSWERED_SEQUENCE),
        ("59", "hangup", ANSWERED_SEQUENCE),
        ("60", "no-answer", ["call.dialing", "call.ended"]),
        ("74", "no-answer", ["call.dialing", "call.ended"]),
        ("75", "busy", ["call.dialing", "call.ended"]),
        ("84", "busy", ["call.dialing", "call.ended"]),
        ("85", "failed", ["call.dialing", "call.ended"]),
        ("89", "failed", ["call.dialing", "call.ended"]),
        ("90", "disconnected", ANSWERED_SEQUENCE),
        ("94", "disconnected", ANSWERED_SEQUENCE),
    ],
)
async def test_digit_outcomes(
    sandbox: Sandbox, client: RawClient, suffix: str, reason: str, sequence: list[str]
) -> None:
    to = "+155500001" + suffix
    await client.dial(to, greeting=GREETING, metadata={"dispatch_attempt": "a1"})
    frames = await client.until(ended())
    assert events(frames) == sequence
    call_id = frames[0]["call_id"]
    assert isinstance(call_id, str)
    assert call_id.startswith("CA")
    assert len(call_id) == 34
    assert all(f["call_id"] == call_id for f in frames)
    for f in frames:
        if f["event"] in ("call.dialing", "call.started", "call.ended"):
            assert f["metadata"] == {"dispatch_attempt": "a1"}
            assert (f["to"], f["from"]) == (to, "+15005550006")
    end = frames[-1]
    assert end["reason"] == reason
    assert end["direction"] == "outbound"
    assert end["session_id"] == call_id
    if sequence is ANSWERED_SEQUENCE:
        assert frames[1]["direction"] == "outbound"
        assert frames[1]["transport"] == "phone"
        assert frames[2]["text"] == GREETING
        assert isinstance(end["started_at"], float)
        assert end["ended_at"] >= end["started_at"]
    else:
        assert end["duration_seconds"] == 0
        assert "started_at" not in end
    assert sandbox.dials[-1].outcome == reason


async def test_no_greeting_means_no_bot_speech(client: RawClient) -> None:
    await client.dial("+15550000010")
    frames = await client.until(ended())
    assert events(frames) == ["call.dialing", "call.started", "user.message", "call.ended"]
    assert "metadata" not in frames[0]


async def test_agent_greeting_is_used(sandbox: Sandbox) -> None:
    c = await open_client(sandbox)
    await c.handshake()
    await c.register(greeting={"en": "Hello from the agent."})
    await c.dial("+15550000011")
    frames = await c.until(ended())
    assert frames[2]["text"] == "Hello from the agent."
    await c.ws.close()


async def test_hangup_while_ringing_is_canceled() -> None:
    async with Sandbox(speed=1.0) as sb:  # no-answer rings 20-30 s: plenty of time
        c = await open_client(sb)
        await c.handshake()
        await c.register()
        await c.dial("+15550000061")
        call_id = (await c.expect("call.dialing"))["call_id"]
        await c.send(event="call.hangup", call_id=call_id)
        end = await c.expect("call.ended")
        assert (end["call_id"], end["reason"], end["duration_seconds"]) == (call_id, "canceled", 0)
        await c.ws.close()


async def test_hangup_while_answered(sandbox: Sandbox, client: RawClient) -> None:
    await client.dial("+15550000095")  # answers, never hangs up
    frames = await client.until(lambda f: f["event"] == "call.started")
    await client.send(event="call.hangup", call_id=frames[0]["call_id"])
    end = (await client.until(ended()))[-1]
    assert end["reason"] == "hangup"
    assert sandbox.dials[-1].outcome == "hangup"


async def test_max_duration(sandbox: Sandbox) -> None:
    c = await open_client(sandbox)
    await c.handshake()
    await c.register(session_limits={"max_duration_seconds": 5})  # 25 ms at speed 200
    await c.dial("+15550000099")
    frames = await c.until(ended())
    timeout = next(f for f in frames if f["event"] == "session.timeout")
    assert timeout["reason"] == "max_duration"
    assert timeout["session_id"] == timeout["call_id"]
    assert frames[-1]["reason"] == "max_duration"
    assert events(frames)[-2:] == ["session.timeout", "call.ended"]
    await c.ws.close()


async def test_idle_timeout(sandbox: Sandbox) -> None:
    c = await open_client(sandbox)
    await c.handshake()
    await c.register(session_limits={"max_duration_seconds": 0, "idle_timeout_seconds": 30})
    await c.dial("+15550000096")
    frames = await c.until(ended())
    assert "user.message" in events(frames)  # the callee spoke once, then went silent
    assert frames[-1]["reason"] == "idle_timeout"
    await c.ws.close()


async def test_dialing_in_receipt_order(client: RawClient) -> None:
    numbers = [f"+1555000{i:04d}" for i in range(50)]
    for to in numbers:
        await client.dial(to, metadata={"i": to})
    frames = await client.until(
        lambda f: False if f["event"] != "call.dialing" else f["to"] == numbers[-1]
    )
    dialing = [f for f in frames if f["event"] == "call.dialing"]
    assert [f["to"] for f in dialing] == numbers
    assert [f["metadata"] for f in dialing] == [{"i": n} for n in numbers]


async def test_instant_speed_and_dial_log(tmp_path: Path) -> None:
    log_path = tmp_path / "dials.jsonl"
    async with Sandbox(speed=math.inf, dial_log=log_path) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register()
        for to in ("+15550000001", "+15550000077"):
            await c.dial(to, metadata={"dispatch_attempt": to})
            await c.until(ended())
        await c.dial("bad")
        await c.expect("call.error")
        await c.ws.close()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(x["event"], x.get("outcome")) for x in lines] == [
        ("dial", None),
        ("end", "hangup"),
        ("dial", None),
        ("end", "busy"),
        ("dial", "rejected"),
    ]
    first = lines[0]
    assert first["agent_id"] == "reminder"
    assert first["from"] == "+15005550006"
    assert first["metadata"] == {"dispatch_attempt": "+15550000001"}
    assert lines[1]["call_id"] == first["call_id"]
    assert lines[1]["answered"] is True
    assert lines[4]["error_code"] == "INVALID_NUMBER"


async def test_thousand_simultaneous_calls_on_one_socket() -> None:
    n = 1000
    async with Sandbox(speed=1000, seed=3) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register(session_limits={"max_duration_seconds": 0})
        for i in range(n):  # last two digits 95-99: the callee never hangs up
            await c.dial(f"+1555{i:05d}{95 + i % 5:02d}", greeting="Hi.")
        started: list[str] = []
        with anyio.fail_after(60):
            while len(started) < n:
                frame = await c.recv()
                if frame["event"] == "call.started":
                    started.append(str(frame["call_id"]))
        assert sb.statistics().live_calls == n
        for call_id in started:
            await c.send(event="call.hangup", call_id=call_id)
        reasons: dict[str, str] = {}
        with anyio.fail_after(60):
            while len(reasons) < n:
                frame = await c.recv()
                if frame["event"] == "call.ended":
                    reasons[str(frame["call_id"])] = str(frame["reason"])
        assert set(reasons) == set(started)
        assert set(reasons.values()) == {"hangup"}
        stats = sb.statistics()
        assert (stats.live_calls, stats.total_dials, stats.by_outcome) == (0, n, {"hangup": n})
        await c.ws.close()
