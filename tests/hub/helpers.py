"""Shared helpers for hub tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from dispatch.records import Record
from dispatch.store import Store, StoredAttempt
from dispatch.testing import worst_window

T0 = 1_700_000_000.0


def records(n: int, *, phones: int | None = None, prefix: str = "r") -> list[Record]:
    """``n`` records; with ``phones`` they share that many distinct numbers."""
    return [
        Record(id=f"{prefix}{i}", phone=f"+1555{(i % phones if phones else i):07d}")
        for i in range(n)
    ]


async def read_db(path: Path) -> tuple[dict[str, dict[str, Any]], list[StoredAttempt]]:
    store = await Store.open(path, read_only=True)
    try:
        rows = {row["id"]: row for row in await store.report_rows()}
        return rows, await store.attempts()
    finally:
        await store.close()


def max_in_window(times: list[float]) -> int:
    return worst_window(times)


async def eventually(predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
    """Wait (real time) until ``predicate()`` holds."""
    with anyio.fail_after(timeout_s):
        # polling a plain predicate over hub/dialer state is the point here
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.002)


async def run_in_background(
    run: Callable[[], Awaitable[None]], body: Callable[[], Awaitable[None]]
) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await body()
