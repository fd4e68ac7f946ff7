"""Scenario files: parsing, clear errors, determinism, tool-call round trips."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from dispatch.sandbox import Sandbox, Scenario, ScenarioError, digit_outcome

from .helpers import open_client

EXAMPLE = Path(__file__).with_name("reminder.toml")


def test_example_file_parses_and_matches() -> None:
    scenario = Scenario.from_file(EXAMPLE)
    rng = random.Random(0)
    confirm = scenario.plan("+15550100001", rng)
    assert confirm.outcome == "hangup"
    assert [t.tool for t in confirm.turns] == ["confirm_appointment"]
    assert confirm.turns[0].arguments == {"status": "confirmed"}
    assert 1 <= confirm.ring_s <= 3
    assert scenario.plan("+15550300077", rng).outcome == "busy"  # no outcome: digit rule
    assert scenario.plan("+15550400002", rng).ring_s == 0.5
    assert [t.say for t in scenario.plan("+15550500001", rng).turns] == [
        "Hello?",
        "Oh okay, thanks, bye.",
    ]
    assert scenario.rule_for("+19990000000") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[[rules]]\nmatch = "+1*"\noutcome = "maybe"\n', "rules[0].outcome"),
        ('[[rules]]\noutcome = "busy"\n', "rules[0].match"),
        ('[[rules]]\nmatch = "re:(unclosed"\n', "rules[0].match"),
        ("[defaults]\nring_s = [5, 1]\n", "defaults.ring_s"),
        ("[defaults]\nring_seconds = 3\n", "defaults.ring_seconds"),
        ('[[rules]]\nmatch = "+1"\n[[rules.turns]]\ntool = "x"\n', "rules[0].turns[0].say"),
        ("this is = = not toml", "invalid TOML"),
    ],
)
def test_bad_scenario_names_source_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        Scenario.from_file(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.from_file(tmp_path / "nope.toml")


def test_sandbox_constructor_validates_scenario_path(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[rules]]\nmatch = 1\n")
    with pytest.raises(ScenarioError, match="rules"):
        Sandbox(scenario=path)


def test_digit_rule_table() -> None:
    expected = {
        0: "hangup",
        59: "hangup",
        60: "no-answer",
        74: "no-answer",
        75: "busy",
        84: "busy",
        85: "failed",
        89: "failed",
        90: "disconnected",
        94: "disconnected",
        95: "no-hangup",
        99: "no-hangup",
    }
    for digits, outcome in expected.items():
        assert digit_outcome(f"+1555000{digits:04d}") == outcome


def test_plans_are_deterministic_for_a_seed() -> None:
    numbers = [f"+1555000{i:04d}" for i in range(40)]

    def plans(seed: int, order: list[str]) -> dict[tuple[str, int], object]:
        state = Sandbox(seed=seed).state
        out: dict[tuple[str, int], object] = {}
        for to in order:
            for attempt in range(2):  # redials draw anew, but deterministically
                out[(to, attempt)] = state.plan_call(to)
        return out

    a = plans(5, numbers)
    assert a == plans(5, list(reversed(numbers)))  # arrival order does not matter
    assert a != plans(6, numbers)
    assert a[(numbers[0], 0)] != a[(numbers[0], 1)]


@pytest.mark.anyio
async def test_tool_call_round_trip() -> None:
    async with Sandbox(scenario=EXAMPLE, speed=100) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register(tools=[{"type": "function", "function": {"name": "confirm_appointment"}}])
        await c.dial("+15550100001", greeting="Hi, reminder for tomorrow at 10.")
        frames = await c.until(lambda f: f["event"] == "llm.tool_call")
        assert [f["event"] for f in frames] == [
            "call.dialing",
            "call.started",
            "bot.speaking",
            "bot.finished",
            "user.message",
            "llm.tool_call",
        ]
        assert frames[4]["text"] == "Yes, I'll be there."
        tool = frames[-1]
        (item,) = tool["tool_calls"]
        assert item["name"] == "confirm_appointment"
        assert json.loads(item["arguments"]) == {"status": "confirmed"}
        await c.send(
            event="llm.tool_result",
            call_id=tool["call_id"],
            msg_id=tool["msg_id"],
            results=[
                {"tool_call_id": item["id"], "result": {"ok": True, "disposition": "confirmed"}}
            ],
        )
        rest = await c.until(lambda f: f["event"] == "call.ended")
        assert [f["event"] for f in rest] == ["bot.speaking", "bot.finished", "call.ended"]
        assert rest[0]["text"] == "Great, see you then. Goodbye!"
        assert rest[-1]["reason"] == "hangup"
        assert sb.dials[-1].tool_results == [
            {
                "name": "confirm_appointment",
                "arguments": {"status": "confirmed"},
                "result": {"ok": True, "disposition": "confirmed"},
            }
        ]
        await c.ws.close()


@pytest.mark.anyio
async def test_unanswered_tool_call_times_out() -> None:
    text = EXAMPLE.read_text().replace("tool_timeout_s = 5", "tool_timeout_s = 0.05")
    async with Sandbox(scenario=Scenario.from_toml(text), speed=100) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register()
        await c.dial("+15550200001")
        frames = await c.until(lambda f: f["event"] == "call.ended")
        assert "llm.tool_call" in [f["event"] for f in frames]
        assert sb.dials[-1].tool_results[0]["result"] == {"error": "tool timeout"}
        await c.ws.close()
