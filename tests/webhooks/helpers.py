"""Helpers for webhook tests: signing like a sender, an intake on a real store."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from dispatch.store import Store
from dispatch.store.models import RecordRow
from dispatch.store.webhook_tables import IntakeRow
from dispatch.strategies import WebhookStrategy
from dispatch.webhooks import parse_secret

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()
TOKEN = "tok-" + "x" * 28


def signed_headers(body: bytes, *, secret: str = SECRET, msg_id: str | None = None,
                   at: float | None = None) -> dict[str, str]:
    """Headers a Standard Webhooks sender would send (signed by the spec's package)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = dt.datetime.fromtimestamp(int(time.time() if at is None else at), tz=dt.UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signature, "content-type": "application/json"}


def body_of(*records: dict[str, Any]) -> bytes:
    return json.dumps({"records": list(records)}).encode()


def rec(i: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"w{i}", "phone": f"+1555{i:07d}", **extra}


async def intake_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(IntakeRow))).scalar()
                   or 0)


async def record_count(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(RecordRow))).scalar()
                   or 0)


async def eventually(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    """Wait (real time) until ``predicate()`` holds."""
    with anyio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling plain state is the point
            await anyio.sleep(0.005)


@contextlib.asynccontextmanager
async def intake(tmp_path: Path, **options: Any) -> AsyncIterator[tuple[WebhookStrategy, Store]]:
    """A ``WebhookStrategy`` serving on a free loopback port over a real SQLite store
    (no hub: what is accepted stays in the intake table, so counts are exact)."""
    if "token" not in options:
        options.setdefault("secrets", [parse_secret(SECRET), parse_secret(OTHER)])
    strategy = WebhookStrategy(port=0, **options)
    store = await Store.open(tmp_path / "intake.db")
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(store.run_writer)
            await tg.start(strategy.serve, store, lambda: None)
            yield strategy, store
            tg.cancel_scope.cancel()
    finally:
        await store.close()
