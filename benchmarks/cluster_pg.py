"""Cluster mode: aggregate dial lifecycles/s of 3 dispatcher processes on one PostgreSQL.

Instant calls (sandbox ``--speed inf`` in its own process), no rate limit,
``max_concurrent`` 60 shared by the three. Each dispatcher is its own process on a
fresh database ``dispatch_bench_<uuid>`` (dropped after). Prints the aggregate
lifecycles/s (first claim to last settle, from the database), each process's CPU ms
per dial it made (``wait4`` rusage), and duplicate dials (must be 0).

    python benchmarks/cluster_pg.py [N] [PROCESSES]

``DISPATCH_BENCH_COMPLIANCE=1``: with the admission step in every claim (calling
hours in a zone open now, the per-phone cap, the internal do-not-call list).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from _bench_common import sandbox_process

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432"
CAMPAIGN = "bench"


async def _child(url: str, db: str, n: int) -> None:
    from dispatch.cluster.options import ClusterOptions
    from dispatch.hub import DispatchHub
    from dispatch.records import Record
    from dispatch.sdk import Pinecall
    from dispatch.testing import MemoryStrategy

    number = f"+1500555{os.getpid() % 10000:04d}"  # one caller id per process
    recs = [Record(id=f"r{i}", phone=f"+1555{i:05d}{i % 60:02d}") for i in range(n)]
    async with Pinecall(url=url) as pc:
        agent = pc.agent(f"bench-{os.getpid()}", phone_number=number)
        await agent.ready()
        compliance = None
        if os.environ.get("DISPATCH_BENCH_COMPLIANCE") == "1":
            from dispatch.compliance import ComplianceSettings
            from dispatch.hub.admission import Compliance

            hour = time.gmtime().tm_hour
            zones = ("Asia/Tokyo", "Europe/Paris", "UTC", "America/New_York")
            zone = next(z for z, off in zip(zones, (9, 1, 0, -5), strict=True)
                        if 9 <= (hour + off) % 24 <= 19)  # +1555 numbers: no zone of their own
            compliance = Compliance(settings=ComplianceSettings(fallback_zone=zone))
        hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=number, db=db,
                          campaign=CAMPAIGN, max_concurrent=200, poll_interval_s=1.0,
                          retry_attempts=0, cluster=ClusterOptions(poll_floor_s=0.1),
                          compliance=compliance)
        await hub.run(until_idle=True)


async def _admin(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="test")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _figures(db: str) -> tuple[int, float, dict[str, int], int]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db)
    async with engine.connect() as conn:
        row = (await conn.execute(text(
            "SELECT count(*), max(ended_at) - min(claimed_at) FROM attempts"))).one()
        per_node = dict((await conn.execute(text(
            "SELECT r.pid::text, count(*) FROM attempts a JOIN runs r ON r.id = a.run_id "
            "GROUP BY r.pid"))).all())
        dup = (await conn.execute(text(
            "SELECT count(*) - count(DISTINCT (record_pk, requeue_round, attempt_no)) "
            "FROM attempts"))).scalar_one()
    await engine.dispose()
    return int(row[0]), float(row[1] or 0.0), {k: int(v) for k, v in per_node.items()}, int(dup)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    procs_n = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    name = f"dispatch_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    db = f"{PG}/{name}"
    try:
        with sandbox_process(speed="inf") as url:
            started = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, __file__, "--child", url, db, str(n)],
                                      stdout=subprocess.DEVNULL) for _ in range(procs_n)]
            cpu: dict[str, float] = {}
            for p in procs:
                _pid, status, usage = os.wait4(p.pid, 0)
                p.returncode = os.waitstatus_to_exitcode(status)
                cpu[str(p.pid)] = (usage.ru_utime + usage.ru_stime) * 1000
            wall = time.perf_counter() - started
        dials, span, per_node, dup = asyncio.run(_figures(db))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"cluster_pg: {procs_n} processes, {n} records, instant calls, max_concurrent 200")
    print(f"  dials {dials}, duplicate dials {dup}, exit codes {[p.returncode for p in procs]}")
    print(f"  aggregate lifecycles/s {dials / span:,.0f} (first claim to last end, {span:.2f} s;"
          f" wall incl. start-up {wall:.1f} s)")
    for pid, made in sorted(per_node.items()):
        ms = cpu.get(pid, 0.0)
        print(f"  process {pid}: {made} dials, CPU {ms:,.0f} ms = {ms / max(made, 1):.2f} ms/dial"
              " (incl. start-up)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        anyio.run(_child, sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
