"""Pace measured where the dial arrives: the sandbox's own log, time compressed.

An embedded sandbox at ``--speed X`` and a hub whose clock runs X times faster than
real time, a rate-bound campaign of short calls through the real SDK and WebSocket.
Prints, from the sandbox's ``received_at`` of every ``call.dial`` (scaled to the hub's
time), the most dial starts in any 60 s window against ``--rate`` and, with ``--cps``,
in any 1 s window against it; the same window over the hub's own send stamps (the
attempts' ``dialed_at``); the trip from the hub writing a frame to the sandbox reading
it, in real milliseconds (matched by call id); the hub's CPU per dial.

    python benchmarks/pace_exact.py [--n 400] [--rate 120] [--cps N] [--speed 60]
                                    [--margin-ms M]

``--margin-ms`` sets the hub's ``pace_margin_s`` to M ms of real time (scaled onto the
hub clock): the allowance for the varying delay between the hub writing a frame and the
sandbox, in the same event loop, reading it. With 0 the hub is exact where the frame
is written; the sandbox may still see a window over the cap by that jitter (the
trip's spread, times the speed: a dial written late in one burst is read later than
the one written a window after it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from dispatch.clock import ScaledClock
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox
from dispatch.sdk import Pinecall
from dispatch.store import Store
from dispatch.testing import MemoryStrategy, worst_window


def tightest_gap(starts: Sequence[float], cap: int) -> float:
    """The shortest span holding ``cap + 1`` starts (``>= window`` means within the cap)."""
    ordered = sorted(starts)
    return min((ordered[i + cap] - ordered[i] for i in range(len(ordered) - cap)),
               default=float("inf"))


async def main(args: argparse.Namespace) -> None:
    clock = ScaledClock(args.speed)
    recs = [Record(id=f"r{i}", phone=f"+1555{i:05d}{i % 60:02d}") for i in range(args.n)]
    limits: dict[str, Any] = {"max_calls_per_minute": args.rate}
    if args.cps:
        limits["max_calls_per_second"] = args.cps
    with tempfile.TemporaryDirectory() as tmp:
        async with Sandbox(speed=args.speed) as sandbox, Pinecall(url=sandbox.url) as pc:
            agent = pc.agent("pace", phone_number=SANDBOX_NUMBER)
            await agent.ready()
            hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=SANDBOX_NUMBER,
                              db=Path(tmp) / "pace.db", clock=clock, poll_interval_s=60.0,
                              pace_margin_s=args.margin_ms / 1000 * args.speed, **limits)
            cpu0 = time.process_time()
            await hub.run(until_idle=True)
            cpu_s = time.process_time() - cpu0
            starts = [clock.scale(d.received_at) for d in sandbox.dials]
            read_at = {d.call_id: clock.scale(d.received_at) for d in sandbox.dials}
            async with await Store.open(Path(tmp) / "pace.db", read_only=True) as store:
                attempts = await store.attempts()
    sent = [a.dialed_at for a in attempts if a.dialed_at is not None]
    trips_ms = sorted((read_at[a.call_id] - a.dialed_at) / args.speed * 1000
                      for a in attempts if a.dialed_at is not None and a.call_id in read_at)
    print(f"speed x{args.speed:g}, {args.n} records, {len(starts)} dials received, "
          f"margin {args.margin_ms:g} ms real")
    print(f"worst 60 s window (sandbox log)  {worst_window(starts, 60.0)} / cap {args.rate}")
    print(f"tightest span, cap+1 dials  {tightest_gap(starts, args.rate):.3f} s (>= 60: exact)")
    print(f"worst 60 s window (hub send stamps) {worst_window(sent, 60.0)} / cap {args.rate}; "
          f"tightest span {tightest_gap(sent, args.rate):.3f} s")
    if trips_ms:
        print(f"write -> sandbox read, real ms  min {trips_ms[0]:.2f}, median "
              f"{trips_ms[len(trips_ms) // 2]:.2f}, p99 {trips_ms[int(0.99 * len(trips_ms))]:.2f}, "
              f"max {trips_ms[-1]:.2f} ({len(trips_ms)} dials)")
    if args.cps:
        print(f"worst 1 s window (sandbox log)   {worst_window(starts, 1.0)} / cap {args.cps}")
        print(f"tightest span of cps+1 dials     {tightest_gap(starts, args.cps):.3f} s")
    print(f"scaled makespan of dial starts   {max(starts) - min(starts):.1f} s")
    print(f"process CPU per dial (hub+SDK+sandbox) {1000 * cpu_s / max(1, len(starts)):.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--rate", type=int, default=120)
    parser.add_argument("--cps", type=int, default=0)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--margin-ms", type=float, default=0.0)
    anyio.run(main, parser.parse_args())
