"""THE cluster test: 3 dispatcher processes, one PostgreSQL, one sandbox; SIGKILL one.

Everything is asserted from the sandbox's dial log (what the voice server saw), not
from the dispatchers' own view, plus the database for "every record terminal"."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from dispatch.sandbox import Sandbox
from dispatch.store import TERMINAL_STATUSES
from dispatch.testing import worst_window

from . import cluster_child as child

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CHILD = Path(child.__file__)
N = 2000
SPEED = 60.0  # simulated (and hub-clock) seconds per real second


async def _spawn(url: str, db: str, origin: float, log: Path) -> anyio.abc.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as err:
        return await anyio.open_process(
            [sys.executable, str(CHILD), url, db, str(N), str(SPEED), repr(origin)],
            stdout=subprocess.DEVNULL, stderr=err, env=env)


async def _poll_holder_pid(db: str) -> int | None:
    engine = create_async_engine(db)
    try:
        async with engine.connect() as conn:
            node = (await conn.execute(text(
                "SELECT node_id FROM leases WHERE name LIKE 'poll:%'"))).scalar()
    finally:
        await engine.dispose()
    return None if node is None else int(str(node).split(":")[-2])


async def _db_rows(db: str) -> dict[str, dict[str, Any]]:
    engine = create_async_engine(db)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT id, status, attempts, last_reason FROM records "
                "WHERE campaign_id = :c"), {"c": child.CAMPAIGN})).mappings().all()
            live_slots = (await conn.execute(text(
                "SELECT count(*) FROM call_slots WHERE record_pk IS NOT NULL"))).scalar_one()
    finally:
        await engine.dispose()
    assert live_slots == 0, "a concurrency slot was never freed"
    return {r["id"]: dict(r) for r in rows}


def _tails(tmp_path: Path) -> str:
    return "\n".join(f"{log.name}: {log.read_text(errors='replace')[-1500:]}"
                     for log in sorted(tmp_path.glob("child*.log")))


def _max_simultaneous(dials: list[Any]) -> int:
    events = []
    for d in dials:
        if d.call_id is None:
            continue  # refused: never a call
        assert d.ended_at is not None, f"call {d.call_id} never ended"
        events += [(d.received_at, 1), (d.ended_at, -1)]
    live = peak = 0
    for _t, step in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts
        live += step
        peak = max(peak, live)
    return peak


def _phone_overlaps(dials: list[Any]) -> list[str]:
    by_phone: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for d in dials:
        if d.call_id is not None and d.ended_at is not None:
            by_phone[d.to].append((d.received_at, d.ended_at))
    bad = []
    for phone, spans in by_phone.items():
        spans.sort()
        for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
            if s2 < e1:
                bad.append(phone)
    return bad


@pytest.mark.timeout(300)  # a loaded 2-core machine: ~50-90 s measured
async def test_three_dispatchers_one_sigkilled(tmp_path: Path, pg_url: str) -> None:
    origin = time.time()
    async with Sandbox(speed=SPEED, seed=5, dial_log=tmp_path / "dials.jsonl",
                       keep_calls_on_disconnect=True) as sandbox:
        procs = [await _spawn(sandbox.url, pg_url, origin, tmp_path / f"child{i}.log")
                 for i in range(3)]
        try:
            with anyio.fail_after(60):
                while len(sandbox.dials) < N // 3:  # noqa: ASYNC110 - the far end's view
                    await anyio.sleep(0.05)
            pid = await _poll_holder_pid(pg_url)  # kill the leader: its lease must move
            victim = next(p for p in procs if p.pid == pid) if pid else procs[0]
            victim.send_signal(signal.SIGKILL)
            await victim.wait()
            killed_at = time.time()
            dials_at_kill = len(sandbox.dials)
            survivors = [p for p in procs if p is not victim]
            with anyio.fail_after(200):
                for p in survivors:
                    assert await p.wait() == 0, _tails(tmp_path)
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        with anyio.fail_after(30):
            while any(d.call_id and d.ended_at is None for d in sandbox.dials):  # noqa: ASYNC110
                await anyio.sleep(0.05)
        dials = list(sandbox.dials)

    assert dials_at_kill < len(dials), "the campaign finished before the kill"
    window_real_s = 60.0 / SPEED
    assert worst_window([d.received_at for d in dials], window_real_s) <= child.CAP_PER_MINUTE
    assert _max_simultaneous(dials) <= child.MAX_CONCURRENT
    assert _phone_overlaps(dials) == [], "two live calls to one phone"
    pairs = Counter((d.metadata["dispatch_source"], d.metadata["dispatch_record_id"],
                     d.metadata["dispatch_attempt_no"]) for d in dials)
    assert max(pairs.values()) == 1, "a (record, attempt) was dialled twice"
    rows = await _db_rows(pg_url)
    assert set(rows) == {f"r{i}" for i in range(N)}, "a record was lost"
    stuck = {rid: r["status"] for rid, r in rows.items() if r["status"] not in TERMINAL_STATUSES}
    assert not stuck, f"records not terminal: {list(stuck.items())[:5]}"
    per_record = Counter(rid for _src, rid, _no in pairs)
    for rid, count in per_record.items():
        assert count <= rows[rid]["attempts"], rid
    # the three shared the work (the dial log names each socket's connection)
    assert len({d.connection for d in dials}) == 3
    # the kill cut live calls of the victim; survivors settled every one of its
    # attempts, and none answered at the kill was dialled again
    mine = [d for d in dials if d.agent_id.endswith(f"cluster-{victim.pid}")]
    cut = [d for d in mine if d.call_id is not None and d.received_at < killed_at
           and (d.ended_at is None or d.ended_at > killed_at)]
    assert cut, "no call of the killed process was live at the kill (the test proves nothing)"
    assert await _open_attempts(pg_url, victim.pid) == 0, "a killed node's attempt stayed open"
    last: dict[str, float] = {}
    for d in dials:
        rid = d.metadata["dispatch_record_id"]
        last[rid] = max(last.get(rid, 0.0), d.received_at)
    for d in cut:
        if d.answered_at is not None:
            rid = d.metadata["dispatch_record_id"]
            assert last[rid] == d.received_at, f"{rid} answered at the kill, dialled again"


async def _open_attempts(db: str, pid: int) -> int:
    engine = create_async_engine(db)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(
                "SELECT count(*) FROM attempts a JOIN runs r ON r.id = a.run_id "
                "WHERE r.pid = :pid AND (a.ended_at IS NULL OR a.reason IS NULL)"),
                {"pid": pid})).scalar_one())
    finally:
        await engine.dispose()
