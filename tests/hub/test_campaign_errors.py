"""A dial failure that is the same for every record stops the campaign and leaves the
list pending, instead of marking every record failed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.errors import CampaignError
from dispatch.hub import DispatchHub, RetryPolicy
from dispatch.hub.campaign import STOP_AFTER
from dispatch.sandbox import Sandbox
from dispatch.sdk import Pinecall
from dispatch.sdk.errors import AuthenticationError, ConfigurationError, RegistrationError
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy, Raise

from .helpers import read_db, records

pytestmark = pytest.mark.anyio

NO_NUMBER = ConfigurationError("No phone numbers registered on agent 'a'. Add one with "
                               "phone_number= or pass from_ to dial().")


async def run_failing(tmp_path: Path, dialer: MemoryDialer, clock: FakeClock, n: int = 10,
                      **options: Any) -> CampaignError:
    hub = DispatchHub(dialer, [MemoryStrategy(records(n))], db=tmp_path / "hub.db", clock=clock,
                      max_concurrent=1, **options)
    async with clock.autojump():
        with anyio.fail_after(30), pytest.raises(CampaignError) as info:
            await hub.run(until_idle=True)
    return info.value


async def test_no_caller_id_stops_after_a_few_dials_and_leaves_the_list_pending(
    tmp_path: Path,
):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Raise(NO_NUMBER))
    error = await run_failing(tmp_path, dialer, clock, retry_attempts=2)
    assert "\n" not in str(error) and "No phone numbers registered on agent 'a'" in str(error)
    assert f"{STOP_AFTER} dials in a row" in str(error)
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"pending"}
    assert len(attempts) == STOP_AFTER
    assert all(a.raw_reason == "campaign_error" and "No phone numbers" in (a.error or "")
               for a in attempts)

    # the fix on the same database: everyone is dialled once, nothing was burnt
    fixed = MemoryDialer(clock, default=Answer(1))
    hub = DispatchHub(fixed, [MemoryStrategy(records(10))], db=tmp_path / "hub.db", clock=clock)
    async with clock.autojump():
        await hub.run(until_idle=True)
    rows, _ = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"} and len(fixed.dials) == 10


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (AuthenticationError("key refused", code="INVALID_KEY"), "refused the API key"),
        (RegistrationError("agent refused", code="AGENT_CONFLICT_FATAL"),
         "refused the agent's registration"),
    ],
)
async def test_a_refused_key_or_registration_stops_at_once(
    tmp_path: Path, error: Exception, cause: str
):
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Raise(error))
    raised = await run_failing(tmp_path, dialer, clock)
    assert cause in str(raised) and "1 dial failed" in str(raised)
    assert raised.__cause__ is error
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"pending"} and len(attempts) == 1


async def test_a_passing_campaign_error_does_not_count_toward_retries(tmp_path: Path):
    clock = FakeClock()
    phone = records(1)[0].phone
    dialer = MemoryDialer(clock, script={phone: [Raise(NO_NUMBER), "busy", Answer(1)]})
    hub = DispatchHub(dialer, [MemoryStrategy(records(1))], db=tmp_path / "hub.db", clock=clock,
                      retry_policy=RetryPolicy(max_attempts=2))
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert rows["r0"]["status"] == "completed"
    assert [a.raw_reason for a in attempts] == ["campaign_error", "busy", "hangup"]


async def test_isolated_configuration_errors_do_not_stop_the_campaign(tmp_path: Path):
    clock = FakeClock()
    script = {r.phone: [Raise(NO_NUMBER)] if i % 3 == 0 else [Answer(1)]
              for i, r in enumerate(records(9))}
    script = {p: [*steps, Answer(1)] for p, steps in script.items()}
    dialer = MemoryDialer(clock, script=script)
    hub = DispatchHub(dialer, [MemoryStrategy(records(9))], db=tmp_path / "hub.db", clock=clock,
                      max_concurrent=1)
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    rows, _ = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"}


async def test_one_record_that_alone_keeps_failing_so_is_given_up_not_looped(tmp_path: Path):
    clock = FakeClock()
    rows_in = records(4)
    dialer = MemoryDialer(clock, script={rows_in[0].phone: [Raise(NO_NUMBER)]})
    hub = DispatchHub(dialer, [MemoryStrategy(rows_in)], db=tmp_path / "hub.db", clock=clock,
                      max_concurrent=1)
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)  # no CampaignError: the others were dialled fine
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert (rows["r0"]["status"], rows["r0"]["last_reason"]) == ("failed", "error")
    assert [a.raw_reason for a in attempts if a.record_id == "r0"] == [
        *["campaign_error"] * STOP_AFTER, "configuration"]
    assert {rows[r]["status"] for r in ("r1", "r2", "r3")} == {"completed"}


async def test_an_agent_without_a_number_on_the_real_sandbox(tmp_path: Path):
    async with Sandbox(speed=100) as sandbox, \
            Pinecall("pk_sandbox", sandbox.url, reconnect_base_s=0.05) as pc:
        agent = pc.agent("no-number")  # no phone_number=, and the hub has no from_
        hub = DispatchHub(agent, [MemoryStrategy(records(6))], db=tmp_path / "hub.db",
                          max_concurrent=2)
        with anyio.fail_after(30), pytest.raises(CampaignError) as info:
            await hub.run(until_idle=True)
    assert "No phone numbers registered on agent 'no-number'" in str(info.value)
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"pending"}
    assert 1 <= len(attempts) <= STOP_AFTER + 1
