"""The intake on a real PostgreSQL store (own database per run, dropped after)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from dispatch.store import Store
from dispatch.strategies import WebhookStrategy
from dispatch.webhooks import parse_secret

from .helpers import SECRET, body_of, intake_count, rec, signed_headers

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@contextlib.asynccontextmanager
async def _database() -> AsyncIterator[str]:
    asyncpg = pytest.importorskip("asyncpg")
    name = f"dispatch_hook_{uuid.uuid4().hex[:10]}"
    try:
        admin = await asyncpg.connect(ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL server answers on 127.0.0.1:5432 ({exc})")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_intake_commits_and_replays_on_postgres():
    async with _database() as url:
        store = await Store.open(url)
        strategy = WebhookStrategy(port=0, secrets=[parse_secret(SECRET)])
        try:
            async with anyio.create_task_group() as tg, httpx.AsyncClient() as client:
                await tg.start(store.run_writer)
                await tg.start(strategy.serve, store, lambda: None)
                body = body_of(rec(1), rec(2))
                headers = signed_headers(body, msg_id="msg_pg")
                first = await client.post(strategy.url, content=body, headers=headers)
                assert first.status_code == 202 and first.json()["ids"] == ["w1", "w2"]
                again = await client.post(strategy.url, content=body, headers=headers)
                assert again.json() == first.json()
                assert await intake_count(store) == 2
                assert [r.id for r in await strategy.poll()] == ["w1", "w2"]
                assert await strategy.poll() == []  # handed over once
                tg.cancel_scope.cancel()
        finally:
            await store.close()
