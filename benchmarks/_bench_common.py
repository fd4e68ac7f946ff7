"""Shared helpers for the hub benchmarks: a sandbox subprocess and attempt analysis."""

from __future__ import annotations

import contextlib
import heapq
import math
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from dispatch.hub.limiter import WINDOW_S, SlidingWindowLimiter, in_window
from dispatch.store import StoredAttempt


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def sandbox_process(*, speed: str, dial_log: Path | None = None) -> Iterator[str]:
    """Run ``python -m dispatch sandbox`` in its own process; yield its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "dispatch", "sandbox", "--port", str(port), "--speed", speed,
           "--log-level", "warning"]
    if dial_log is not None:
        cmd += ["--dial-log", str(dial_log)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("sandbox did not start") from None
                time.sleep(0.05)
        yield f"ws://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def max_dials_in_window(attempts: Sequence[StoredAttempt]) -> int:
    starts = sorted(a.dialed_at for a in attempts if a.dialed_at is not None)
    best, lo = 0, 0
    for hi, t in enumerate(starts):
        while not in_window(starts[lo], t):
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def max_simultaneous(attempts: Sequence[StoredAttempt]) -> int:
    events: list[tuple[float, int]] = []
    for a in attempts:
        if a.dialed_at is None:
            continue
        events.append((a.dialed_at, 1))
        events.append((a.ended_at if a.ended_at is not None else float("inf"), -1))
    live = best = 0
    for _t, delta in sorted(events, key=lambda e: (e[0], e[1])):
        live += delta
        best = max(best, live)
    return best


def duplicate_dials(attempts: Sequence[StoredAttempt]) -> int:
    seen: set[tuple[str, int]] = set()
    dup = 0
    for a in attempts:
        key = (a.record_id, a.attempt_no)
        dup += key in seen
        seen.add(key)
    call_ids = [a.call_id for a in attempts if a.call_id]
    return dup + len(call_ids) - len(set(call_ids))


# -- far-end logs as plain intervals (peers.py) ----------------------------------------




def peak_live(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals ``[start, end)`` open at one instant (an end frees its slot
    before a start at the same instant takes one)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    live = best = 0
    for _t, delta in events:
        live += delta
        best = max(best, live)
    return best


def phone_overlaps(calls: Sequence[tuple[str, float, float]]) -> int:
    """Calls ``(phone, start, end)`` that started while another call to their phone was live."""
    by_phone: dict[str, list[tuple[float, float]]] = {}
    for phone, start, end in calls:
        by_phone.setdefault(phone, []).append((start, end))
    overlaps = 0
    for spans in by_phone.values():
        latest_end = -math.inf
        for start, end in sorted(spans):
            overlaps += start < latest_end
            latest_end = max(latest_end, end)
    return overlaps


def greedy_makespan(
    jobs: Sequence[tuple[float, str, float]],
    rate: int | None,
    concurrency: int | None,
    window_s: float = WINDOW_S,
) -> float:
    """End of the last call of a greedy earliest-start schedule of ``jobs``.

    ``jobs`` are ``(release_s, phone, duration_s)``, served in release order (then
    the given order). At every instant the simulation dials every released job it
    may: a token free in the exact sliding window (:class:`SlidingWindowLimiter`), a
    concurrency slot free, and no live call to the job's phone; a job whose phone is
    busy is passed over, not waited for. Time then jumps to the next release, call
    end or token. With every release at 0 and distinct phones this is the same
    schedule as ``makespan.py``'s ``ideal_makespan``.
    """
    window = SlidingWindowLimiter(rate, window_s)
    arrivals = deque(sorted(jobs, key=lambda job: job[0]))
    ready: list[tuple[float, str, float]] = []
    live: list[tuple[float, str]] = []  # heap of (end, phone)
    busy: set[str] = set()
    t = last_end = 0.0
    while arrivals or ready:
        while live and live[0][0] <= t:
            busy.discard(heapq.heappop(live)[1])
        while arrivals and arrivals[0][0] <= t:
            ready.append(arrivals.popleft())
        tokens = window.available(t)
        slots = math.inf if concurrency is None else concurrency - len(live)
        waiting: list[tuple[float, str, float]] = []
        for job in ready:
            if tokens >= 1 and slots >= 1 and job[1] not in busy:
                window.record(t)
                heapq.heappush(live, (t + job[2], job[1]))
                busy.add(job[1])
                last_end = max(last_end, t + job[2])
                tokens, slots = tokens - 1, slots - 1
            else:
                waiting.append(job)
        ready = waiting
        candidates = [arrivals[0][0]] if arrivals else []
        candidates += [live[0][0]] if live else []
        candidates += [window.next_allowed_at(t)] if ready else []
        later = [c for c in candidates if c > t]
        if not later:
            break  # unreachable: something waiting always has a later event
        t = min(later)
    return last_end
