"""The client against the real sandbox over a real loopback WebSocket."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from dispatch.sandbox import Faults, Sandbox, Scenario
from dispatch.sdk import (
    AuthenticationError,
    Call,
    ConnectionLost,
    DialFailed,
    Pinecall,
    Reason,
    tool,
)

pytestmark = pytest.mark.anyio
FROM = "+15005550006"
FAST = {"reconnect_base_s": 0.05, "reconnect_max_s": 0.2}


@asynccontextmanager
async def client(sandbox: Sandbox, **options: Any) -> AsyncIterator[Pinecall]:
    async with Pinecall("pk_sandbox", sandbox.url, **{**FAST, **options}) as pc:
        yield pc


async def settle(agent: Any, to: str, **kw: Any) -> Call | DialFailed:
    try:
        call: Call = await agent.dial(to, **kw)
    except DialFailed as exc:
        return exc
    if int(to[-2:]) >= 95:  # this callee never hangs up
        await call.hangup()
    return await call.wait_ended()


async def test_every_dial_outcome() -> None:
    async with Sandbox(speed=100, seed=1) as sandbox, client(sandbox) as pc:
        agent = pc.agent("outcomes", phone_number=FROM, prompt="hi")
        await agent.ready()
        out: dict[str, Call | DialFailed] = {}

        async def one(to: str) -> None:
            out[to] = await settle(agent, to)

        async def never_hangs_up() -> None:
            call = await agent.dial("+15551230097")
            await call.hangup()
            out[call.to or ""] = await call.wait_ended()

        async with anyio.create_task_group() as tg:
            for to in ("+15551230001", "+15551230061", "+15551230076", "+15551230086",
                       "+15551230091"):
                tg.start_soon(one, to)
            tg.start_soon(never_hangs_up)
    answered = out["+15551230001"]
    assert isinstance(answered, Call) and answered.end_reason is Reason.HANGUP
    assert answered.duration_s and answered.duration_s > 0 and answered.transcript
    for to, reason, raw in [("+15551230061", Reason.NO_ANSWER, "no-answer"),
                            ("+15551230076", Reason.BUSY, "busy"),
                            ("+15551230086", Reason.FAILED, "failed")]:
        failed = out[to]
        assert isinstance(failed, DialFailed) and failed.reason is reason
        assert failed.raw_reason == raw and failed.call_id and failed.call_id.startswith("CA")
    dropped = out["+15551230091"]
    assert isinstance(dropped, Call) and dropped.end_reason is Reason.DISCONNECTED
    hung = out["+15551230097"]
    assert isinstance(hung, Call) and hung.end_reason is Reason.HANGUP


async def test_hundred_dials_in_flight_each_settle_with_their_own_call() -> None:
    numbers = [f"+15551000{i % 50 * 2:02d}" for i in range(100)]  # 50 numbers, twice each
    async with Sandbox(speed=200, seed=3) as sandbox, client(sandbox) as pc:
        agent = pc.agent("bulk", phone_number=FROM)
        await agent.ready()
        out: dict[int, Call | DialFailed] = {}

        async def one(i: int) -> None:
            call_or_error = await settle(agent, numbers[i], metadata={"i": i})
            out[i] = call_or_error

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(one, i)
        records = {r.call_id: r for r in sandbox.dials}
    assert len(out) == 100 and len(records) == 100
    seen_ids = set()
    for i, result in out.items():
        call_id = result.id if isinstance(result, Call) else result.call_id
        assert call_id not in seen_ids
        seen_ids.add(call_id)
        record = records[call_id]
        assert record.to == numbers[i] and record.metadata is not None
        assert record.metadata["i"] == i, "settled with its own call"
        if isinstance(result, Call):
            assert result.metadata == {"i": i}
            assert record.outcome in ("hangup", "disconnected")
            assert result.end_reason_raw == record.outcome
        else:
            assert result.raw_reason == record.outcome
    kinds = Counter(r.reason if isinstance(r, DialFailed) else r.end_reason
                    for r in out.values())
    assert kinds == {Reason.HANGUP: 64, Reason.NO_ANSWER: 16, Reason.BUSY: 10,
                     Reason.FAILED: 4, Reason.DISCONNECTED: 6}


async def test_bad_key_is_refused_once() -> None:
    async with Sandbox(api_key="pk_right_key") as sandbox:
        pc = Pinecall("pk_wrong_key", sandbox.url, **FAST)
        with pytest.raises(AuthenticationError) as info:
            await pc.connect()
        assert info.value.code == "INVALID_KEY" and "pk_wrong_key" not in str(info.value)
        await anyio.sleep(0.2)  # would show a retry loop, if there were one
        assert sandbox.statistics().connections == 0
        assert pc.state == "failed"


async def test_reconnect_after_server_drop_settles_everything() -> None:
    faults = Faults()
    async with Sandbox(speed=100, seed=2, faults=faults) as sandbox, client(sandbox) as pc:
        agent = pc.agent("recon", phone_number=FROM)
        await agent.ready()
        disconnected: list[dict[str, Any]] = []
        pc.on("disconnected", disconnected.append)
        live = await agent.dial("+15551230098")  # answers, never hangs up
        errors: list[BaseException] = []

        async def pending(to: str) -> None:
            try:
                await agent.dial(to)
            except (ConnectionLost, DialFailed) as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(pending, f"+155512300{65 + n}")  # ringing: no-answer later
            await sandbox.wait_until(lambda s: s.total_dials == 6)
            await sandbox.drop_connections(1011, "sandbox drop")
        assert len(errors) == 5 and all(isinstance(e, ConnectionLost) for e in errors)
        assert live.ended and live.end_reason is Reason.DISCONNECTED
        assert live.end_reason_raw == "sandbox drop"
        assert live.id in disconnected[0]["call_ids"]
        with anyio.fail_after(10):
            await agent.ready()
        assert isinstance(await settle(agent, "+15551230002"), Call)


async def test_tool_call_round_trip() -> None:
    class Confirm(BaseModel):
        status: str

    scenario = Scenario.from_toml("""
[[rules]]
match = "+15557770001"
outcome = "hangup"
[[rules.turns]]
say = "Yes, I'll be there."
tool = "confirm"
arguments = { status = "confirmed" }
reply = "Great."
""")
    got: list[tuple[str, str | None]] = []

    def confirm(args: Confirm, call: Call | None) -> dict[str, str]:
        got.append((args.status, call.id if call else None))
        return {"saved": "yes", "disposition": args.status}

    async with Sandbox(speed=100, scenario=scenario) as sandbox, client(sandbox) as pc:
        agent = pc.agent("tools", phone_number=FROM,
                         tools=[tool(name="confirm", schema=Confirm, execute=confirm)])
        call = await agent.dial("+15557770001")
        await call.wait_ended()
        [record] = sandbox.dials
    assert got == [("confirmed", call.id)]
    assert call.disposition == "confirmed"
    assert call.tool_results == [{"name": "confirm", "arguments": {"status": "confirmed"},
                                  "result": {"saved": "yes", "disposition": "confirmed"}}]
    assert record.tool_results and "saved" in str(record.tool_results)


async def test_timeout_then_hangup() -> None:
    async with Sandbox(speed=1) as sandbox, client(sandbox) as pc:  # rings 20-30 s
        agent = pc.agent("slow", phone_number=FROM)
        with pytest.raises(DialFailed) as info:
            await agent.dial("+15551230066", timeout_s=0.5)
        assert info.value.reason is Reason.TIMEOUT and info.value.call_id
        await sandbox.wait_until(lambda s: s.live_calls == 0, timeout_s=10)
        [record] = sandbox.dials
        assert record.call_id == info.value.call_id and record.outcome == "canceled"


async def test_conflict_retry_second_client_wins_after_first_closes() -> None:
    async with Sandbox(speed=100, conflict_retry_after_s=0.05) as sandbox:
        first_ready, release_first = anyio.Event(), anyio.Event()

        async def hold_first() -> None:
            async with client(sandbox) as first:
                await first.agent("shared", phone_number=FROM).ready()
                first_ready.set()
                await release_first.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold_first)
            await first_ready.wait()
            async with client(sandbox, conflict_base_delay_s=0.05) as second:
                agent = second.agent("shared", phone_number=FROM)
                with anyio.move_on_after(0.3):
                    await agent.ready()
                assert agent.state == "registering"  # still retrying the conflict
                release_first.set()
                with anyio.fail_after(10):
                    await agent.ready()
                assert isinstance(await settle(agent, "+15551230003"), Call)
