"""SIGKILL a hub mid-campaign against the sandbox, restart it, check nothing was lost
or dialled twice (from the database and the sandbox's own dial log)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from dispatch.sandbox import Sandbox
from dispatch.store import TERMINAL_STATUSES

from .helpers import eventually, read_db

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CHILD = Path(__file__).with_name("crash_child.py")
N = 120


async def _spawn(url: str, db: Path) -> anyio.abc.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return await anyio.open_process(
        [sys.executable, str(CHILD), url, str(db), str(N)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )


async def test_sigkill_mid_campaign_then_restart(tmp_path: Path):
    db = tmp_path / "crash.db"
    async with Sandbox(speed=40.0, seed=3, dial_log=tmp_path / "dials.jsonl") as sandbox:
        child = await _spawn(sandbox.url, db)
        try:
            await eventually(lambda: len(sandbox.dials) >= 40, timeout_s=60)
        finally:
            child.send_signal(signal.SIGKILL)
            await child.wait()
        killed_at = len(sandbox.dials)
        assert killed_at < N * 2, "the campaign finished before the kill"
        child = await _spawn(sandbox.url, db)
        with anyio.fail_after(90):
            assert await child.wait() == 0
        dials = list(sandbox.dials)

    rows, attempts = await read_db(db)
    assert len(rows) == N, "a record was lost"
    assert {r["status"] for r in rows.values()} <= TERMINAL_STATUSES
    interrupted = [a for a in attempts if a.reason == "interrupted"]
    assert interrupted, "the kill should have interrupted live attempts"

    keys = [(d.metadata or {}).get("dispatch_record_id") for d in dials]
    pairs = Counter(
        (d.metadata["dispatch_record_id"], d.metadata["dispatch_attempt_no"])
        for d in dials if d.metadata
    )
    assert None not in keys
    assert max(pairs.values()) == 1, "an attempt was dialled twice"
    claimed = {(a.record_id, a.attempt_no) for a in attempts}
    assert set(pairs) <= claimed, "a dial left without a committed claim"
    # an interrupted answered call is never re-dialled
    for a in interrupted:
        if a.answered_at is not None:
            assert rows[a.record_id]["attempts"] == a.attempt_no
