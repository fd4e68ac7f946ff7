"""The peer runners of ``peers.py``: the code a user would write around each library.

Every runner gets the same feed, the same :class:`FarEnd` and the same limits, with
the window compressed to ``window_s`` real seconds (the far end's clock runs
``60 / window_s`` times faster, so its log is in campaign seconds). Each one is the
obvious user code:

- a **seen-set**: a record id already taken is dropped when it arrives again;
- a **phone lock** (one ``anyio.Lock`` per phone, held from before the dial until the
  call ended): one live call per phone;
- a **semaphore** of ``concurrency`` held around dial and call, and the library's
  rate limit taken last, right before the dial leaves (so the limiter's stamp is the
  instant of the dial, never earlier).

``aiometer`` has its own model (a list of jobs, ``max_at_once``, ``max_per_second``):
records that arrive over time are run as one ``run_on_each`` per arriving batch, and
the phone lock is taken inside the job. ``unlimited`` is the positive control: no
limit, no lock, no seen-set, to show that every column can see a violation.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from _peers_harness import FarEnd, Job, ScaledClock, Workload, feed, run_result

__all__ = ["PEERS"]

Place = Callable[[Job], Awaitable[None]]


async def _talk(far_end: FarEnd, job: Job) -> None:
    call = await far_end.dial(job.phone, metadata={"rid": job.rid})
    await call.wait_ended()


async def _user_campaign(workload: Workload, clock: ScaledClock, far_end: FarEnd,
                         place: Place) -> dict[str, Any]:
    """Seen-set and phone lock around ``place`` (semaphore, token, dial, wait)."""
    seen: set[str] = set()
    phone_locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)

    async def one(job: Job) -> None:
        async with phone_locks[job.phone]:
            await place(job)

    cpu0, t0 = time.process_time(), clock.now()
    async with anyio.create_task_group() as tg:
        async for batch in feed(clock, workload.jobs, t0):
            for job in batch:
                if job.rid not in seen:
                    seen.add(job.rid)
                    tg.start_soon(one, job)
    return run_result(far_end, t0, time.process_time() - cpu0)


async def run_aiolimiter(workload: Workload, clock: ScaledClock, far_end: FarEnd,
                         window_s: float) -> dict[str, Any]:
    from aiolimiter import AsyncLimiter

    limiter = AsyncLimiter(workload.rate, window_s)
    slots = anyio.Semaphore(workload.concurrency)

    async def place(job: Job) -> None:
        async with slots:
            await limiter.acquire()
            await _talk(far_end, job)

    return await _user_campaign(workload, clock, far_end, place)


async def run_pyrate(workload: Workload, clock: ScaledClock, far_end: FarEnd,
                     window_s: float) -> dict[str, Any]:
    from pyrate_limiter import Limiter, Rate

    # buffer_ms (default 50 ms added to every wait) is compressed like every other time
    buffer_ms = max(1, round(50 * window_s / 60.0))
    limiter = Limiter(Rate(workload.rate, round(window_s * 1000)), buffer_ms=buffer_ms)
    slots = anyio.Semaphore(workload.concurrency)

    async def place(job: Job) -> None:
        async with slots:
            await limiter.try_acquire_async("dial")
            await _talk(far_end, job)

    try:
        return await _user_campaign(workload, clock, far_end, place)
    finally:
        limiter.close()  # stops its leak thread


async def run_limits(workload: Workload, clock: ScaledClock, far_end: FarEnd,
                     window_s: float) -> dict[str, Any]:
    from limits import RateLimitItemPerSecond
    from limits.aio.storage import MemoryStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    if window_s != int(window_s):
        raise SystemExit(f"limits counts whole seconds; window {window_s} s is not one")
    item = RateLimitItemPerSecond(workload.rate, int(window_s))
    limiter = MovingWindowRateLimiter(MemoryStorage())
    slots = anyio.Semaphore(workload.concurrency)

    async def place(job: Job) -> None:
        async with slots:
            while not await limiter.hit(item, "dial"):
                stats = await limiter.get_window_stats(item, "dial")
                await anyio.sleep(max(0.0, stats.reset_time - time.time()))
            await _talk(far_end, job)

    return await _user_campaign(workload, clock, far_end, place)


async def run_aiometer(workload: Workload, clock: ScaledClock, far_end: FarEnd,
                       window_s: float) -> dict[str, Any]:
    import aiometer

    seen: set[str] = set()
    phone_locks: defaultdict[str, anyio.Lock] = defaultdict(anyio.Lock)

    async def job_fn(job: Job) -> None:
        async with phone_locks[job.phone]:
            await _talk(far_end, job)

    run = functools.partial(aiometer.run_on_each, job_fn, max_at_once=workload.concurrency,
                            max_per_second=workload.rate / window_s)
    cpu0, t0 = time.process_time(), clock.now()
    async with anyio.create_task_group() as tg:
        async for batch in feed(clock, workload.jobs, t0):
            fresh = []
            for job in batch:
                if job.rid not in seen:
                    seen.add(job.rid)
                    fresh.append(job)
            if fresh:
                tg.start_soon(run, fresh)
    return run_result(far_end, t0, time.process_time() - cpu0,
                      note="one run_on_each per arriving batch")


async def run_unlimited(workload: Workload, clock: ScaledClock, far_end: FarEnd,
                        window_s: float) -> dict[str, Any]:
    cpu0, t0 = time.process_time(), clock.now()
    async with anyio.create_task_group() as tg:
        async for batch in feed(clock, workload.jobs, t0):
            for job in batch:
                tg.start_soon(_talk, far_end, job)
    return run_result(far_end, t0, time.process_time() - cpu0)


Runner = Callable[[Workload, ScaledClock, FarEnd, float], Awaitable[dict[str, Any]]]

#: name shown in the table -> runner
PEERS: dict[str, Runner] = {
    "aiolimiter+semaphore": run_aiolimiter,
    "pyrate-limiter": run_pyrate,
    "limits (moving window)": run_limits,
    "aiometer": run_aiometer,
    "unlimited (control)": run_unlimited,
}
