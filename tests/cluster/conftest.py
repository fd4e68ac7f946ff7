"""A fresh PostgreSQL database per test (``dispatch_test_<uuid>``), dropped after.

Skipped, with the reason, only when no server answers at 127.0.0.1:5432."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432


def _pg_answers() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1.0):
            return True
    except OSError:
        return False


async def _admin(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    for user in ("postgres", "root"):
        try:
            conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user, database="test")
        except (OSError, asyncpg.PostgresError):
            continue
        try:
            await conn.execute(sql)
            return
        finally:
            await conn.close()
    raise RuntimeError("no PostgreSQL role (postgres, root) could connect to database test")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    if not _pg_answers():
        pytest.skip(f"no PostgreSQL server answers at {PG_HOST}:{PG_PORT}")
    name = f"dispatch_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
