"""The platform's refusals end to end: sandbox (real loopback socket) → SDK → hub → SQLite.

No refusal spends an attempt (``retry_attempts=0`` would fail a record whose refusal
counted); a refusal storm neither burns records nor stalls the run; quiet hours defer;
do-not-call and no-consent skip; an exhausted quota pauses the campaign with a reason.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.errors import QuotaExhausted
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER, RefusalSettings, Sandbox
from dispatch.sdk import Pinecall
from dispatch.store import Store
from dispatch.testing import MemoryStrategy
from tests.hub.helpers import eventually, read_db

pytestmark = pytest.mark.anyio

FAST = {"reconnect_base_s": 0.05, "reconnect_max_s": 0.2}


def _records(n: int) -> list[Record]:
    # ...00-...59 answer and hang up (the sandbox's digit rule): all completable
    return [Record(id=f"r{i}", phone=f"+1555000{i:04d}") for i in range(n)]


async def _run(tmp_path: Path, sandbox: Sandbox, recs: list[Record], *,
               body: Callable[[DispatchHub], Awaitable[None]] | None = None,
               sink: Any = None, **options: Any) -> DispatchHub:
    async with Pinecall("pk_sandbox", sandbox.url, **FAST) as pc:
        agent = pc.agent("refusals", phone_number=SANDBOX_NUMBER)
        hub = DispatchHub(agent, [MemoryStrategy(recs)], db=tmp_path / "hub.db",
                          retry_attempts=0, poll_interval_s=0.2, campaign="c1", **options)
        hub.opt_out_sink = sink
        with anyio.fail_after(90):
            if body is None:
                await hub.run(until_idle=True)
                return hub
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: hub.run(until_idle=True))
                await body(hub)
    return hub


async def test_a_refusal_storm_neither_burns_records_nor_stalls_the_run(tmp_path: Path) -> None:
    storm = RefusalSettings(storm=0.5, storm_dials=40, storm_retry_after_s=0.05)
    async with Sandbox(speed=200, seed=11, refusals=storm) as sandbox:
        await _run(tmp_path, sandbox, _records(20), max_concurrent=4)
        refused = sandbox.state.refusals.refused.get("too_fast", 0)
        placed = [d for d in sandbox.dials if d.call_id is not None]
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert refused >= 5  # the storm really happened (positive control)
    assert {r["status"] for r in rows.values()} == {"completed"}  # nothing burnt
    assert sorted(d.to for d in placed) == sorted(r.phone for r in _records(20))  # once each
    reasons = Counter(a.raw_reason for a in attempts)
    assert reasons["platform_refusal"] == refused
    assert {a.reason for a in attempts if a.raw_reason == "platform_refusal"} == {
        "platform_rate_limited"}


async def test_quiet_hours_defers_without_spending_an_attempt(tmp_path: Path) -> None:
    quiet = RefusalSettings(quiet_hours=["+15550000001"], quiet_retry_after_s=3.0)
    async with Sandbox(speed=200, refusals=quiet) as sandbox:
        seen: dict[str, Any] = {}

        async def body(hub: DispatchHub) -> None:
            await eventually(lambda: sandbox.state.refusals.refused.get("quiet_hours") == 1,
                             timeout_s=30)
            refused_at = next(d.received_at for d in sandbox.dials
                              if d.error_code == "quiet_hours")

            def deferred() -> bool:
                with sqlite3.connect(tmp_path / "hub.db") as conn:
                    row = conn.execute("SELECT status, next_attempt_at, last_reason FROM "
                                       "records WHERE id = 'r1'").fetchone()
                seen["row"] = row
                return row is not None and row[0] == "scheduled"

            await eventually(deferred, timeout_s=10)
            seen["refused_at"] = refused_at
            sandbox.set_refusals(RefusalSettings())  # the window opens

        await _run(tmp_path, sandbox, _records(3), body=body)
    _status, next_at, reason = seen["row"]
    assert reason == "platform_quiet_hours"
    assert 2.0 < next_at - seen["refused_at"] < 4.0  # deferred to the server's hint
    rows, attempts = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"}
    assert [a.raw_reason for a in attempts if a.record_id == "r1"] == ["platform_refusal",
                                                                      "hangup"]


async def test_do_not_call_and_no_consent_skip(tmp_path: Path) -> None:
    added: list[tuple[str, str, str, str]] = []

    async def sink(phone: str, campaign: str, record_id: str, source: str) -> None:
        added.append((phone, campaign, record_id, source))

    lists = RefusalSettings(do_not_call=["+15550000001"], no_consent=["+15550000002"])
    recs = [*_records(4), Record(id="again", phone="+15550000001")]
    async with Sandbox(speed=200, refusals=lists) as sandbox:
        await _run(tmp_path, sandbox, recs, sink=sink, max_concurrent=1)
        dialled = Counter(d.to for d in sandbox.dials)
    rows, _ = await read_db(tmp_path / "hub.db")
    assert (rows["r1"]["status"], rows["r1"]["last_reason"]) == ("skipped", "dnc")
    assert (rows["r2"]["status"], rows["r2"]["last_reason"]) == ("skipped", "no_consent")
    assert (rows["again"]["status"], rows["again"]["last_reason"]) == ("skipped", "dnc")
    assert {rows[r]["status"] for r in ("r0", "r3")} == {"completed"}
    assert added == [("+15550000001", "c1", "r1", "platform_refusal")]
    assert dialled["+15550000001"] == 1  # the second record for it was never dialled


async def test_an_exhausted_quota_pauses_the_campaign(tmp_path: Path) -> None:
    async with Sandbox(speed=200, refusals=RefusalSettings(quota_after=2)) as sandbox:
        with pytest.raises(QuotaExhausted) as info:
            await _run(tmp_path, sandbox, _records(6), max_concurrent=1)
    message = str(info.value)
    assert "\n" not in message and "quota_exhausted" in message and "minutes" in message
    assert "dispatch campaign resume c1" in message
    rows, attempts = await read_db(tmp_path / "hub.db")
    statuses = Counter(r["status"] for r in rows.values())
    assert statuses == {"completed": 2, "pending": 4}
    store = await Store.open(tmp_path / "hub.db", read_only=True)
    try:
        from dispatch.store import campaigns

        row = await campaigns.get(store.engine, "c1")
        uncounted = await store.uncounted_attempts()
    finally:
        await store.close()
    assert row is not None and row.state == "paused"
    assert "quota_exhausted" in row.state_changed_by and row.acked_state == "paused"
    refused = [a for a in attempts if a.raw_reason == "platform_refusal"]
    assert len(refused) == 1 and sum(uncounted.values()) == 1  # stays uncounted on restart


def test_dispatch_run_exits_3_when_the_quota_is_spent_and_campaign_show_says_why(
        tmp_path: Path) -> None:
    from tests.cli.conftest import run_cli

    leads = tmp_path / "leads.csv"
    leads.write_text("name,phone\n" + "".join(f"P{i},+1415555{i:04d}\n" for i in range(6)),
                     encoding="utf-8")
    scenario = tmp_path / "platform.toml"
    scenario.write_text("[refusals]\nquota_after = 2\nquota = \"concurrent_calls\"\n")
    db = tmp_path / "state.db"
    result = run_cli("run", str(leads), "--db", str(db), "--scenario", str(scenario),
                     "--sandbox-speed", "200", "--poll", "0.2", "--concurrency", "1",
                     "--greeting", "Hello {name}", cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("dispatch: error")]
    assert result.returncode == 3, result.stderr[-3000:]
    assert len(errors) == 1 and "quota_exhausted" in errors[0], result.stderr[-3000:]
    assert "concurrent_calls" in errors[0] and "dispatch campaign resume leads" in errors[0]
    with sqlite3.connect(db) as conn:
        statuses = Counter(s for (s,) in conn.execute("SELECT status FROM records"))
    assert statuses == {"completed": 2, "pending": 4}
    show = run_cli("campaign", "show", "leads", "--db", str(db), cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    state = next(line for line in show.stdout.splitlines() if line.startswith("state"))
    assert state.split()[1] == "paused" and "quota_exhausted" in state
