"""Shared helpers for the hub benchmarks: a sandbox subprocess and attempt analysis."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from dispatch.hub.limiter import in_window
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
