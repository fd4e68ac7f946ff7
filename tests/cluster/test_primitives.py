"""Tokens, slots, leases, claims and the sweeper on the real PostgreSQL server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from dispatch.cluster import sql
from dispatch.cluster.claims import claim_batch
from dispatch.cluster.options import ClusterOptions
from dispatch.cluster.sweeper import sweep_once
from dispatch.reasons import Reason
from dispatch.store import Store
from dispatch.testing import worst_window

from .helpers import add_records, node

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[Store]:
    store = await Store.open(pg_url)  # no writer: a settle then writes directly
    try:
        yield store
    finally:
        await store.close()


async def _scalar(store: Store, query: str, **params: Any) -> Any:
    async with store.engine.connect() as conn:
        return (await conn.execute(text(query), params)).scalar()


@pytest.mark.parametrize(("kind", "limit", "window_hub_s", "scale"),
                         [("m", "per_minute", 60.0, 120.0), ("s", "per_second", 1.0, 2.0)])
async def test_tokens_hold_the_window_across_two_nodes(
    store: Store, kind: str, limit: str, window_hub_s: float, scale: float
) -> None:
    # the window is 0.5 real s either way; 4 tokens; two nodes take as fast as they can
    cluster = ClusterOptions(time_scale=scale, send_margin_hub_s=0.0)
    nodes = [await node(store, cluster=cluster, **{limit: 4}) for _ in range(2)]
    stamps: list[float] = []
    age = window_hub_s / scale

    async def hammer(coord: Any) -> None:
        end = time.monotonic() + 1.6
        while time.monotonic() < end:
            async with store.engine.begin() as conn:
                rows = (await conn.execute(sql.TAKE_TOKENS, {
                    "campaign": coord.campaign, "kind": kind, "n": 2, "age": age})).all()
            stamps.extend(float(r.stamped) for r in rows)
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as tg:
        for _core, coord in nodes:
            tg.start_soon(hammer, coord)
    assert len(stamps) >= 3 * 4, "tokens were not reused after their window"
    assert worst_window(stamps, age) <= 4  # database-clock stamps: exact


async def test_claims_never_overlap_and_one_live_call_per_phone(store: Store) -> None:
    phones = [f"+1555000{i % 60:04d}" for i in range(120)]  # every phone twice
    await add_records(store, phones)
    (core_a, a), (core_b, b) = [await node(store) for _ in range(2)]
    got: dict[str, list[str]] = {"a": [], "b": []}
    # each node claims once on its own first (both can), then both race for the rest
    for name, core, coord in (("a", core_a, a), ("b", core_b, b)):
        grants, _ = await claim_batch(coord, core, 7)
        got[name] += [e.id for e, _att in grants]
    assert len(got["a"]) == len(got["b"]) == 7, "both nodes should have claimed"

    async def claimer(name: str, core: Any, coord: Any) -> None:
        dry = 0
        # an empty answer may only mean the other node's claim holds the rows
        # (SKIP LOCKED): stop after a few in a row, as the hub's retry would
        while dry < 3:
            grants, _ = await claim_batch(coord, core, 7)
            got[name] += [e.id for e, _att in grants]
            dry = 0 if grants else dry + 1
            await anyio.sleep(0 if grants else 0.02)

    async with anyio.create_task_group() as tg:
        tg.start_soon(claimer, "a", core_a, a)
        tg.start_soon(claimer, "b", core_b, b)
    assert not set(got["a"]) & set(got["b"]), "a record was claimed twice"
    claimed = got["a"] + got["b"]
    assert len(claimed) == 60, "one live call per phone: the twins must wait"
    assert len({phones[int(r[1:])] for r in claimed}) == 60
    live = await _scalar(store, "SELECT count(*) FROM records WHERE status = 'dialing'")
    assert live == 60


async def test_slots_bound_concurrency_and_are_freed_at_settle(store: Store) -> None:
    await add_records(store, [f"+1555100{i:04d}" for i in range(10)])
    (core_a, a), (core_b, b) = [await node(store, concurrent=3) for _ in range(2)]
    grants, _ = await claim_batch(a, core_a, 10)
    assert len(grants) == 3
    assert (await claim_batch(b, core_b, 10))[0] == []
    entry, attempt = grants[0]
    core_a.book.add(entry)
    core_a.book.set_status(entry, "completed")
    attempt.ended_at, attempt.reason = time.time(), Reason.HANGUP.value
    async with anyio.create_task_group() as tg:  # the settle batcher of a running node
        await tg.start(a.settler.run, core_a)
        await a.settle(core_a, entry, attempt,
                       [entry.update_op(time.time()), attempt.update_op()])
        tg.cancel_scope.cancel()
    assert len((await claim_batch(b, core_b, 10))[0]) == 1
    held = await _scalar(store, "SELECT count(*) FROM call_slots WHERE record_pk IS NOT NULL")
    assert held == 3


async def test_poll_lease_is_retaken_after_its_holder_stops(store: Store) -> None:
    cluster = ClusterOptions(lease_ttl_s=0.4)
    (_ca, a), (_cb, b) = [await node(store, cluster=cluster) for _ in range(2)]
    assert await a.may_poll("memory")
    await a.polled("memory", 0)
    assert not await b.may_poll("memory"), "a live lease was taken"
    assert await a.may_poll("memory"), "the holder renews its own lease"
    await anyio.sleep(0.6)  # a stops renewing (as if killed)
    assert await b.may_poll("memory"), "an expired lease was not re-taken"
    dry = await _scalar(store, "SELECT dry FROM leases WHERE name = 'poll:unit:memory'")
    assert dry is False, "a new holder must poll before the source counts as dry"


class _Lookup:
    """A voice server that says each call was answered and has ended."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    async def lookup_call(self, call_id: str) -> Any:
        return None

    async def find_call(self, attempt_id: str | None = None, *,
                        metadata: Any = None) -> Any:
        self.asked.append(dict(metadata or {}))
        return _State()


class _State:
    call_id, live, answered = "CA1", False, True
    end_reason, end_reason_raw = Reason.HANGUP, "hangup"
    answered_at, ended_at, duration_s = 1.0, 2.0, 1.0


async def test_sweeper_reconciles_an_expired_claim_before_freeing_it(store: Store) -> None:
    await add_records(store, ["+15552000001", "+15552000002"])
    short = ClusterOptions(lease_ttl_s=0.3)
    core_dead, dead = await node(store, concurrent=5, cluster=short)
    lookup = _Lookup()
    core_live, live = await node(store, lookup, concurrent=5, cluster=short, events=True)
    grants, _ = await claim_batch(dead, core_dead, 2)
    assert len(grants) == 2
    assert await sweep_once(live, core_live) == 0, "a live lease was swept"
    await anyio.sleep(0.5)  # the dead node never heartbeats
    assert await sweep_once(live, core_live) == 2
    assert len(lookup.asked) == 2 and {m["dispatch_attempt_no"] for m in lookup.asked} == {1}
    async with store.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT status, last_reason, lease_node FROM records ORDER BY id"))).all()
        held = (await conn.execute(text(
            "SELECT count(*) FROM call_slots WHERE record_pk IS NOT NULL"))).scalar()
    assert [tuple(r) for r in rows] == [("completed", "hangup", None)] * 2
    assert held == 0
    core_live.notifier.close()  # the dead node's outcomes reach this node's strategies
    told = [core_live.notifier._receive.receive_nowait() for _ in range(2)]
    core_live.notifier._receive.close()
    assert sorted(e.outcome.record.id for e in told) == ["r0", "r1"]
    assert {(e.outcome.status, e.outcome.reason) for e in told} == {("completed", Reason.HANGUP)}


async def test_sweeper_without_call_id_or_lookup_answer_settles_unknown(store: Store) -> None:
    await add_records(store, ["+15553000001"])
    short = ClusterOptions(lease_ttl_s=0.3, reconcile_wait_hub_s=0.5)
    core_dead, dead = await node(store, cluster=short)

    class _NoRecord(_Lookup):
        async def find_call(self, attempt_id: str | None = None, *,
                            metadata: Any = None) -> Any:
            return None

    core_live, live = await node(store, _NoRecord(), cluster=short)
    assert len((await claim_batch(dead, core_dead, 1))[0]) == 1
    await anyio.sleep(0.5)
    assert await sweep_once(live, core_live) == 1
    status, reason = (await _rows(store))[0]
    assert (status, reason) == ("failed", "unknown"), "an ambiguous attempt was retried"


async def _rows(store: Store) -> list[tuple[Any, ...]]:
    async with store.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(
            "SELECT status, last_reason FROM records ORDER BY id"))).all()]


async def test_a_paused_campaign_grants_no_claim(store: Store) -> None:
    await add_records(store, ["+15554000001", "+15554000002"])
    core, coord = await node(store)
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE campaigns SET state = 'paused' WHERE id = 'unit'"))
    assert (await claim_batch(coord, core, 5))[0] == []
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE campaigns SET state = 'running' WHERE id = 'unit'"))
    assert len((await claim_batch(coord, core, 5))[0]) == 2  # positive control


@pytest.mark.parametrize(("margin_hub_s", "refreshed"), [(0.0, 1), (30.0, 0)])
async def test_a_stale_token_is_replaced_before_the_frame_leaves(
    store: Store, margin_hub_s: float, refreshed: int
) -> None:
    await add_records(store, ["+15555000001"])
    cluster = ClusterOptions(send_margin_hub_s=margin_hub_s)
    core, coord = await node(store, per_minute=5, cluster=cluster)
    grants, _ = await claim_batch(coord, core, 1)
    await anyio.sleep(0.01)  # the claim is older than a zero margin
    await coord.before_send(grants[0][1])
    assert coord.refreshed_tokens == refreshed
    used = await _scalar(store, "SELECT count(*) FROM rate_tokens WHERE used_at > 0")
    assert used == 1 + refreshed  # the stale token stays spent (conservative)
