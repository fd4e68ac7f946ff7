"""SIGKILL right after the intake said 202: a restart dials every acknowledged record."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from dispatch.store import TERMINAL_STATUSES, open_store

from .helpers import SECRET, body_of, rec, signed_headers

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CHILD = Path(__file__).with_name("intake_child.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _spawn(db: Path, port: int, log: Path, rate: str) -> anyio.abc.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DISPATCH_WEBHOOK_SECRET": SECRET}
    return await anyio.open_process(
        [sys.executable, str(CHILD), str(db), str(port), str(log), rate],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


async def _post_when_up(url: str, body: bytes) -> httpx.Response:
    with anyio.fail_after(30):
        while True:
            try:
                async with httpx.AsyncClient() as client:
                    return await client.post(url, content=body, headers=signed_headers(body))
            except httpx.ConnectError:
                await anyio.sleep(0.05)


async def test_sigkill_between_accept_and_dial_loses_nothing(tmp_path: Path):
    db, log, port = tmp_path / "crash.db", tmp_path / "dials.txt", _free_port()
    url = f"http://127.0.0.1:{port}/v1/records"
    child = await _spawn(db, port, log, rate="2")  # 2 dials a minute: most stay undialled
    accepted: list[str] = []
    try:
        for batch in range(4):
            body = body_of(*[rec(batch * 50 + i) for i in range(50)])
            response = await _post_when_up(url, body)
            assert response.status_code == 202
            accepted.extend(response.json()["ids"])
    finally:
        child.send_signal(signal.SIGKILL)  # at once after the last 202
        await child.wait()
    before = set(log.read_text().split()) if log.exists() else set()
    assert len(before) < len(accepted), "everything was dialled before the kill"
    child = await _spawn(db, port, log, rate="none")
    with anyio.fail_after(90):
        assert await child.wait() == 0
    dialled = log.read_text().split()
    assert set(dialled) == set(accepted), "an acknowledged record was lost"
    assert len(dialled) == len(set(dialled)), "a record was dialled twice"
    async with open_store(db, read_only=True) as store:
        rows = {r["id"]: r["status"] for r in await store.report_rows()}
    assert set(rows) == set(accepted)
    assert set(rows.values()) <= TERMINAL_STATUSES
