"""Throughput of the SDK: N concurrent dials on one agent against the sandbox.

Starts ``python -m dispatch sandbox --port 0 --instant`` in a separate process (or
in-process with ``--in-process``), connects one client, fires ``--dials`` concurrent
dials on one agent, and prints dial lifecycles per second (dial() to call ended),
p50/p99 latency from dial() to ``call.dialing``, and how many settled per reason.

    /work/venv/bin/python benchmarks/sdk_dials.py [--dials 1000] [--speed inf]
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import Process

from dispatch.log import configure_logging
from dispatch.sdk import Call, DialFailed, Pinecall

FROM = "+15005550006"


@asynccontextmanager
async def sandbox_url(in_process: bool, speed: float) -> AsyncIterator[str]:
    if in_process:
        from dispatch.sandbox import Sandbox

        async with Sandbox(speed=speed) as sandbox:
            yield sandbox.url
        return
    speed_args = ["--instant"] if math.isinf(speed) else ["--speed", str(speed)]
    command = [sys.executable, "-m", "dispatch", "sandbox", "--port", "0",
               "--log-level", "warning", *speed_args]
    async with await anyio.open_process(command, stderr=subprocess.DEVNULL) as process:
        try:
            yield await _read_url(process)
        finally:
            process.terminate()
            with anyio.move_on_after(5):
                await process.wait()


async def _read_url(process: Process) -> str:
    assert process.stdout is not None
    buffer = b""
    with anyio.fail_after(20):
        async for chunk in process.stdout:
            buffer += chunk
            for line in buffer.decode().splitlines():
                if "listening on" in line:
                    return line.rsplit(" ", 1)[-1].strip()
    raise RuntimeError("the sandbox did not start")


async def one_dial(
    agent: Any, to: str, dialing_latency_s: list[float], dialing_at: list[float] | None = None
) -> str:
    started = time.perf_counter()

    def on_dialing(_: Call) -> None:
        now = time.perf_counter()
        dialing_latency_s.append(now - started)
        if dialing_at is not None:
            dialing_at.append(now)

    try:
        call = await agent.dial(to, on_dialing=on_dialing)
    except DialFailed as exc:
        return exc.reason.value
    if int(to[-2:]) >= 95:  # callees 95-99 never hang up
        await call.hangup()
    await call.wait_ended()
    return call.end_reason.value if call.end_reason else "unknown"


async def run(dials: int, in_process: bool, speed: float) -> None:
    async with sandbox_url(in_process, speed) as url, Pinecall("pk_bench", url) as pc:
        agent = pc.agent("bench", phone_number=FROM, prompt="benchmark")
        await agent.ready()
        unloaded: list[float] = []
        for i in range(100):  # one at a time: the protocol round trip without queueing
            await one_dial(agent, f"+1556{i:07d}", unloaded)
        latencies: list[float] = []
        dialing_at: list[float] = []
        reasons: Counter[str] = Counter()

        async def worker(i: int) -> None:
            reasons[await one_dial(agent, f"+1555{i:07d}", latencies, dialing_at)] += 1

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(dials):
                tg.start_soon(worker, i)
        elapsed = time.perf_counter() - started
    latencies.sort()
    unloaded.sort()
    placed_s = max(dialing_at) - started if dialing_at else float("nan")
    print(f"sandbox: {'in-process' if in_process else 'separate process'}, speed={speed}")
    print(f"dials: {dials} concurrent on one agent, all settled in {elapsed:.2f} s")
    print(f"dials placed: all {len(dialing_at)} bound to call.dialing within {placed_s:.2f} s "
          f"= {len(dialing_at) / placed_s:.0f} dials/s")
    print(f"throughput: {dials / elapsed:.0f} dial lifecycles/s")
    print(f"unloaded dial -> call.dialing (100 sequential): p50 "
          f"{statistics.median(unloaded) * 1000:.2f} ms, p99 {unloaded[98] * 1000:.2f} ms")
    if latencies:
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        print(f"dial -> call.dialing latency, {dials} at once: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
              f"({len(latencies)} samples)")
    print("settled by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dials", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=math.inf)
    parser.add_argument("--in-process", action="store_true")
    args = parser.parse_args()
    configure_logging(level="warning")
    anyio.run(run, args.dials, args.in_process, args.speed)


if __name__ == "__main__":
    main()
