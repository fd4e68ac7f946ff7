"""One campaign process per database: an exclusive, crash-safe run lock.

Two hubs dialling from one database would both claim the same records. The hub
holds an ``flock`` on ``<database>.lock`` while it runs; the kernel drops it when
the process dies (even on ``kill -9``), so a crash never leaves a stale lock.
Readers (reports, status) never take it. Databases that are not SQLite files
(``:memory:``, server URLs) are not locked here.
"""

from __future__ import annotations

import os
from pathlib import Path

from dispatch.store.engine import sqlite_file
from dispatch.store.errors import StoreError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no advisory file locks
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLock", "StoreLocked", "lock_path_for"]


class StoreLocked(StoreError):
    """Another process is running a campaign on this database."""


def lock_path_for(url: str) -> Path | None:
    """The lock file of a SQLite file URL, else ``None``."""
    path = sqlite_file(url)
    return None if path is None else Path(path + ".lock")


class RunLock:
    """``acquire()`` / ``release()`` an exclusive lock for a database URL."""

    def __init__(self, url: str) -> None:
        self.path = lock_path_for(url)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreLocked` naming the holder's pid."""
        if self.path is None or fcntl is None or self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            db = str(self.path)[: -len(".lock")]
            raise StoreLocked(
                f"database {db!r} is in use by another dispatch run (pid {holder}); "
                "stop it first or use another --db"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None and fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
