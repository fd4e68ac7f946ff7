"""Hub CPU per dial on a paced campaign, with the durable store (target <= 0.5 ms).

A campaign as users run one: ``max_calls_per_minute`` 120 and ``max_concurrent`` 30,
calls of realistic length (the sandbox's default scenario: 2-8 s of ringing, 5-20 s
of talk, busy and no-answer outcomes, retries), a SQLite file as the store. Time is
compressed (``--speed``, default 60: a campaign minute lasts a real second) on both
sides: the sandbox runs in its own process at that speed and the hub on a
``ScaledClock``; so dials arrive one or a few at a time, each with its own wake-ups,
timers and commits, unlike the instant-call throughput run where everything batches.

Prints the hub process's CPU (hub, SDK, WebSocket and SQLite; ``os.times`` over
``hub.run``, user and system time) per dial lifecycle, transactions and rows written
per dial, the event-loop turns per dial, and the pace seen in the store (worst 60 s
window, peak concurrency) as a check that the campaign was paced as asked.

    python benchmarks/paced_cpu.py [--n 1500] [--speed 60] [--default-gc] [--breakdown]
                                   [--floor]

``--floor`` also runs ``paced_floor.py``'s campaign (the same one with nothing but
the irreducible work) right after, and prints the hub's CPU as a multiple of it:
both runs share the hour's machine speed (which varies about 2x here), so the ratio
is the figure to compare across hours; within an hour it is as noisy as the other.

``--default-gc`` keeps CPython's collector settings (a library whose application does
not call :func:`dispatch.runtime.tune_gc`; ``python -m dispatch run`` does).

``--breakdown`` also prints where the CPU goes: the thread CPU of every event-loop
callback, grouped by the task it resumed (its outermost and innermost coroutines) or
by the callback's name, the SQLite writer thread's time, and ``epoll``, per dial.
The accounting adds about 10 % to the total; compare groups, not the total.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import selectors
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from dispatch.clock import ScaledClock
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.runtime import tune_gc
from dispatch.sandbox import SANDBOX_NUMBER
from dispatch.sdk import Pinecall
from dispatch.store import Store
from dispatch.store.sqlite_batch import SqliteBatchWriter
from dispatch.testing import MemoryStrategy

sys.path.insert(0, str(Path(__file__).parent))
import paced_floor
from _bench_common import (
    duplicate_dials,
    max_dials_in_window,
    max_simultaneous,
    sandbox_process,
)

RATE, CONCURRENT = paced_floor.RATE, paced_floor.CONCURRENT  # one campaign, two runners


class _TurnCounter:
    """Counts callbacks the event loop runs (task steps, timers, I/O callbacks); with
    ``breakdown``, also their thread CPU by group (see the module doc)."""

    def __init__(self, breakdown: bool = False) -> None:
        self.turns = 0
        self.breakdown = breakdown
        self.cpu_ns: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self._original = asyncio.events.Handle._run
        self._select = selectors.EpollSelector.select
        self._execute = SqliteBatchWriter._execute

    def __enter__(self) -> _TurnCounter:
        original = self._original
        counter = self

        def _run(handle: asyncio.events.Handle) -> None:
            counter.turns += 1
            original(handle)

        def _run_timed(handle: asyncio.events.Handle) -> None:
            counter.turns += 1
            start = time.thread_time_ns()
            original(handle)
            key = _group(handle)
            counter.cpu_ns[key] += time.thread_time_ns() - start
            counter.calls[key] += 1

        asyncio.events.Handle._run = (  # type: ignore[method-assign]
            _run_timed if self.breakdown else _run)
        if self.breakdown:
            selectors.EpollSelector.select = self._timed(  # type: ignore[method-assign]
                self._select, "epoll (the loop's wait)")
            SqliteBatchWriter._execute = self._timed(  # type: ignore[method-assign]
                self._execute, "SQLite (the writer's thread)")
        return self

    def _timed(self, fn: Any, key: str) -> Any:
        counter = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                counter.cpu_ns[key] += time.thread_time_ns() - start
                counter.calls[key] += 1

        return timed

    def __exit__(self, *exc: object) -> None:
        asyncio.events.Handle._run = self._original  # type: ignore[method-assign]
        selectors.EpollSelector.select = self._select  # type: ignore[method-assign]
        SqliteBatchWriter._execute = self._execute  # type: ignore[method-assign]

    def report(self, dials: int, top: int = 14) -> None:
        total = sum(self.cpu_ns.values())
        print(f"breakdown          {total / dials / 1000:.0f} us per dial accounted "
              "(thread CPU; the accounting itself adds ~10 %)")
        for key, ns in self.cpu_ns.most_common(top):
            print(f"  {ns / dials / 1000:7.1f} us  {self.calls[key] / dials:5.2f}/dial  {key}")


def _group(handle: asyncio.events.Handle) -> str:
    """A callback's group: the task it resumed (outer and inner coroutine), or its name."""
    callback = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return "callback " + getattr(callback, "__qualname__", type(callback).__name__)
    names: list[str] = []
    inner: Any = task.get_coro()
    while inner is not None and (hasattr(inner, "cr_frame") or hasattr(inner, "ag_frame")):
        name = getattr(inner, "__qualname__", "?")
        if not name.startswith("TaskHandle."):  # anyio's wrapper of every task
            names.append(name)
        inner = getattr(inner, "cr_await", None) or getattr(inner, "ag_await", None)
    if not names:
        return "task (starting)"
    return f"task {names[0]} ... {names[-1]}" if len(names) > 1 else f"task {names[0]}"


async def main(args: argparse.Namespace) -> None:
    clock = ScaledClock(args.speed)
    recs = [Record(id=f"r{i}", phone=phone) for i, phone in enumerate(paced_floor.phones(args.n))]
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(speed=str(args.speed)) as url:
        db = Path(tmp) / "paced.db"
        async with Pinecall(url=url) as pc, await Store.open(db) as store:
            agent = pc.agent("paced", phone_number=SANDBOX_NUMBER)
            await agent.ready()
            hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=SANDBOX_NUMBER, db=store,
                              clock=clock, max_calls_per_minute=RATE,
                              max_concurrent=CONCURRENT, retry_attempts=1,
                              poll_interval_s=60.0)
            if not args.default_gc:
                tune_gc()  # as the CLI does once its start-up is done
            with _TurnCounter(args.breakdown) as loop:
                times0 = os.times()
                t0 = time.perf_counter()
                await hub.run(until_idle=True)
                elapsed_s = time.perf_counter() - t0
                times1 = os.times()
                user_s, sys_s = times1.user - times0.user, times1.system - times0.system
                cpu_s = user_s + sys_s
            writer = store.writer
            attempts = await store.attempts()
            counts = await store.counts()
    dials = max(1, len(attempts))
    print(f"records            {args.n} ({dials} dial lifecycles, retries included)")
    print(f"limits             {RATE}/min, {CONCURRENT} concurrent; time x{args.speed:g}")
    print(f"collector          {'defaults' if args.default_gc else 'tuned (tune_gc)'}")
    print(f"statuses           {counts}")
    print(f"elapsed            {elapsed_s:.1f} s real = {elapsed_s * args.speed / 60:.1f} "
          "campaign min")
    print(f"hub CPU per dial   {1000 * cpu_s / dials:.3f} ms  (target <= 0.5 ms; "
          f"{1000 * user_s / dials:.3f} user + {1000 * sys_s / dials:.3f} system)")
    print(f"per dial           {writer.batches / dials:.2f} transactions, "
          f"{getattr(writer, 'rows_written', writer.ops_written) / dials:.2f} rows written, "
          f"{loop.turns / dials:.1f} event-loop turns")
    print(f"worst 60 s window  {max_dials_in_window(attempts)} / {RATE}")
    print(f"peak concurrency   {max_simultaneous(attempts)} / {CONCURRENT}")
    print(f"duplicate dials    {duplicate_dials(attempts)}")
    if args.breakdown:
        loop.report(dials)
    if args.floor:
        floor = await paced_floor.measure(args.n, args.speed)
        hub_ms = 1000 * cpu_s / dials
        print(f"floor CPU per dial {floor.cpu_ms_per_dial:.3f} ms  (paced_floor.py, run "
              f"right after); hub / floor {hub_ms / floor.cpu_ms_per_dial:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--default-gc", action="store_true")
    parser.add_argument("--breakdown", action="store_true",
                        help="also print where the CPU goes (see the module doc)")
    parser.add_argument("--floor", action="store_true",
                        help="also run paced_floor.py's campaign and print the ratio")
    anyio.run(main, parser.parse_args())
