"""Makespan of a campaign against the sandbox, versus the best any dispatcher could do.

Two configurations: rate-bound and concurrency-bound. For each, prints

- the measured makespan (first dial to last call end, from the attempts table);
- the brief's bound ``max(N / rate, N x mean call time / concurrency)`` and the ratio;
- the exact ideal: a greedy simulation with the same limits and the measured call
  durations (a sliding window lets up to ``rate`` dials start at once, so for a
  rate-bound campaign the ideal is well under ``N / rate``), and the ratio to it
  (target >= 0.98);
- the most dials in any 60 s window, the most simultaneous calls (both within the
  caps) and duplicate dials (must be 0), all read back from the attempts table.

    python benchmarks/makespan.py [rate|concurrency|both] [--n N] [--speed X] [--scaled]

``--scaled`` gives the hub a :class:`~dispatch.clock.ScaledClock` running as fast as the
sandbox, so a rate-bound campaign of minutes takes seconds (every figure is then in
campaign time, and a dial's start is the instant its frame was written).

The brief's bound ignores the last, uneven wave of calls in a concurrency-bound
run; with N large against the concurrency that tail is a small share, so the
default concurrency-bound run uses 2,000 short calls.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import anyio

from dispatch.clock import ScaledClock
from dispatch.hub import DispatchHub
from dispatch.hub.limiter import SlidingWindowLimiter
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER
from dispatch.sdk import Pinecall
from dispatch.store import Store, StoredAttempt
from dispatch.testing import MemoryStrategy

sys.path.insert(0, str(Path(__file__).parent))
from _bench_common import (
    duplicate_dials,
    max_dials_in_window,
    max_simultaneous,
    sandbox_process,
)

CONFIGS = {
    # name: (records, max_calls_per_minute, max_concurrent, sandbox speed)
    "rate": (200, 100, 50, "20"),
    "concurrency": (2000, None, 20, "40"),
}


def ideal_makespan(durations: list[float], rate: int | None, concurrency: int | None) -> float:
    """Greedy earliest-start schedule with the hub's limits and the given call durations."""
    window = SlidingWindowLimiter(rate)
    ends: list[float] = []
    t = 0.0
    for duration in durations:
        while True:
            t = window.next_allowed_at(t)
            live = sorted(e for e in ends if e > t)
            if concurrency is None or len(live) < concurrency:
                break
            t = live[len(live) - concurrency]
        window.record(t)
        ends.append(t + duration)
    return max(ends) if ends else 0.0


async def run_config(name: str, url: str, tmp: Path, n: int, speed: float | None) -> None:
    _n, rate, concurrency, _speed = CONFIGS[name]
    db = tmp / f"{name}.db"
    recs = [Record(id=f"r{i}", phone=f"+1555{i:05d}{i % 60:02d}") for i in range(n)]
    async with Pinecall(url=url) as pc:
        agent = pc.agent(f"makespan-{name}", phone_number=SANDBOX_NUMBER)
        await agent.ready()
        hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=SANDBOX_NUMBER, db=db,
                          max_calls_per_minute=rate, max_concurrent=concurrency,
                          poll_interval_s=1.0,
                          clock=ScaledClock(speed) if speed is not None else None)
        await hub.run(until_idle=True)
    store = await Store.open(db, read_only=True)
    attempts = await store.attempts()
    await store.close()
    report(name, attempts, n, rate, concurrency)


def report(name: str, attempts: list[StoredAttempt], n: int, rate: int | None,
           concurrency: int | None) -> None:
    done = [a for a in attempts if a.dialed_at is not None and a.ended_at is not None]
    start = min(a.dialed_at for a in done if a.dialed_at is not None)
    makespan = max(a.ended_at for a in done if a.ended_at is not None) - start
    durations = [a.ended_at - a.dialed_at for a in done]  # type: ignore[operator]
    mean_call_s = sum(durations) / len(durations)
    bound = max(n / (rate / 60.0) if rate else 0.0,
                n * mean_call_s / concurrency if concurrency else 0.0)
    ideal = ideal_makespan(durations, rate, concurrency)
    print(f"== {name}-bound: N={n} rate={rate}/min concurrency={concurrency}")
    print(f"   measured makespan      {makespan:8.2f} s   (mean call {mean_call_s:.2f} s)")
    print(f"   bound max(N/rate, N*T/C) {bound:6.2f} s"
          f"   ratio bound/measured {bound / makespan:.3f}")
    print(f"   exact ideal (greedy)   {ideal:8.2f} s   ratio ideal/measured {ideal / makespan:.3f}"
          "  (target >= 0.98)")
    print(f"   max dials in any 60 s  {max_dials_in_window(done):8d}     (cap {rate})")
    print(f"   max simultaneous calls {max_simultaneous(done):8d}     (cap {concurrency})")
    print(f"   duplicate dials        {duplicate_dials(attempts):8d}")


async def main(args: argparse.Namespace) -> None:
    names = list(CONFIGS) if args.which == "both" else [args.which]
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            n = args.n or CONFIGS[name][0]
            speed = args.speed or CONFIGS[name][3]
            with sandbox_process(speed=speed) as url:
                await run_config(name, url, Path(tmp), n, float(speed) if args.scaled else None)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", choices=("rate", "concurrency", "both"),
                        default="both")
    parser.add_argument("--n", type=int, help="records (default per configuration)")
    parser.add_argument("--speed", help="sandbox speed (default per configuration)")
    parser.add_argument("--scaled", action="store_true",
                        help="run the hub's clock as fast as the sandbox")
    anyio.run(main, parser.parse_args())
