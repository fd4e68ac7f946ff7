"""The intake and result webhooks inside a running DispatchHub (real loopback HTTP,
real SQLite file): a pushed record is dialled at once, every outcome is POSTed signed,
exactly once per webhook-id, through a receiver's failures and a hub restart."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import select

from dispatch.clock import SystemClock
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.store import open_store
from dispatch.store.webhook_tables import OutboxRow
from dispatch.strategies import WebhookStrategy
from dispatch.testing import Answer, Fail, MemoryDialer, MemoryStrategy
from dispatch.webhooks import Endpoint, ResultWebhooks, parse_secret
from dispatch.webhooks.outbox import outbox_counts

from .helpers import SECRET, body_of, eventually, rec, signed_headers
from .receiver import Receiver

pytestmark = pytest.mark.anyio


async def test_a_pushed_record_is_dialled_at_once_not_at_the_next_poll(tmp_path: Path):
    dialer = MemoryDialer(SystemClock(), default=Answer(duration_s=0.05))
    intake = WebhookStrategy(port=0, secrets=[parse_secret(SECRET)], name="pushed")
    hub = DispatchHub(dialer, [intake], db=tmp_path / "hub.db", poll_interval_s=60.0,
                      max_concurrent=5)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        with anyio.fail_after(10):
            await intake.ready.wait()
        await eventually(lambda: hub.store is not None)
        body = body_of(rec(1), rec(2))
        sent_at = time.monotonic()
        async with httpx.AsyncClient() as client:
            response = await client.post(intake.url, content=body, headers=signed_headers(body))
        assert response.status_code == 202
        await eventually(lambda: len(dialer.dials) == 2, timeout_s=10)
        latency_s = time.monotonic() - sent_at
        assert latency_s < 10.0 < 60.0  # woken: far sooner than the 60 s poll
        await eventually(lambda: hub.statistics().completed == 2)
        await hub.stop()
        tg.cancel_scope.cancel()
    assert sorted(d.to for d in dialer.dials) == ["+15550000001", "+15550000002"]
    async with open_store(tmp_path / "hub.db", read_only=True) as store:
        rows = {r["id"]: r for r in await store.report_rows()}
    assert {k: v["status"] for k, v in rows.items()} == {"w1": "completed", "w2": "completed"}


def _hub(tmp_path: Path, receiver: Receiver, records: list[Record],
         base_delay_s: float) -> tuple[DispatchHub, ResultWebhooks]:
    dialer = MemoryDialer(SystemClock(), default=Answer(duration_s=0.02),
                          script={"+15550000003": [Fail("busy")]})
    webhooks = ResultWebhooks([Endpoint(receiver.url, parse_secret(SECRET))],
                              base_delay_s=base_delay_s, max_delay_s=base_delay_s * 4,
                              timeout_s=5.0, poll_interval_s=0.05)
    hub = DispatchHub(dialer, [MemoryStrategy(records)], db=tmp_path / "hub.db",
                      poll_interval_s=0.2, result_webhooks=webhooks, campaign="remind")
    return hub, webhooks


async def _outbox(db: Path) -> list[OutboxRow]:
    async with open_store(db, read_only=True) as store, store.engine.connect() as conn:
        return list((await conn.execute(select(OutboxRow))).all())  # type: ignore[arg-type]


async def test_result_webhooks_exactly_once_per_id_through_failures_and_a_restart(
    tmp_path: Path,
):
    records = [Record(id=f"r{i}", phone=f"+1555000000{i}", metadata={"name": f"N{i}"})
               for i in range(1, 5)]
    records.append(Record(id="r5", phone="12"))  # skipped at admission: an outcome too
    receiver = Receiver(SECRET, fail_first=3)
    async with receiver.serving():
        # run 1: every outcome is settled, deliveries fail (the receiver refuses the
        # first tries), then the hub stops with the webhooks still owed
        hub, _webhooks = _hub(tmp_path, receiver, records, base_delay_s=0.2)
        await hub.run(until_idle=True)
        first_tries = sum(receiver.tries.values())
        assert sum(receiver.successes.values()) < 5
        rows = await _outbox(tmp_path / "hub.db")
        assert len(rows) == 5 and {r.event for r in rows} == {
            "record.completed", "record.failed", "record.skipped"}
        # run 2 (a new hub on the same database): the outbox is delivered
        hub, _webhooks = _hub(tmp_path, receiver, records, base_delay_s=0.05)
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await eventually(lambda: len(receiver.successes) == 5, timeout_s=30)
            await hub.stop()
            tg.cancel_scope.cancel()
    assert first_tries >= 1
    assert set(receiver.successes) == {r.id for r in rows}  # the ids written with run 1
    assert all(n == 1 for n in receiver.successes.values())
    assert all(receiver.tries[i] == 4 for i in receiver.successes)  # 3 refusals, 1 success
    assert receiver.bad_signatures == 0
    by_record = {b["data"]["record_id"]: b for b in receiver.bodies.values()}
    assert set(by_record) == {"r1", "r2", "r3", "r4", "r5"}
    assert (by_record["r5"]["data"]["status"], by_record["r5"]["data"]["reason"]) == (
        "skipped", "invalid_phone")
    failed = by_record["r3"]["data"]
    assert (failed["status"], failed["reason"], failed["campaign"]) == ("failed", "busy",
                                                                         "remind")
    done = by_record["r1"]["data"]
    assert done["status"] == "completed" and done["fields"] == {"name": "N1"}
    assert done["call_id"] and done["attempts"] == 1 and done["duration_s"] is not None
    async with open_store(tmp_path / "hub.db", read_only=True) as store:
        counts = await outbox_counts(store.engine)
    assert counts == {"pending": 0, "delivered": 5, "failed": 0, "disabled": 0}


async def test_410_disables_the_endpoint_and_retry_after_is_honoured(tmp_path: Path):
    gone = Receiver(SECRET, fail_first=99, fail_status=410)
    slow = Receiver(SECRET, fail_first=1, retry_after="1")
    records = [Record(id="a", phone="+15550000001"), Record(id="b", phone="+15550000002")]
    async with gone.serving(), slow.serving():
        dialer = MemoryDialer(SystemClock(), default=Answer(duration_s=0.02))
        webhooks = ResultWebhooks([Endpoint(gone.url, parse_secret(SECRET)),
                                   Endpoint(slow.url, parse_secret(SECRET))],
                                  base_delay_s=0.01, max_delay_s=0.02, poll_interval_s=0.02)
        hub = DispatchHub(dialer, [MemoryStrategy(records)], db=tmp_path / "hub.db",
                          poll_interval_s=0.2, result_webhooks=webhooks)
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await eventually(lambda: len(slow.successes) == 2, timeout_s=20)
            await hub.stop()
            tg.cancel_scope.cancel()
    assert sum(gone.tries.values()) >= 1 and not gone.successes
    for msg_id, times in slow.times.items():
        assert len(times) == 2
        assert times[1] - times[0] >= 0.9, f"Retry-After: 1 not honoured for {msg_id}"
    async with open_store(tmp_path / "hub.db", read_only=True) as store:
        counts = await outbox_counts(store.engine)
    assert counts["delivered"] == 2 and counts["disabled"] == 2 and counts["pending"] == 0


async def test_a_delivery_is_given_up_after_its_retry_horizon(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="httpx")
    down = Receiver(SECRET, fail_first=10**6, fail_status=500)
    async with down.serving():
        dialer = MemoryDialer(SystemClock(), default=Answer(duration_s=0.01))
        webhooks = ResultWebhooks([Endpoint(down.url, parse_secret(SECRET))],
                                  base_delay_s=0.05, max_delay_s=0.1, retry_for_s=0.6,
                                  poll_interval_s=0.02)
        hub = DispatchHub(dialer, [MemoryStrategy([Record(id="a", phone="+15550000001")])],
                          db=tmp_path / "hub.db", poll_interval_s=0.2, result_webhooks=webhooks)
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await eventually(lambda: webhooks.stats.failed == 1, timeout_s=20)
            await hub.stop()
            tg.cancel_scope.cancel()
    (msg_id,) = down.tries
    assert down.tries[msg_id] >= 3  # retried (same webhook-id every time), then given up
    rows = await _outbox(tmp_path / "hub.db")
    assert [(r.status, r.attempts) for r in rows] == [("failed", down.tries[msg_id])]
    assert rows[0].last_error == "gave up: HTTP 500"
    assert "HTTP Request: POST" in caplog.text  # httpx did log each request ...
    assert "s3cret-in-query" not in caplog.text  # ... without the URL's query


async def test_dispatched_events_when_asked(tmp_path: Path):
    receiver = Receiver(SECRET)
    async with receiver.serving():
        dialer = MemoryDialer(SystemClock(), default=Answer(duration_s=0.02))
        webhooks = ResultWebhooks([Endpoint(receiver.url, parse_secret(SECRET))],
                                  include_dispatched=True, poll_interval_s=0.02)
        hub = DispatchHub(dialer, [MemoryStrategy([Record(id="a", phone="+15550000001")])],
                          db=tmp_path / "hub.db", poll_interval_s=0.2, result_webhooks=webhooks)
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await eventually(lambda: len(receiver.successes) == 2, timeout_s=20)
            await hub.stop()
            tg.cancel_scope.cancel()
    events = {b["type"]: b["data"] for b in receiver.bodies.values()}
    assert set(events) == {"record.dispatched", "record.completed"}
    assert events["record.dispatched"]["call_id"] == events["record.completed"]["call_id"]
    assert events["record.dispatched"]["attempt_no"] == 1
