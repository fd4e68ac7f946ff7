"""The ``DispatchHub`` runner of ``peers.py``, through the public API only.

The hub cannot be told a window other than 60 s, but it reads time from the clock
it is given: it runs on the same :class:`ScaledClock` as the far end (campaign time,
``60 / window_s`` times faster than real), so its 60 s window lasts ``window_s`` real
seconds, like every peer's. Its own settings in clock seconds (poll interval, dial
timeout) are compressed with it. What is not compressed is its real work: a
millisecond of CPU or SQLite latency costs ``60 / window_s`` ms of campaign time.

The feed reaches it through :class:`FeedStrategy`, a long-polling strategy: a poll
returns the batches already released or, when none is, waits until the next one is,
so a record reaches the hub at its release instant (no poll-interval delay, which
the greedy ideal does not have either). The hub's seen-set is its own dedup by id.

The clock offers ``real_seconds`` (``dispatch.clock.RealRateClock``), so the hub
waits on it with cancel scopes, as on the real clock, not with a timer task per wait.
"""

from __future__ import annotations

import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _peers_harness import FarEnd, ScaledClock, Workload, batches, run_result

from dispatch import DispatchHub
from dispatch.records import Record
from dispatch.store import Store
from dispatch.strategy import Strategy

__all__ = ["run_hub"]


class FeedStrategy(Strategy):
    """Hands out a workload's batches on schedule; the first poll starts the clock."""

    name = "feed"

    def __init__(self, clock: ScaledClock, workload: Workload) -> None:
        self._clock = clock
        self._pending = deque(
            (release_s, [Record(id=j.rid, phone=j.phone, metadata={"rid": j.rid}) for j in jobs])
            for release_s, jobs in batches(workload.jobs)
        )
        self.t0: float | None = None
        self.cpu0 = 0.0

    async def poll(self) -> Sequence[Record]:
        """Released batches; waits for the next release when none is due yet."""
        if self.t0 is None:
            self.t0, self.cpu0 = self._clock.now(), time.process_time()
        if not self._pending:
            return []
        await self._clock.sleep(self.t0 + self._pending[0][0] - self._clock.now())
        out = self._pending.popleft()[1]  # due now (a timer may fire a hair early)
        while self._pending and self.t0 + self._pending[0][0] <= self._clock.now():
            out += self._pending.popleft()[1]
        return out


async def run_hub(workload: Workload, clock: ScaledClock, far_end: FarEnd,
                  window_s: float) -> dict[str, Any]:
    strategy = FeedStrategy(clock, workload)
    with tempfile.TemporaryDirectory() as tmp:
        async with await Store.open(Path(tmp) / "hub.db") as store:
            hub = DispatchHub(far_end, [strategy], max_calls_per_minute=workload.rate,
                              max_concurrent=workload.concurrency, db=store, clock=clock)
            await hub.run(until_idle=True)
            cpu_s = time.process_time() - strategy.cpu0
            writer = store.writer
    assert strategy.t0 is not None, "the hub never polled"
    dials = max(1, len(far_end.log))
    rows = getattr(writer, "rows_written", writer.ops_written)
    note = (f"SQLite store; CPU from the first poll; per dial {writer.batches / dials:.2f} "
            f"transactions, {rows / dials:.2f} rows")
    return run_result(far_end, strategy.t0, cpu_s, note=note)
