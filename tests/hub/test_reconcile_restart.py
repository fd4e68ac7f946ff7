"""A restart asks the voice server what became of the calls a crash left behind.

The crashed run is written into the SQLite file exactly as a killed hub leaves it
(records ``dialing``, attempts with or without a call id), its calls placed in a real
Sandbox over a raw socket that then closes (the calls outlive it, as on the platform).
A new hub on the same file, dialling through the real SDK, reconciles over the
call-log REST API. The sandbox's dial log is the judge of who was dialled twice.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.client import connect

from dispatch.hub import DispatchHub, RetryPolicy
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox, Scenario
from dispatch.sdk import Pinecall
from dispatch.store import Store, insert_attempt, insert_record, update_attempt, update_record
from dispatch.testing import MemoryStrategy

from .helpers import read_db

pytestmark = pytest.mark.anyio

AGENT = "recon"
RINGING = "+15550000201"  # scenario: rings 30 simulated s (1.5 s real), then answers
SCENARIO = Scenario.from_toml(f"""
[[rules]]
match = "{RINGING}"
outcome = "hangup"
ring_s = 30
talk_s = 2
""")
POLICY = RetryPolicy(
    delays_s={Reason.BUSY: 0.2, Reason.NO_ANSWER: 0.2, Reason.INTERRUPTED: 1.0,
              Reason.DISCONNECTED: 1.0}, max_attempts=3)

#: record id -> (phone, dialled before the crash, call id stored before the crash)
CRASHED = {
    "answered": ("+15550000012", True, True),   # answered; the kill beat the in_call write
    "ringing": (RINGING, True, True),           # still ringing at the kill
    "no-call-id": ("+15550000013", True, False),  # call.dialing never reached the database
    "busy": ("+15550000077", True, True),       # a real, retryable failure
    "never-sent": ("+15550000014", False, False),  # claimed, the frame never left
}


async def _place_calls(sandbox: Sandbox) -> dict[str, str]:
    """The crashed run's dials, over a raw socket that then closes; call ids by record."""
    ids: dict[str, str] = {}
    async with connect(sandbox.url + "/client") as ws:
        async def send(**frame: Any) -> None:
            await ws.send(json.dumps(frame))

        async def until(event: str) -> dict[str, Any]:
            while (frame := json.loads(await ws.recv()))["event"] != event:
                pass
            return dict(frame)

        await send(event="connect", api_key="k")
        await until("connected")
        await send(event="agent.create", agent_id=AGENT)
        await until("agent.created")
        await send(event="channel.add", agent_id=AGENT, type="phone", ref=SANDBOX_NUMBER)
        await until("channel.added")
        for rid, (phone, dialled, _) in CRASHED.items():
            if dialled:
                meta = {"dispatch_source": "memory", "dispatch_record_id": rid,
                        "dispatch_attempt_no": 1}
                await send(event="call.dial", agent_id=AGENT, to=phone,
                           **{"from": SANDBOX_NUMBER}, metadata=meta)
                ids[rid] = (await until("call.dialing"))["call_id"]
    return ids


async def _write_crashed_run(db: Path, call_ids: dict[str, str], t0: float) -> None:
    """The rows a hub killed mid-dial leaves: records ``dialing``, open attempts."""
    ops = []
    for rid, (phone, _, stored) in CRASHED.items():
        call_id = call_ids.get(rid) if stored else None
        payload = Record(id=rid, phone=phone).payload()
        ops += [
            insert_record(id=rid, phone=phone, strategy="memory", status="pending",
                          payload=payload, now=t0),
            insert_attempt(source="memory",
                           record_id=rid, attempt_no=1, run_id=None, phone=phone, claimed_at=t0),
            update_record(source="memory", id=rid, status="dialing", attempts=1, last_reason=None,
                          last_call_id=call_id, next_attempt_at=None, disposition=None,
                          error=None, now=t0),
            update_attempt(source="memory", record_id=rid, attempt_no=1, call_id=call_id,
                           dialed_at=t0,
                           dialing_at=t0 if call_id else None, answered_at=None, ended_at=None,
                           reason=None, raw_reason=None, duration_s=None, error=None,
                           tool_results=None, disposition=None),
        ]
    async with await Store.open(db) as store:
        await store.write_now(ops)


async def _restart(sandbox: Sandbox, db: Path, policy: RetryPolicy) -> None:
    records = [Record(id=rid, phone=phone) for rid, (phone, *_) in CRASHED.items()]
    async with Pinecall("k", sandbox.url) as pc:
        agent = await pc.agent(AGENT, phone_number=SANDBOX_NUMBER).ready()
        hub = DispatchHub(agent, [MemoryStrategy(records)], from_=SANDBOX_NUMBER, db=db,
                          retry_attempts=1, retry_policy=policy, poll_interval_s=0.2)
        with anyio.fail_after(60):
            await hub.run(until_idle=True)


def _dials_per_record(sandbox: Sandbox) -> Counter[str]:
    return Counter(str((d.metadata or {}).get("dispatch_record_id")) for d in sandbox.dials)


async def test_restart_settles_crashed_attempts_with_the_real_outcome(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    async with Sandbox(speed=20, seed=2, scenario=SCENARIO, keep_calls_on_disconnect=True) as sb:
        call_ids = await _place_calls(sb)
        await _write_crashed_run(db, call_ids, t0=1.0)
        restart_at = time.time()
        await _restart(sb, db, POLICY)
        dials = _dials_per_record(sb)
        ringing = next(d for d in sb.dials if d.to == RINGING)
    # positive control: that call was still ringing when the new hub asked (it waited)
    assert ringing.answered_at is not None and ringing.answered_at > restart_at

    rows, attempts = await read_db(db)
    first = {a.record_id: a for a in attempts if a.attempt_no == 1}
    # answered calls (even one still ringing at the kill) are completed, never redialled
    for rid in ("answered", "ringing", "no-call-id"):
        assert dials[rid] == 1, (rid, dials)
        assert (rows[rid]["status"], rows[rid]["last_reason"]) == ("completed", "hangup"), rid
        assert first[rid].answered_at is not None and first[rid].duration_s
        assert first[rid].call_id == call_ids[rid]
    # a real busy goes through the retry policy (redialled once: retry_attempts=1)
    assert first["busy"].reason == "busy" and dials["busy"] == 2
    # nothing says what became of a claim whose frame never left: unknown, not redialled
    assert dials["never-sent"] == 0
    assert (rows["never-sent"]["status"], rows["never-sent"]["last_reason"]) == (
        "failed", "unknown")
    assert first["never-sent"].reason == "unknown"
    assert "retry_unknown" in (rows["never-sent"]["error"] or "")


async def test_retry_unknown_redials_an_attempt_the_server_cannot_explain(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    policy = RetryPolicy(delays_s=POLICY.delays_s, max_attempts=3, retry_unknown=True)
    async with Sandbox(speed=200, seed=2) as sb:
        await _write_crashed_run(db, {}, t0=1.0)
        await _restart(sb, db, policy)
        dials = _dials_per_record(sb)
    rows, attempts = await read_db(db)
    assert dials["never-sent"] == 1 and rows["never-sent"]["attempts"] == 2
    assert [a.reason for a in attempts if a.record_id == "never-sent"] == ["unknown", "hangup"]
