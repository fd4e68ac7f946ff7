"""The admission step inside the cluster claim, on the real PostgreSQL server.

Each test drives ``claim_batch`` of one or two nodes (a HubCore and a PgCoordinator
each, no hub run) with a fixed hub clock, and reads the database afterwards: allowed
rows are claimed, deferred rows are ``scheduled`` at the opening (not an attempt),
skipped rows are terminal with the reason and their outbox rows, caps count every
node's attempts, and an opt-out written by one node is seen by the next claim of
another."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from sqlalchemy import text

from dispatch.cluster import sql
from dispatch.cluster.claims import claim_batch
from dispatch.compliance import ComplianceSettings
from dispatch.hub.admission import Compliance, HubCompliance
from dispatch.hub.core import HubCore
from dispatch.store import Store
from dispatch.store import compliance as store_compliance
from dispatch.strategy import Outcome
from dispatch.webhooks.ops import insert_outbox
from tests.compliance.helpers import at

from .helpers import CAMPAIGN, add_records, node

pytestmark = pytest.mark.anyio

LA, NY = "America/Los_Angeles", "America/New_York"
#: 07:30 in Los Angeles (closed until 08:00), 10:30 in New York (open)
MORNING = at("2026-03-10T07:30:00", LA)


def _ny(n: int) -> str:
    return f"+1212555{n:04d}"


def _la(n: int) -> str:
    return f"+1213555{n:04d}"


class FixedClock:
    def __init__(self, now: float) -> None:
        self.t = now

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        await anyio.lowlevel.checkpoint()


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[Store]:
    store = await Store.open(pg_url)
    try:
        yield store
    finally:
        await store.close()


async def _node(store: Store, clock: FixedClock, compliance: Compliance,
                **limits: Any) -> tuple[HubCore, Any]:
    core, coord = await node(store, **limits)
    core.clock = clock
    core.compliance = HubCompliance(compliance, CAMPAIGN)
    await core.compliance.open(store, clock, None)
    return core, coord


async def _rows(store: Store) -> dict[str, dict[str, Any]]:
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM records"))).mappings().all()
    return {str(r["id"]): dict(r) for r in rows}


async def _scalar(store: Store, query: str, **params: Any) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(text(query), params)).scalar()


async def _end(store: Store, coord: Any, record_ids: list[str]) -> None:
    """The claimed records' calls ended (completed): their phones are free again."""
    async with store.engine.begin() as conn:
        for rid in record_ids:
            pk = (await conn.execute(text("SELECT pk FROM records WHERE id = :id"),
                                     {"id": rid})).scalar_one()
            await conn.execute(text(
                "UPDATE records SET status = 'completed', lease_node = NULL WHERE pk = :pk"),
                {"pk": pk})
            await conn.execute(sql.FREE_SLOT, {"campaign": coord.campaign, "pk": pk})


async def test_one_claim_allows_defers_and_skips_in_its_transaction(store: Store,
                                                                    tmp_path: Path) -> None:
    dnc_file = tmp_path / "dnc.txt"
    dnc_file.write_text(f"{_ny(2)}\n", encoding="utf-8")
    await store_compliance.dnc_add(store.engine, _ny(3), reason="opt_out", source="test",
                                   at_s=1.0)
    # r0 NY open, r1 LA closed, r2 on the file, r3 on the internal list, r4 NY open
    await add_records(store, [_ny(0), _la(1), _ny(2), _ny(3), _ny(4)])
    clock = FixedClock(MORNING)
    core, coord = await _node(store, clock, Compliance(dnc_files=[dnc_file]),
                              per_minute=10, concurrent=10)
    outbox: list[Outcome] = []

    def hook(outcome: Outcome, source: str, _d: float | None) -> list[Any]:
        outbox.append(outcome)
        return [insert_outbox(id=f"msg_{outcome.record.id}", url="http://127.0.0.1:9/h",
                              event=f"record.{outcome.status}", body="{}", now=1.0)]

    core.outcome_ops.append(hook)
    grants, retry = await claim_batch(coord, core, 10)

    assert sorted(e.id for e, _a in grants) == ["r0", "r4"]  # the positive control
    rows = await _rows(store)
    assert {r: rows[r]["status"] for r in rows} == {
        "r0": "dialing", "r1": "scheduled", "r2": "skipped", "r3": "skipped", "r4": "dialing"}
    opening = at("2026-03-10T08:00:00", LA)
    la = rows["r1"]
    assert (la["attempts"], la["next_attempt_at"], la["lease_node"]) == (0, opening, None)
    assert (la["decision"], la["decision_reason"], la["decision_until"]) == (
        "defer", "outside_calling_hours", opening)
    assert LA in la["decision_detail"]
    for rid in ("r2", "r3"):
        assert (rows[rid]["last_reason"], rows[rid]["decision"], rows[rid]["attempts"]) == (
            "dnc", "skip", 0)
    assert "dnc.txt" in rows["r2"]["error"] and "internal" in rows["r3"]["error"]
    assert rows["r0"]["decision"] == "allow"
    # attempts only for the claimed; the skips' outbox rows committed with them
    assert await _scalar(store, "SELECT count(*) FROM attempts") == 2
    assert sorted(o.record.id for o in outbox) == ["r2", "r3"]
    events = await _scalar(store, "SELECT string_agg(id || '=' || event, ',' ORDER BY id) "
                                  "FROM webhook_outbox")
    assert events == "msg_r2=record.skipped,msg_r3=record.skipped"
    # tokens and slots not used went back: exactly one of each per claimed record
    assert await _scalar(store, "SELECT count(*) FROM rate_tokens WHERE used_at > 0") == 2
    assert await _scalar(store, "SELECT count(*) FROM call_slots "
                                "WHERE record_pk IS NOT NULL") == 2
    assert core.compliance.deferred == 1 and core.compliance.skipped == 2
    assert retry == 0.0

    # nothing else is due: the next claim finds nothing and sleeps until the opening
    assert (await claim_batch(coord, core, 10))[0] == []
    assert coord.next_due_hub == opening
    assert coord.claim_retry_s() == pytest.approx(opening - MORNING)
    clock.t = opening  # at the opening the deferred record is allowed and claimed
    grants, _ = await claim_batch(coord, core, 10)
    assert [e.id for e, _a in grants] == ["r1"] and coord.next_due_hub is None
    assert (await _rows(store))["r1"]["attempts"] == 1


async def test_phone_cap_counts_the_attempts_of_other_nodes(store: Store) -> None:
    # three records of one phone, a cap of 2 dials per 24 h, claimed by two nodes
    await add_records(store, [_ny(7), _ny(7), _ny(7), _ny(8)])
    clock = FixedClock(MORNING)
    settings = Compliance(settings=ComplianceSettings(phone_cap=2))
    (core_a, a), (core_b, b) = [await _node(store, clock, settings) for _ in range(2)]
    first, _ = await claim_batch(a, core_a, 1)
    assert [e.id for e, _x in first] == ["r0"]
    await _end(store, a, ["r0"])
    clock.t += 60
    second, _ = await claim_batch(b, core_b, 10)  # b sees a's committed attempt: 1 of 2
    assert sorted(e.id for e, _x in second) == ["r1", "r3"]
    await _end(store, b, ["r1"])
    clock.t += 60
    third, _ = await claim_batch(a, core_a, 10)  # two dials in 24 h: r2 waits a day
    assert third == []
    row = (await _rows(store))["r2"]
    assert (row["status"], row["decision_reason"], row["attempts"]) == (
        "scheduled", "phone_cap", 0)
    assert row["next_attempt_at"] == pytest.approx(MORNING + 86_400.0, abs=1.0)


async def test_a_phone_another_claim_is_deciding_waits_for_the_next_claim(
        store: Store) -> None:
    await add_records(store, [_ny(1), _ny(2)])
    clock = FixedClock(MORNING)
    core, coord = await _node(store, clock, Compliance())
    async with store.engine.connect() as other:  # another node's claim, mid-decision
        await other.execute(text("SELECT pg_advisory_xact_lock(:c, hashtext(:p))"),
                            {"c": sql.ADMIT_LOCK_CLASS, "p": _ny(1)})
        grants, _ = await claim_batch(coord, core, 10)
        assert [e.id for e, _x in grants] == ["r1"]  # r0's phone: neither decided nor taken
        assert (await _rows(store))["r0"]["decision"] is None
        await other.rollback()
    grants, _ = await claim_batch(coord, core, 10)
    assert [e.id for e, _x in grants] == ["r0"]


async def test_an_opt_out_written_by_one_node_is_seen_by_the_next_claim_of_another(
        store: Store) -> None:
    await add_records(store, [_ny(5), _ny(5), _ny(6)])
    clock = FixedClock(MORNING)
    (core_a, a), (core_b, b) = [await _node(store, clock, Compliance()) for _ in range(2)]
    first, _ = await claim_batch(a, core_a, 1)
    assert [e.id for e, _x in first] == ["r0"]
    # during r0's call the callee opts out: node a writes it, durably, before settling
    await core_a.compliance.add_opt_out(_ny(5), campaign=CAMPAIGN, record_id="r0",
                                        source="memory")
    await _end(store, a, ["r0"])
    assert _ny(5) not in core_b.compliance.internal.phones  # b loaded its list before
    grants, _ = await claim_batch(b, core_b, 10)
    assert [e.id for e, _x in grants] == ["r2"]  # the positive control
    row = (await _rows(store))["r1"]
    assert (row["status"], row["last_reason"], row["attempts"]) == ("skipped", "dnc", 0)
    assert _ny(5) in core_b.compliance.internal.phones
    # lifting the suppression is seen as well (the cache follows the table)
    await store_compliance.dnc_remove(store.engine, _ny(5))
    await add_records(store, [_ny(5)], source="other")
    grants, _ = await claim_batch(b, core_b, 10)
    assert [(e.source, e.id) for e, _x in grants] == [("other", "r0")]


async def test_campaign_cap_holds_across_nodes(store: Store) -> None:
    await add_records(store, [_ny(10 + i) for i in range(6)])
    clock = FixedClock(MORNING)
    settings = Compliance(settings=ComplianceSettings(campaign_cap=3))
    (core_a, a), (core_b, b) = [await _node(store, clock, settings) for _ in range(2)]
    results: dict[str, list[str]] = {}

    async def claim(name: str, core: HubCore, coord: Any) -> None:
        grants, _ = await claim_batch(coord, core, 2)
        results[name] = [e.id for e, _x in grants]

    async with anyio.create_task_group() as tg:  # both at once: one decides at a time
        tg.start_soon(claim, "a", core_a, a)
        tg.start_soon(claim, "b", core_b, b)
    claimed = results["a"] + results["b"]
    assert len(claimed) == 3, results  # 2 + 1: the cap, across both nodes
    assert results["a"] and results["b"]
    rows = await _rows(store)
    waiting = [r for r in rows.values() if r["status"] == "scheduled"]
    assert waiting and all(r["decision_reason"] == "campaign_cap" for r in waiting)
    assert await _scalar(store, "SELECT count(*) FROM attempts") == 3


async def test_without_compliance_the_claim_is_unchanged(store: Store) -> None:
    await add_records(store, [_la(1), _ny(2)])
    core, coord = await node(store)
    core.clock = FixedClock(MORNING)
    grants, _ = await claim_batch(coord, core, 10)
    assert sorted(e.id for e, _x in grants) == ["r0", "r1"]  # no hours: both dialled
    assert all(r["decision"] is None for r in (await _rows(store)).values())


def test_batch_attempts_count_the_dials_a_batch_allowed() -> None:
    """The caps of one batch count its own allowed dials (cluster rounds and the local
    batch alike): a campaign cap of 3 with 2 stored attempts allows one more, not a
    whole batch."""
    from dispatch.compliance import Decision
    from dispatch.compliance.caps import CampaignCapPolicy
    from dispatch.compliance.context import DialContext
    from dispatch.hub.admission import BatchAttempts
    from tests.compliance.helpers import FakeAttempts

    settings = ComplianceSettings(campaign="c", campaign_cap=3)
    log = BatchAttempts(FakeAttempts(by_campaign={"c": [MORNING - 60, MORNING - 30]}))
    verdicts: list[Decision] = []
    for i in range(3):
        ctx = DialContext(now_s=MORNING, phone=_ny(i), record_id=f"r{i}", settings=settings,
                          attempts=log)
        decision = CampaignCapPolicy().decide(ctx)
        verdicts.append(decision)
        if decision.allowed:
            log.allowed(_ny(i), MORNING)
    assert [d.verdict.value for d in verdicts] == ["allow", "defer", "defer"]
    assert verdicts[1].until_s == pytest.approx(MORNING - 60 + 86_400.0)
    assert list(log.phone_attempts_since(_ny(0), MORNING - 1)) == [MORNING]
    assert list(log.phone_attempts_since(_ny(0), MORNING)) == []  # strictly after
    assert list(log.phone_attempts_since(_ny(1), MORNING - 1)) == []
    assert len(log.campaign_attempts_since("c", MORNING - 3600)) == 3
