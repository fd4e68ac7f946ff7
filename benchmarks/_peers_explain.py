"""Why the far end can see more dials in a 60 s window than the hub's cap: the hub's
window stamp against the instant each dial left.

    python benchmarks/_peers_explain.py [WORKLOAD] [--quick] [--window-s 1] [--gc-freeze]

Runs ``DispatchHub`` once on a ``peers.py`` workload (same far end, same compressed
clock, same feed), then reads back its attempts table: ``dialed_at`` is the time the
hub logged in its sliding window. Prints the worst 60 s window over those stamps (the
hub's own view) and over the far end's departures (what a carrier counts), the delay
from stamp to departure in real milliseconds, and the event-loop stalls and
garbage-collector pauses seen during the run. ``--gc-freeze`` moves everything
allocated before the run out of the collector's reach (``gc.freeze()``), to show how
much of the delay the collector causes. A diagnostic for the hub, not a comparison.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from _peers_harness import FarEnd, ScaledClock
from _peers_hub import FeedStrategy
from _peers_workloads import WORKLOADS, build

from dispatch import DispatchHub
from dispatch.store import Store
from dispatch.testing import worst_window

#: pauses worth reporting (real milliseconds)
STALL_MS, GC_MS = 20.0, 5.0


class PauseLog:
    """Collector pauses (``gc.callbacks``) and event-loop stalls, in campaign time."""

    def __init__(self, clock: ScaledClock) -> None:
        self.clock = clock
        self.gc: list[tuple[float, int, float]] = []  # (at, generation, ms)
        self.stalls: list[tuple[float, float]] = []  # (at, ms)
        self._gc_started = 0.0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        pause_ms = 1000 * (time.perf_counter() - self._gc_started)
        if pause_ms > GC_MS:
            self.gc.append((self.clock.now(), info["generation"], pause_ms))

    async def watch_loop(self) -> None:
        while True:
            before = time.perf_counter()
            await anyio.sleep(0.002)
            late_ms = 1000 * (time.perf_counter() - before) - 2.0
            if late_ms > STALL_MS:
                self.stalls.append((self.clock.now(), late_ms))


async def run(workload_name: str, quick: bool, window_s: float, freeze: bool) -> None:
    workload = build(workload_name, quick=quick)
    clock = ScaledClock(60.0 / window_s)
    far_end = FarEnd(clock, workload.durations())
    strategy = FeedStrategy(clock, workload)
    pauses = PauseLog(clock)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "hub.db"
        hub = DispatchHub(far_end, [strategy], max_calls_per_minute=workload.rate,
                          max_concurrent=workload.concurrency, db=db, clock=clock)
        if freeze:
            gc.freeze()
        gc.callbacks.append(pauses.on_gc)
        async with anyio.create_task_group() as tg:
            tg.start_soon(pauses.watch_loop)
            await hub.run(until_idle=True)
            tg.cancel_scope.cancel()
        gc.callbacks.remove(pauses.on_gc)
        store = await Store.open(db, read_only=True)
        stamps = {a.record_id: a.dialed_at for a in await store.attempts()}
        await store.close()
    assert strategy.t0 is not None
    report(workload.rate, clock, strategy.t0, far_end, stamps, pauses)


def report(cap: int, clock: ScaledClock, t0: float, far_end: FarEnd,
           stamps: dict[str, float | None], pauses: PauseLog) -> None:
    left = {rid: start for rid, _phone, start, _end in far_end.log}
    logged = [s for s in stamps.values() if s is not None]
    gaps_ms = sorted(1000 * (left[rid] - s) / clock.scale
                     for rid, s in stamps.items() if s is not None and rid in left)
    print(f"worst 60 s window over the hub's own stamps   {worst_window(logged)}/{cap}")
    print(f"worst 60 s window over the far end's log      {worst_window(list(left.values()))}"
          f"/{cap}")
    print(f"stamp -> dial left, real ms: median {statistics.median(gaps_ms):.1f}, "
          f"p99 {gaps_ms[int(0.99 * (len(gaps_ms) - 1))]:.1f}, max {gaps_ms[-1]:.1f} "
          f"({len(gaps_ms)} dials; x{clock.scale:g} in campaign time)")
    print("GC pauses > 5 ms (campaign s, generation, real ms):",
          [(round(at - t0, 1), gen, round(ms)) for at, gen, ms in pauses.gc] or "none")
    print("loop stalls > 20 ms (campaign s, real ms):",
          [(round(at - t0, 1), round(ms)) for at, ms in pauses.stalls] or "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", choices=WORKLOADS, default="rate")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--window-s", type=float, default=1.0)
    parser.add_argument("--gc-freeze", action="store_true")
    args = parser.parse_args()
    anyio.run(run, args.workload, args.quick, args.window_s, args.gc_freeze)


if __name__ == "__main__":
    main()
