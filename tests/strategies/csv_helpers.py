"""Shared helpers for the CSV strategy tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

from dispatch.records import Record
from dispatch.strategies import CsvStrategy


class FixedClock:
    """A clock frozen at ``now_s`` (``settle_s`` decisions compare file mtimes to it)."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def now(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.now_s += max(0.0, seconds)


def write(path: Path, text: str | bytes, *, encoding: str = "utf-8") -> None:
    data = text if isinstance(text, bytes) else text.encode(encoding)
    path.write_bytes(data)


def append(path: Path, text: str | bytes) -> None:
    with open(path, "ab") as f:
        f.write(text if isinstance(text, bytes) else text.encode())
    bump_mtime(path)


def bump_mtime(path: Path) -> None:
    """Make sure the mtime moves even on coarse-timestamp filesystems."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def age(path: Path, seconds: float = 60.0) -> None:
    """Pretend ``path`` was last written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


async def drain(strategy: CsvStrategy) -> list[Record]:
    """Poll like the hub: once, then again while ``has_more``."""
    records = list(await strategy.poll())
    while strategy.has_more:
        records.extend(await strategy.poll())
    return records


def phones(records: list[Record]) -> list[str]:
    return [r.phone for r in records]
