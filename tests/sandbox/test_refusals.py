"""The sandbox's simulated platform refusals: each switch, its exact frame, its dial log."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect

from dispatch.compliance import RefusalKind
from dispatch.sandbox import RefusalSettings, Sandbox, Scenario, ScenarioError
from dispatch.sandbox.refusals import PlatformGuard
from dispatch.sdk.reasons import classify_dial_refusal, retry_after_s

from .helpers import RawClient, ended

pytestmark = pytest.mark.anyio

K = RefusalKind


async def _refusal(sandbox: Sandbox, client: RawClient, to: str) -> dict[str, Any]:
    await client.dial(to, metadata={"dispatch_attempt": "a1"})
    return await client.expect("call.error")


@pytest.mark.parametrize(("settings", "to", "code", "status", "kind"), [
    ({"do_not_call": ["+1555000*"]}, "+15550001234", "do_not_call", 403, K.DNC),
    ({"no_consent": ["re:\\+1555.*"]}, "+15550001234", "no_consent", 403, K.NO_CONSENT),
    ({"stranger": ["+15550001234"]}, "+15550001234", "stranger", 403, K.STRANGER),
    ({"quiet_hours": ["+1*"]}, "+15550001234", "quiet_hours", 403, K.QUIET_HOURS),
    ({"quota_after": 0}, "+15550001234", "minutes", 429, K.QUOTA),
    ({"quota_after": 0, "quota": "concurrent_calls"}, "+15550001234", "concurrent_calls",
     429, K.QUOTA),
    ({"storm": 1.0}, "+15550001234", "too_fast", 429, K.SLOW_DOWN),
])
async def test_each_refusal_frame(sandbox: Sandbox, client: RawClient, settings: dict[str, Any],
                                  to: str, code: str, status: int, kind: RefusalKind) -> None:
    sandbox.set_refusals(RefusalSettings(**settings))
    frame = await _refusal(sandbox, client, to)
    assert (frame["code"], frame["status"], frame["to"]) == (code, status, to)
    assert frame["agent_id"] == "reminder" and frame["metadata"] == {"dispatch_attempt": "a1"}
    assert frame["error"].startswith(f"{status} {code}: ")
    # the SDK boundary maps the frame exactly once
    assert classify_dial_refusal(frame, frame["error"]) is kind
    record = sandbox.dials[-1]
    assert (record.call_id, record.outcome, record.error_code) == (None, "rejected", code)


async def test_other_numbers_are_placed(sandbox: Sandbox, client: RawClient) -> None:
    sandbox.set_refusals(RefusalSettings(do_not_call=["+1666*"]))
    await client.dial("+15550000001")
    frame = await client.expect("call.dialing")
    await client.until(ended(frame["call_id"]))


async def test_per_minute_guard_counts_refusals_and_hints_the_wait(
        sandbox: Sandbox, client: RawClient) -> None:
    sandbox.set_refusals(RefusalSettings(per_minute=2, minute_s=30))
    for n in (1, 2):
        await client.dial(f"+1555000000{n}")
        await client.expect("call.dialing")
    await client.dial("+15550000003")
    refused = await client.until(lambda f: f["event"] == "call.error")
    error = refused[-1]
    assert (error["code"], error["status"]) == ("too_fast", 429)
    assert 25.0 < error["retry_after"] <= 30.0
    assert retry_after_s(error) == error["retry_after"]
    assert sandbox.state.refusals.refused == {"too_fast": 1}


def test_guard_rules_on_a_fake_clock() -> None:
    now = [0.0]
    guard = PlatformGuard(RefusalSettings(per_minute=2, minute_s=10, per_number=1,
                                          per_day=5, day_retry_after_s=77),
                          clock=lambda: now[0])
    assert guard.check("+15550000001") is None
    guard.placed("+15550000001")
    again = guard.check("+15550000001")  # the same number again
    assert again is not None and (again.code, again.retry_after_s) == ("too_often", 77)
    fast = guard.check("+15550000002")  # 2 dials in the window (refusals count)
    assert fast is not None and fast.code == "too_fast" and fast.retry_after_s == 10.0
    now[0] = 10.0  # the first two left the window; the third (t=0) too
    assert guard.check("+15550000003") is None
    now[0] = 30.0
    assert guard.check("+15550000004") is None
    day = guard.check("+15550000005")  # the 6th dial received
    assert day is not None and (day.code, day.status) == ("too_many", 429)


def test_storm_is_seeded_and_bounded() -> None:
    def pattern(seed: int) -> list[bool]:
        guard = PlatformGuard(RefusalSettings(storm=0.5, storm_dials=40), seed=seed,
                              clock=lambda: 0.0)
        return [guard.check(f"+1555000{n:04d}") is not None for n in range(60)]

    first = pattern(3)
    assert first == pattern(3)
    assert 10 <= sum(first[:40]) <= 30  # about half of the storm's dials
    assert not any(first[40:])  # and none after it


async def test_generic_error_frame_variant(sandbox: Sandbox, client: RawClient) -> None:
    sandbox.set_refusals(RefusalSettings(do_not_call=["+1*"], frame="error"))
    await client.dial("+15550000001", metadata={"dispatch_attempt": "x"})
    frame = await client.expect("error")
    assert (frame["code"], frame["command"], frame["to"]) == ("do_not_call", "call.dial",
                                                             "+15550000001")


def test_scenario_table_and_errors() -> None:
    scenario = Scenario.from_toml('[refusals]\nper_minute = 6\ndo_not_call = ["+1666*"]\n')
    assert scenario.model.refusals.per_minute == 6
    with pytest.raises(ScenarioError, match=r"refusals\.storm"):
        Scenario.from_toml("[refusals]\nstorm = 2\n")
    with pytest.raises(ScenarioError, match=r"refusals\.bogus"):
        Scenario.from_toml("[refusals]\nbogus = 1\n")


async def test_cli_flags_produce_refusals(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[refusals]\ndo_not_call = ["+1555000100*"]\n')
    dial_log = tmp_path / "dials.jsonl"
    cmd = [sys.executable, "-m", "dispatch", "sandbox", "--port", "0", "--instant",
           "--scenario", str(scenario), "--refuse-no-consent", "+1555000200*",
           "--refuse-dnc", "+1555000300*", "--dial-log", str(dial_log)]
    async with await anyio.open_process(cmd) as proc:
        assert proc.stdout is not None
        line = b""
        with anyio.fail_after(30):
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive(1)
        url = line.decode().strip().rsplit(" ", 1)[-1]
        async with connect(url + "/client", compression=None) as ws:
            c = RawClient(ws)
            await c.handshake()
            await c.register()
            codes = []
            for to in ("+15550001001", "+15550002001", "+15550003001"):
                await c.dial(to)
                frame = await c.recv()
                codes.append(frame.get("code", frame["event"]))
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            assert await proc.wait() == 0
    assert codes == ["do_not_call", "no_consent", "do_not_call"]
    lines = [json.loads(x) for x in dial_log.read_text().splitlines()]
    assert [(x["outcome"], x["error_code"]) for x in lines] == [
        ("rejected", "do_not_call"), ("rejected", "no_consent"), ("rejected", "do_not_call")]


async def test_cli_rejects_a_bad_refusal_flag() -> None:
    result = await anyio.run_process(
        [sys.executable, "-m", "dispatch", "sandbox", "--refuse-storm", "1.5"], check=False)
    assert result.returncode == 2
    assert result.stderr.decode().strip() == (
        "dispatch sandbox: --refuse-storm: Input should be less than or equal to 1")
