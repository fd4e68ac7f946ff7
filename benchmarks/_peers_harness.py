"""What every runner of ``peers.py`` shares: compressed time, the far end, the feed.

Nothing here imports ``dispatch`` (the peer runners' RSS must not include the hub):

- :class:`ScaledClock` is campaign time running ``scale`` times faster than the real
  clock; it satisfies the hub's ``Clock`` protocol structurally;
- :class:`FarEnd` is the one fake voice platform every runner dials. It stamps, on
  the scaled clock, the instant each dial leaves and the instant its call ends; the
  benchmark's figures are computed from this log only, never from a runner's view;
- :func:`feed` releases a workload's records on its schedule (campaign seconds after
  the feed starts), as the batches a runner would receive from its lead source.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import resource
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel

__all__ = [
    "FarEnd", "FarEndCall", "Job", "ScaledClock", "Workload", "batches", "feed", "peak_rss_kib",
    "run_result",
]


class ScaledClock:
    """Campaign seconds (epoch-based) that pass ``scale`` times faster than real ones."""

    def __init__(self, scale: float) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.scale = scale
        self._epoch = time.time()
        self._origin = time.monotonic()

    def now(self) -> float:
        return self._epoch + (time.monotonic() - self._origin) * self.scale

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds) / self.scale)

    def real_seconds(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of campaign time last (the hub then waits with a
        cancel scope instead of a timer task, as on the real clock)."""
        return seconds / self.scale


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    """One row of a feed: a record id, its phone, when it arrives, how long its call lasts.

    The same ``rid`` may appear more than once in a feed (a duplicate row, a re-sent
    lead); only its first appearance counts, and it must be dialled once.
    """

    rid: str
    phone: str
    release_s: float
    duration_s: float


@dataclasses.dataclass(frozen=True)
class Workload:
    """A feed of jobs and the limits every runner is given for it."""

    name: str
    title: str
    jobs: tuple[Job, ...]
    rate: int  # dials per 60 campaign seconds
    concurrency: int

    def unique_jobs(self) -> list[Job]:
        """First appearance of each record id, in feed order."""
        seen: set[str] = set()
        out: list[Job] = []
        for job in self.jobs:
            if job.rid not in seen:
                seen.add(job.rid)
                out.append(job)
        return out

    def durations(self) -> dict[str, float]:
        return {job.rid: job.duration_s for job in self.unique_jobs()}

    def dump(self, path: Path) -> None:
        data = dataclasses.asdict(self)
        path.write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Workload:
        data = json.loads(path.read_text(encoding="utf-8"))
        jobs = tuple(Job(**job) for job in data.pop("jobs"))
        return cls(jobs=jobs, **data)


def batches(jobs: tuple[Job, ...]) -> list[tuple[float, list[Job]]]:
    """The feed as ``(release_s, jobs released then)``, in release order (feed order kept)."""
    ordered = sorted(jobs, key=lambda job: job.release_s)
    return [(release_s, list(group))
            for release_s, group in itertools.groupby(ordered, key=lambda job: job.release_s)]


async def feed(clock: ScaledClock, jobs: tuple[Job, ...], t0: float) -> AsyncIterator[list[Job]]:
    """Yield the jobs released together, each batch at ``t0`` plus its release time."""
    for release_s, group in batches(jobs):
        await clock.sleep(t0 + release_s - clock.now())
        yield group


class FarEndCall:
    """An answered call at the far end; it hangs up by itself after its duration."""

    def __init__(self, far_end: FarEnd, index: int, to: str, duration_s: float) -> None:
        self._far_end = far_end
        self._index = index
        self.id = f"CA{index:08d}"
        self.to = to
        self.started_at: float | None = far_end.clock.now()
        self.ended_at: float | None = None
        self.tool_results: list[dict[str, Any]] = []
        self.disposition: str | None = None
        self.end_reason: str | None = None  # wire word; the hub normalises it
        self.end_reason_raw: str | None = None
        self._duration_s = duration_s
        self._hangup = anyio.Event()

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    async def wait_ended(self) -> FarEndCall:
        """Return when the call is over (its duration after it started, or once hung up).

        The callee hangs up ``duration_s`` after the call started whenever the runner
        gets round to waiting: the log says so (a real platform ends the call then),
        and a runner that notices late pays only for the slot it frees late."""
        if self.ended_at is None:
            assert self.started_at is not None
            due = self.started_at + self._duration_s
            clock = self._far_end.clock
            with anyio.move_on_after(max(0.0, due - clock.now()) / clock.scale):
                await self._hangup.wait()
            if self.ended_at is None:
                self._end("hangup", at=min(due, clock.now()))
        return self

    async def hangup(self) -> None:
        self._hangup.set()
        if self.ended_at is None:
            self._end("canceled")

    async def set_prompt_vars(self, vars: Mapping[str, str]) -> None:
        """Nothing to render at this far end."""

    def _end(self, raw: str, at: float | None = None) -> None:
        self.end_reason = self.end_reason_raw = raw
        self.ended_at = self._far_end.clock.now() if at is None else at
        self._far_end.log[self._index][3] = self.ended_at


class FarEnd:
    """The fake voice platform: answers at once, keeps the log of what it saw.

    ``log`` has one ``[record_id, phone, dial_left_at, ended_at]`` row per dial
    (campaign seconds on the shared clock; ``ended_at`` is ``None`` while live). The
    record id travels in the dial's metadata as ``rid``, as a user would pass it.
    """

    def __init__(self, clock: ScaledClock, durations_s: Mapping[str, float]) -> None:
        self.clock = clock
        self._durations_s = durations_s
        self.log: list[list[Any]] = []

    async def dial(
        self,
        to: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        on_dialing: Any = None,
        **_: Any,
    ) -> FarEndCall:
        """Place a call that is answered at once; stamps the instant it left."""
        rid = str((metadata or {}).get("rid"))
        self.log.append([rid, to, self.clock.now(), None])
        call = FarEndCall(self, len(self.log) - 1, to, self._durations_s[rid])
        if on_dialing is not None:
            result = on_dialing(call)
            if hasattr(result, "__await__"):
                await result
        await anyio.lowlevel.checkpoint()
        return call


def run_result(far_end: FarEnd, t0: float, cpu_s: float, note: str = "") -> dict[str, Any]:
    """What a runner's process reports: its far-end log (seconds after ``t0``), CPU and RSS."""
    rows = [[rid, phone, start - t0, None if end is None else end - t0]
            for rid, phone, start, end in far_end.log]
    return {"log": rows, "cpu_s": cpu_s, "rss_mib": peak_rss_kib() / 1024, "note": note}


def peak_rss_kib() -> int:
    """This process's peak RSS. ``VmHWM`` on Linux: ``ru_maxrss`` of a child started by
    ``subprocess`` (vfork + exec) also counts the parent's memory at the fork."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
