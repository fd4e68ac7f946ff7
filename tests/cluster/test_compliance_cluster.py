"""Three dispatcher processes with the admission step, one PostgreSQL, one sandbox.

The hub clock of every process starts at 07:54 in Los Angeles (10:54 in New York) and
runs 60x. Asserted from the sandbox's dial log (what the voice server saw) and the
database: no number on the do-not-call file is dialled; no Los Angeles number before
08:00 there (and every one after: the positive control); a number the platform
refused ``do_not_call`` to one node is never dialled again by any (its second record
is skipped ``dnc``); the per-phone cap (2 per 600 s) holds across the three nodes and
the capped records are dialled once their window frees; every record is terminal."""

from __future__ import annotations

import os
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
from dispatch.sandbox.refusals import RefusalSettings
from tests.compliance.helpers import at

from . import compliance_child as child

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CHILD = Path(child.__file__)
SPEED = 60.0
LA = "America/Los_Angeles"
#: 6 hub minutes (6 real s after every process is up) before the opening
BASE = at("2026-03-10T07:54:00", LA)
OPENING = at("2026-03-10T08:00:00", LA)
#: hub seconds a dial may reach the sandbox after its claim (a loaded 2-core machine)
SEND_SLACK_HUB_S = 60.0


async def _spawn(url: str, db: str, go: Path, dnc: Path, log: Path) -> anyio.abc.Process:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as err:
        return await anyio.open_process(
            [sys.executable, str(CHILD), url, db, str(SPEED), str(go), repr(BASE), str(dnc)],
            stdout=subprocess.DEVNULL, stderr=err, env=env)


async def _start_clocks(go: Path, procs: list[anyio.abc.Process], tmp_path: Path) -> float:
    """Once every process is up, start their hub clocks at once (``T0`` in ``go``)."""
    with anyio.fail_after(120):
        while len(list(go.parent.glob(f"{go.name}.ready.*"))) < len(procs):
            assert all(p.returncode is None for p in procs), _tails(tmp_path)
            await anyio.sleep(0.05)
    return _write_go(go)


def _write_go(go: Path) -> float:
    t0 = time.time()
    go.write_text(f"{t0!r}\n", encoding="utf-8")
    return t0


async def _db(db: str) -> tuple[dict[str, dict[str, Any]], list[Any], set[str]]:
    engine = create_async_engine(db)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT id, phone, status, attempts, last_reason, error, decision, "
                "decision_reason FROM records WHERE campaign_id = :c"),
                {"c": child.CAMPAIGN})).mappings().all()
            attempts = (await conn.execute(text(
                "SELECT phone, claimed_at FROM attempts ORDER BY claimed_at"))).all()
            dnc = {str(p) for p in (await conn.execute(text(
                "SELECT phone FROM dnc_entries"))).scalars()}
    finally:
        await engine.dispose()
    return {str(r["id"]): dict(r) for r in rows}, list(attempts), dnc


def _tails(tmp_path: Path) -> str:
    return "\n".join(f"{log.name}: {log.read_text(errors='replace')[-1500:]}"
                     for log in sorted(tmp_path.glob("child*.log")))


@pytest.mark.timeout(300)
async def test_three_dispatchers_apply_hours_dnc_opt_outs_and_caps(tmp_path: Path,
                                                                    pg_url: str) -> None:
    groups = child.phones()
    dnc_file = tmp_path / "dnc.txt"
    dnc_file.write_text("".join(f"{phone}\n" for _rid, phone in groups["dnc"]),
                        encoding="utf-8")
    refusals = RefusalSettings(do_not_call=[child.REFUSED_PATTERN])
    async with Sandbox(speed=SPEED, seed=3, dial_log=tmp_path / "dials.jsonl",
                       refusals=refusals) as sandbox:
        go = tmp_path / "go"
        procs = [await _spawn(sandbox.url, pg_url, go, dnc_file, tmp_path / f"child{i}.log")
                 for i in range(3)]
        try:
            t0 = await _start_clocks(go, procs, tmp_path)
            with anyio.fail_after(240):
                for p in procs:
                    assert await p.wait() == 0, _tails(tmp_path)
        finally:
            for p in procs:
                if p.returncode is None:
                    p.kill()
                    await p.wait()
        dials = list(sandbox.dials)
    rows, attempts, dnc = await _db(pg_url)

    def hub(wall_s: float) -> float:
        return BASE + (wall_s - t0) * SPEED

    by_phone: dict[str, list[float]] = defaultdict(list)
    for d in dials:
        by_phone[d.to].append(hub(d.received_at))
    # every record terminal, none lost, no (record, attempt) dialled twice
    assert set(rows) == {rid for group in groups.values() for rid, _p in group}
    assert {r["status"] for r in rows.values()} <= {"completed", "skipped"}, _tails(tmp_path)
    pairs = Counter((d.metadata["dispatch_record_id"], d.metadata["dispatch_attempt_no"])
                    for d in dials)
    assert max(pairs.values()) == 1
    assert len({d.connection for d in dials}) >= 2, "the nodes should share the work"

    # positive control: every open number dialled once and completed
    for rid, phone in groups["open"]:
        assert len(by_phone[phone]) == 1 and rows[rid]["status"] == "completed", rid
    # do-not-call file: never dialled, skipped with the list named
    for rid, phone in groups["dnc"]:
        assert phone not in by_phone, f"{phone} is on the do-not-call file"
        row = rows[rid]
        assert (row["status"], row["last_reason"], row["attempts"]) == ("skipped", "dnc", 0)
        assert "dnc.txt" in row["error"]
    # calling hours: no Los Angeles number before 08:00 there, every one after it
    for rid, phone in groups["la"]:
        assert len(by_phone[phone]) == 1, phone
        assert by_phone[phone][0] >= OPENING, f"{phone} dialled before its opening"
        assert rows[rid]["status"] == "completed"
    # ... while New York was dialled before it (the Los Angeles records really waited)
    assert min(by_phone[p][0] for _r, p in groups["open"]) < OPENING - 30, "started late"
    waited = [r for r, _p in groups["la"] if rows[r]["decision"] == "allow"]
    assert len(waited) == len(groups["la"])  # the last decision stored: allowed at 08:00
    # an opt-out (the platform's do_not_call) reached every node: one dial per number
    for phone in {p for _r, p in groups["optout"]}:
        assert len(by_phone[phone]) == 1, f"{phone} dialled again after its refusal"
        assert phone in dnc
    for rid, _phone in groups["optout"]:
        assert (rows[rid]["status"], rows[rid]["last_reason"]) == ("skipped", "dnc"), rid
    skipped_by_admission = [r for r, _p in groups["optout"] if rows[r]["attempts"] == 0]
    assert len(skipped_by_admission) == 5  # one record per number never dialled
    # the per-phone cap held across nodes: at most 2 claims in any 600 s (database,
    # exact), 2 dials in any 600 s less the send slack (dial log); all 4 dialled
    cap, window = child.PHONE_CAP, child.PHONE_CAP_WINDOW_S
    claims: dict[str, list[float]] = defaultdict(list)
    for phone, claimed_at in attempts:
        claims[str(phone)].append(float(claimed_at))
    for phone in {p for _r, p in groups["cap"]}:
        seen = sorted(by_phone[phone])
        assert len(seen) == 4, phone
        gaps = [b - a for a, b in zip(seen, seen[cap:], strict=False)]
        assert min(gaps) >= window - SEND_SLACK_HUB_S, seen
        claimed = claims[phone]
        assert min(b - a for a, b in zip(claimed, claimed[cap:], strict=False)) >= window
    for rid, _phone in groups["cap"]:
        assert rows[rid]["status"] == "completed" and rows[rid]["attempts"] == 1, rid
