"""Per-call dial correlation against the scripted in-memory server."""

from __future__ import annotations

import random

import anyio
import pytest

from dispatch.sdk import Call, ConfigurationError, DialFailed, Reason

from .fake_server import FakeServer, connected

pytestmark = pytest.mark.anyio
FROM = "+15005550006"


async def test_dial_frame_shape_and_answer() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("reminder", phone_number=FROM, prompt="hi", voice="v")
        await agent.ready()
        create = server.frames("agent.create")[0]
        assert create == {"event": "agent.create", "agent_id": "reminder", "voice": "v",
                          "prompt": "hi"}
        seen: list[Call] = []
        async with anyio.create_task_group() as tg:
            async def answer() -> None:
                [dial] = await server.wait_for("call.dial")
                call_id = server.call_id_for(dial["metadata"]["dispatch_attempt"])
                await server.answer(call_id)
            tg.start_soon(answer)
            call = await agent.dial("+15551230001", on_dialing=seen.append)
        [dial] = server.frames("call.dial")
        assert set(dial) == {"event", "agent_id", "to", "from", "metadata"}
        assert dial["from"] == FROM and dial["to"] == "+15551230001"
        assert call.answered and call.id == seen[0].id and call.metadata == {}
        assert call.started_at is not None and not call.ended


@pytest.mark.parametrize("echo", [True, False])
async def test_many_dials_out_of_order(echo: bool) -> None:
    """60 dials on one agent, some to the same number, answered/failed in random order."""
    server = FakeServer(echo_metadata=echo)
    rng = random.Random(7)
    numbers = [f"+1555123{i % 40:04d}" for i in range(60)]  # 20 numbers repeated
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        results: dict[int, Call | DialFailed] = {}

        async def one(i: int) -> None:
            try:
                results[i] = await agent.dial(numbers[i], metadata={"i": i})
            except DialFailed as exc:
                results[i] = exc

        async def play() -> None:
            await server.wait_for("call.dial", 60)
            call_ids = list(server.dials)
            rng.shuffle(call_ids)
            for n, call_id in enumerate(call_ids):
                if n % 3 == 0:
                    await server.end(call_id, "busy")
                else:
                    await server.answer(call_id)

        async with anyio.create_task_group() as tg:
            for i in range(60):
                tg.start_soon(one, i)
            tg.start_soon(play)
    for i, outcome in results.items():
        sent = server.dials[outcome.call_id if isinstance(outcome, DialFailed) else outcome.id]
        assert sent["metadata"] == {"i": i, "dispatch_attempt": sent["metadata"][
            "dispatch_attempt"]}, "each dial settled with its own call"
        if isinstance(outcome, Call):
            assert outcome.metadata == {"i": i} and outcome.to == numbers[i]
    busy = [r for r in results.values() if isinstance(r, DialFailed)]
    assert len(results) == 60 and len(busy) == 20
    assert all(b.reason is Reason.BUSY and b.raw_reason == "busy" for b in busy)


async def test_unrelated_hangup_and_unknown_end_do_not_settle_others() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        async with anyio.create_task_group() as tg:
            answered = anyio.Event()
            first: list[Call] = []

            async def dial_first() -> None:
                first.append(await agent.dial("+15551230001"))
                answered.set()

            tg.start_soon(dial_first)
            await server.wait_for("call.dial")
            await server.answer(next(iter(server.dials)))
            await answered.wait()
            pending: list[Call | DialFailed] = []

            async def dial_second() -> None:
                try:
                    pending.append(await agent.dial("+15551230002"))
                except DialFailed as exc:
                    pending.append(exc)

            tg.start_soon(dial_second)
            await server.wait_for("call.dial", 2)
            first_id, second_id = list(server.dials)
            await server.end(first_id, "hangup")  # unrelated hang-up
            await server.send({"event": "call.ended", "agent_id": "a", "call_id": "CAunknown",
                               "reason": "busy"})  # unknown id, no direction
            await server.send({"event": "call.error", "agent_id": "a", "call_id": "CAother",
                               "error": "boom"})
            await first[0].wait_ended()
            assert first[0].end_reason is Reason.HANGUP
            assert pending == []
            await server.answer(second_id)
        [second_call] = pending
        assert isinstance(second_call, Call) and second_call.id == second_id


async def test_call_error_routing() -> None:
    server = FakeServer(auto_dialing=False, echo_metadata=False)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        outcomes: dict[str, Call | DialFailed] = {}

        async def dial(to: str) -> None:
            try:
                outcomes[to] = await agent.dial(to)
            except DialFailed as exc:
                outcomes[to] = exc

        async with anyio.create_task_group() as tg:
            for to in ("+15551230001", "+15551230002", "+15551230003"):
                tg.start_soon(dial, to)
            dials = await server.wait_for("call.dial", 3)
            by_to = {d["to"]: d for d in dials}
            # no call id, metadata echo: settles exactly that dial
            await server.send({"event": "call.error", "agent_id": "a", "to": "+15551230002",
                               "metadata": by_to["+15551230002"]["metadata"],
                               "error": "bad number", "code": "INVALID_NUMBER"})
            # no call id, no echo: oldest unbound dial with the same `to`
            await server.send({"event": "call.error", "agent_id": "a", "to": "+15551230003",
                               "error": "nope"})
            # with a call id after call.dialing
            call_id = await server.dialing(by_to["+15551230001"])
            await server.send({"event": "call.error", "agent_id": "a", "call_id": call_id,
                               "error": "carrier", "code": "X"})
        two, three, one = (outcomes[f"+1555123000{i}"] for i in (2, 3, 1))
        assert isinstance(two, DialFailed) and two.code == "INVALID_NUMBER"
        assert two.reason is Reason.ERROR and two.raw_reason == "bad number"
        assert isinstance(three, DialFailed) and three.raw_reason == "nope"
        assert isinstance(one, DialFailed) and one.call_id == call_id and one.code == "X"


async def test_timeout_after_dialing_hangs_up_and_late_answer_is_hung_up() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        with pytest.raises(DialFailed) as info:
            await agent.dial("+15551230001", timeout_s=0.2)
        assert info.value.reason is Reason.TIMEOUT and info.value.call_id is not None
        [hangup] = await server.wait_for("call.hangup")
        assert hangup == {"event": "call.hangup", "call_id": info.value.call_id}
        await server.answer(info.value.call_id)  # connects anyway
        await server.wait_for("call.hangup", 2)


async def test_timeout_before_dialing_binds_late_and_hangs_up() -> None:
    server = FakeServer(auto_dialing=False, echo_metadata=False)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        with pytest.raises(DialFailed) as info:
            await agent.dial("+15551230001", timeout_s=0.1)
        assert info.value.call_id is None
        late, fresh = None, None
        async with anyio.create_task_group() as tg:
            async def dial_again() -> None:
                nonlocal fresh
                fresh = await agent.dial("+15551230001")
            tg.start_soon(dial_again)
            first, second = await server.wait_for("call.dial", 2)
            late = await server.dialing(first)  # bound in order to the timed-out dial
            [hangup] = await server.wait_for("call.hangup")
            assert hangup["call_id"] == late
            second_id = await server.dialing(second)
            await server.answer(second_id)
        assert fresh is not None and fresh.id == second_id


async def test_cancelled_dial_is_hung_up_once_known() -> None:
    server = FakeServer(auto_dialing=False)
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        with anyio.move_on_after(0.1):
            await agent.dial("+15551230001")
        [dial] = server.frames("call.dial")
        call_id = await server.dialing(dial)
        [hangup] = await server.wait_for("call.hangup")
        assert hangup["call_id"] == call_id


async def test_unanswered_end_reasons_are_normalised() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        agent = pc.agent("a", phone_number=FROM)
        for raw, reason in [("no-answer", Reason.NO_ANSWER), ("failed", Reason.FAILED),
                            ("canceled", Reason.CANCELED), ("weird", Reason.FAILED)]:
            async with anyio.create_task_group() as tg:
                count = len(server.frames("call.dial")) + 1

                async def fail(raw: str = raw, count: int = count) -> None:
                    await server.wait_for("call.dial", count)
                    await server.end(list(server.dials)[-1], raw)

                tg.start_soon(fail)
                with pytest.raises(DialFailed) as info:
                    await agent.dial("+15551230001")
            assert info.value.reason is reason and info.value.raw_reason == raw
            assert info.value.call_id == list(server.dials)[-1]
        assert not pc.calls and not len(pc.book)


async def test_invalid_to_and_from_resolution_send_nothing() -> None:
    server = FakeServer()
    async with connected(server) as pc:
        none = pc.agent("none")
        two = pc.agent("two", phone_number=[FROM, "+15005550007"])
        one = pc.agent("one", phone_number=FROM)
        with pytest.raises(ConfigurationError, match=r"E\.164"):
            await one.dial("5551230001")
        with pytest.raises(ConfigurationError, match="No phone numbers registered"):
            await none.dial("+15551230001")
        with pytest.raises(ConfigurationError, match="Multiple phone channels"):
            await two.dial("+15551230001")
        with pytest.raises(ConfigurationError):
            pc.agent("bad", phone_number="12")
        assert server.frames("call.dial") == []
