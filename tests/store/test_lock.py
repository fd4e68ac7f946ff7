"""One campaign process per database: the run lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from dispatch.hub import DispatchHub
from dispatch.store import RunLock, StoreLocked
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_second_holder_is_refused_with_the_pid_then_free_after_release(tmp_path: Path) -> None:
    first, second = RunLock(_url(tmp_path / "a.db")), RunLock(_url(tmp_path / "a.db"))
    first.acquire()
    try:
        expected = rf"in use by another dispatch run \(pid {os.getpid()}\)"
        with pytest.raises(StoreLocked, match=expected):
            second.acquire()
    finally:
        first.release()
    second.acquire()
    second.release()


def test_memory_and_server_databases_are_not_locked() -> None:
    for url in ("sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://localhost/test"):
        lock = RunLock(url)
        assert lock.path is None
        lock.acquire()
        RunLock(url).acquire()  # no error: nothing to lock
        lock.release()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    code = textwrap.dedent(f"""
        import sys, time
        from dispatch.store import RunLock
        RunLock({_url(db)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLocked, match=str(child.pid)):
            RunLock(_url(db)).acquire()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        lock = RunLock(_url(db))
        lock.acquire()  # the kernel dropped the dead process's lock
        lock.release()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stdout is not None
        child.stdout.close()


@pytest.mark.anyio
async def test_a_hub_refuses_a_database_another_run_holds(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    holder = RunLock(_url(db))
    holder.acquire()
    clock = FakeClock()
    hub = DispatchHub(MemoryDialer(clock, default=Answer(1)), [MemoryStrategy([])], db=db,
                      clock=clock)
    try:
        with anyio.fail_after(10), pytest.raises(StoreLocked):
            await hub.run(until_idle=True)
    finally:
        holder.release()
    async with clock.autojump():
        with anyio.fail_after(10):
            await hub.run(until_idle=True)  # free again: runs normally


@pytest.mark.parametrize(
    ("url", "expected"),
    [("sqlite+aiosqlite:////tmp/a b.db", "/tmp/a b.db"),
     ("sqlite:////tmp/x.db?mode=ro", "/tmp/x.db"),
     ("sqlite+aiosqlite://", None),
     ("sqlite+aiosqlite:///:memory:", None),
     ("postgresql+asyncpg://localhost/test", None)],
)
def test_sqlite_file_of_a_url(url: str, expected: str | None) -> None:
    from dispatch.store.engine import sqlite_file

    assert sqlite_file(url) == expected
