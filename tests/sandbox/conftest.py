"""Fixtures for sandbox tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from dispatch.sandbox import Sandbox

from .helpers import RawClient, open_client


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(speed=200, seed=7) as sb:
        yield sb


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[RawClient]:
    c = await open_client(sandbox)
    await c.handshake()
    await c.register()
    try:
        yield c
    finally:
        await c.ws.close()
