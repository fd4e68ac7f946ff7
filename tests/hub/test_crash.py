"""SIGKILL a hub mid-campaign against the sandbox, restart it, check nothing was lost
or dialled twice (from the database and the sandbox's own dial log).

The sandbox keeps calls alive when their socket dies (as the platform does), so the
calls ringing or talking at the kill go on; the restart must ask the sandbox what
became of them and never redial one that was answered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.sandbox import Sandbox
from dispatch.store import TERMINAL_STATUSES, open_store

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
    async with Sandbox(speed=40.0, seed=3, dial_log=tmp_path / "dials.jsonl",
                       keep_calls_on_disconnect=True) as sandbox:
        child = await _spawn(sandbox.url, db)
        try:
            await eventually(lambda: len(sandbox.dials) >= 40, timeout_s=60)
        finally:
            child.send_signal(signal.SIGKILL)
            await child.wait()
        killed_at = time.time()
        assert len(sandbox.dials) < N * 2, "the campaign finished before the kill"
        child = await _spawn(sandbox.url, db)
        with anyio.fail_after(90):
            assert await child.wait() == 0
        dials = list(sandbox.dials)

    rows, attempts = await read_db(db)
    assert set(rows) == {f"r{i}" for i in range(N)}, "a record was lost"
    assert {r["status"] for r in rows.values()} <= TERMINAL_STATUSES
    _assert_attempts_match_records(rows, attempts)
    async with open_store(db, read_only=True) as store:
        run_rows = await store.runs()
    assert [r["status"] for r in run_rows] == ["crashed", "completed"]
    _assert_live_at_kill_not_redialled(dials, killed_at)
    # attempts the kill cut: settled by the restart (after the kill, or without an outcome)
    cut = [a for a in attempts if a.run_id == run_rows[0]["id"] and a.ended_at is not None
           and (a.ended_at >= killed_at or a.reason in ("unknown", "interrupted"))]
    assert cut, "the kill should have cut live attempts"

    keys = [(d.metadata or {}).get("dispatch_record_id") for d in dials]
    pairs = Counter(
        (d.metadata["dispatch_record_id"], d.metadata["dispatch_attempt_no"])
        for d in dials if d.metadata
    )
    assert None not in keys
    assert max(pairs.values()) == 1, "an attempt was dialled twice"
    claimed = {(a.record_id, a.attempt_no) for a in attempts}
    assert set(pairs) <= claimed, "a dial left without a committed claim"
    dials_per_record = Counter(rid for rid, _no in pairs)
    for rid, count in dials_per_record.items():
        assert count <= rows[rid]["attempts"]
    by_key = {(a.record_id, a.attempt_no): a for a in attempts}
    for a in cut:
        if a.answered_at is not None:  # an answered call cut by the kill is never re-dialled
            assert rows[a.record_id]["attempts"] == a.attempt_no
        following = by_key.get((a.record_id, a.attempt_no + 1))
        if following is not None:  # ...an unanswered one never at once, never an unknown one
            assert a.reason != "unknown"
            assert a.ended_at is not None and following.claimed_at >= a.ended_at + 0.5


def _assert_live_at_kill_not_redialled(dials: list[Any], killed_at: float) -> None:
    """From the sandbox's log alone: a call ringing or talking at the kill that the
    callee answered is the record's last dial."""
    last_dial: dict[str, float] = {}
    for d in dials:
        rid = d.metadata["dispatch_record_id"]
        last_dial[rid] = max(last_dial.get(rid, 0.0), d.received_at)
    live_at_kill = [d for d in dials if d.call_id is not None and d.received_at < killed_at
                    and (d.ended_at is None or d.ended_at > killed_at)]
    answered = [d for d in live_at_kill if d.answered_at is not None]
    assert answered, "no answered call was live at the kill (the test proves nothing)"
    for d in answered:
        rid = d.metadata["dispatch_record_id"]
        assert last_dial[rid] == d.received_at, f"{rid} answered at the kill, dialled again"


def _assert_attempts_match_records(rows: dict[str, dict[str, Any]], attempts: list[Any]) -> None:
    """Each record has attempt rows 1..attempts, all ended with a reason."""
    numbers: dict[str, list[int]] = {rid: [] for rid in rows}
    for a in attempts:
        numbers[a.record_id].append(a.attempt_no)
        assert a.ended_at is not None and a.reason, f"attempt {a} left open"
    for rid, row in rows.items():
        assert sorted(numbers[rid]) == list(range(1, row["attempts"] + 1)), rid
