"""Every command the reference client sends is answered (protocol §4.2, §4.6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.sandbox import Sandbox, Scenario

from .helpers import Frame, RawClient, ended, open_client

pytestmark = pytest.mark.anyio

NO_HANGUP = "+15550000097"  # answers and never hangs up (digit rule 95-99)
RINGS_OUT = "+15550000061"  # no-answer after 20-30 simulated s


async def _answered(client: RawClient, greeting: str | None = "Hi there.") -> str:
    extra = {"greeting": greeting} if greeting else {}
    await client.dial(NO_HANGUP, **extra)
    dialing = await client.expect("call.dialing")
    await client.until(lambda f: f["event"] == "call.started")
    return str(dialing["call_id"])


async def _next(client: RawClient, event: str) -> Frame:
    frames = await client.until(lambda f: f["event"] in (event, "error", "reply.rejected"))
    assert frames[-1]["event"] == event, frames[-1]
    return frames[-1]


async def test_bot_reply_is_confirmed_spoken_and_finished(client: RawClient) -> None:
    call_id = await _answered(client, greeting=None)
    await client.send(event="bot.reply", call_id=call_id, message_id="msg_abcdefabcdef",
                      text="Your appointment is at nine.", in_reply_to="")
    confirmed = await _next(client, "message.confirmed")
    assert confirmed["message_id"] == "msg_abcdefabcdef"
    speaking = await _next(client, "bot.speaking")
    assert speaking["text"] == "Your appointment is at nine."
    finished = await _next(client, "bot.finished")
    assert finished["message_id"] == "msg_abcdefabcdef" and finished["duration_ms"] > 0


async def test_history_get_returns_the_call_history(client: RawClient) -> None:
    call_id = await _answered(client)
    await client.send(event="history.add", call_id=call_id, request_id="rq_1",
                      messages=[{"role": "user", "content": "added"}])
    assert (await _next(client, "history.updated"))["request_id"] == "rq_1"
    await client.send(event="history.get", call_id=call_id, request_id="rq_2")
    data = await _next(client, "history.data")
    assert data["request_id"] == "rq_2" and data["call_id"] == call_id
    assert {"role": "assistant", "content": "Hi there."} in data["messages"]
    assert data["messages"][-1] == {"role": "user", "content": "added"}


async def test_dtmf_is_acknowledged_and_bad_digits_refused(client: RawClient) -> None:
    call_id = await _answered(client)
    await client.send(event="call.dtmf", call_id=call_id, digits="12#")
    assert (await _next(client, "call.dtmf_sent"))["digits"] == "12#"
    await client.send(event="call.dtmf", call_id=call_id, digits="12x")
    error = await _next(client, "error")
    assert (error["command"], error["code"], error["call_id"]) == (
        "call.dtmf", "BAD_REQUEST", call_id)


async def test_session_configure_is_acknowledged(client: RawClient) -> None:
    call_id = await _answered(client)
    await client.send(event="session.configure", session_id=call_id, agent_id="reminder",
                      language="es")
    configured = await _next(client, "session.configured")
    assert configured["session_id"] == call_id


async def test_forward_acknowledges_then_ends_the_call(client: RawClient) -> None:
    call_id = await _answered(client)
    await client.send(event="call.forward", call_id=call_id, to="+15557654321", message="",
                      announce=False)
    assert (await _next(client, "call.forwarded"))["to"] == "+15557654321"
    frames = await client.until(ended(call_id))
    assert frames[-1]["reason"] == "transferred"


async def test_forward_of_a_ringing_call_is_an_error(sandbox: Sandbox, client: RawClient) -> None:
    await client.dial(RINGS_OUT)
    call_id = (await client.expect("call.dialing"))["call_id"]
    await client.send(event="call.forward", call_id=call_id, to="+15557654321")
    error = await _next(client, "error")
    assert (error["command"], error["code"]) == ("call.forward", "CALL_NOT_ANSWERED")


@pytest.mark.parametrize(
    ("frame", "reply"),
    [
        ({"event": "bot.reply", "message_id": "msg_000000000000", "text": "hi",
          "in_reply_to": ""}, "reply.rejected"),
        ({"event": "history.get", "request_id": "rq_9"}, "history.data"),
        ({"event": "call.dtmf", "digits": "1"}, "error"),
        ({"event": "call.forward", "to": "+15557654321"}, "error"),
        ({"event": "call.hold"}, "error"),
    ],
)
async def test_commands_on_an_unknown_call_are_answered(
    client: RawClient, frame: dict[str, Any], reply: str
) -> None:
    await client.send(**frame, call_id="CAnope")
    answer = await client.expect(reply)
    assert answer["call_id"] == "CAnope"
    if reply == "error":
        assert (answer["command"], answer["code"]) == (frame["event"], "CALL_NOT_FOUND")
    else:
        assert answer.get("error") or answer.get("reason")


async def test_session_configure_unknown_session_names_the_command(client: RawClient) -> None:
    await client.send(event="session.configure", session_id="CAnope")
    error = await client.expect("error")
    assert (error["command"], error["session_id"]) == ("session.configure", "CAnope")


async def test_limit_and_duration_are_in_simulated_seconds() -> None:
    quick_answer = Scenario.from_toml(f'[[rules]]\nmatch = "{NO_HANGUP}"\nring_s = 0.5\n')
    async with Sandbox(speed=5, seed=1, scenario=quick_answer) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register(session_limits={"max_duration_seconds": 20})
        await c.dial(NO_HANGUP)
        frames = await c.until(ended(), timeout_s=30)
        end = frames[-1]
        timeout = next(f for f in frames if f["event"] == "session.timeout")
        assert timeout["reason"] == end["reason"] == "max_duration"
        assert 19.9 <= end["duration_seconds"] < 22.0, end  # was 4.0 (real seconds)
        assert sb.dials[-1].duration_seconds == end["duration_seconds"]
        await c.ws.close()


async def test_the_dial_log_keeps_the_latest_dials_in_memory_and_every_dial_in_its_file(
        tmp_path: Path) -> None:
    from dispatch.sandbox.dial_log import DialLog, DialRecord

    log = DialLog(tmp_path / "dials.jsonl", max_records=10)
    async with anyio.create_task_group() as tg:
        tg.start_soon(log.run)
        for i in range(25):
            record = DialRecord(f"c{i}", "a", f"+1555000{i:04d}", None, None, float(i), 1)
            log.opened(record)
            log.ended(record, "hangup", float(i) + 1)
        log.close()
    assert log.total == 25
    assert 5 <= len(log.records) <= 10  # bounded, and the newest are the ones kept
    assert log.records[-1].call_id == "c24"
    assert [r.call_id for r in log.records] == [f"c{i}" for i in range(25 - len(log.records),
                                                                       25)]
    lines = (tmp_path / "dials.jsonl").read_text().splitlines()
    assert sum('"event":"dial"' in line for line in lines) == 25  # the file has them all
    with pytest.raises(ValueError, match="max_records"):
        DialLog(max_records=1)
