"""Hub throughput: dial lifecycles per second, end to end, with no limits.

Instant calls (sandbox ``--speed inf`` in a separate process), through the real SDK,
the WebSocket and SQLite. Prints lifecycles/s (target >= 2,000/s on 2 cores), hub CPU
per call (the hub process: hub, SDK, WebSocket and SQLite; the sandbox is another
process), peak RSS, and the store's transactions and rows written per dial.

The hub process runs with the collector settings ``python -m dispatch run`` uses
(:func:`dispatch.runtime.tune_gc`, called after start-up); ``--default-gc`` keeps
CPython's defaults, as a library whose application does not tune them.

    python benchmarks/hub_throughput.py [N] [--default-gc]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import anyio

from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.runtime import tune_gc
from dispatch.sandbox import SANDBOX_NUMBER
from dispatch.sdk import Pinecall
from dispatch.store import Store
from dispatch.store.writer import GroupWriter
from dispatch.testing import MemoryStrategy

sys.path.insert(0, str(Path(__file__).parent))
from _bench_common import duplicate_dials, sandbox_process


async def campaign(url: str, db: Path, n: int, *, gc_tuned: bool = True
                   ) -> tuple[float, float, GroupWriter]:
    # last two digits 00-59: answered, then the callee hangs up (instantly at speed inf)
    recs = [Record(id=f"r{i}", phone=f"+1555{i:05d}{i % 60:02d}") for i in range(n)]
    async with Pinecall(url=url) as pc, await Store.open(db) as store:
        agent = pc.agent("throughput", phone_number=SANDBOX_NUMBER)
        await agent.ready()
        hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=SANDBOX_NUMBER, db=store,
                          poll_interval_s=1.0)
        if gc_tuned:
            tune_gc()  # as the CLI does once its start-up is done
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        await hub.run(until_idle=True)
        return time.perf_counter() - t0, time.process_time() - cpu0, store.writer


async def main(n: int, gc_tuned: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(speed="inf") as url:
        db = Path(tmp) / "throughput.db"
        elapsed_s, cpu_s, writer = await campaign(url, db, n, gc_tuned=gc_tuned)
        store = await Store.open(db, read_only=True)
        attempts = await store.attempts()
        counts = await store.counts()
        await store.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"records            {n}")
    print(f"collector          {'tuned (dispatch.runtime.tune_gc)' if gc_tuned else 'defaults'}")
    print(f"statuses           {counts}")
    print(f"elapsed            {elapsed_s:.2f} s (hub.run, incl. start-up and final poll)")
    print(f"lifecycles/s       {len(attempts) / elapsed_s:.0f}  (target >= 2,000)")
    print(f"hub CPU per call   {1000 * cpu_s / max(1, len(attempts)):.3f} ms")
    print(f"peak RSS (hub)     {rss_mb:.0f} MiB")
    print(f"duplicate dials    {duplicate_dials(attempts)}")
    dials = max(1, len(attempts))
    print(f"per dial           {writer.batches / dials:.3f} transactions, "
          f"{getattr(writer, 'rows_written', writer.ops_written) / dials:.2f} rows written "
          f"({writer.ops_written / dials:.2f} ops submitted; includes the record's insert)")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    anyio.run(main, int(args[0]) if args else 5000, "--default-gc" not in sys.argv)
