"""Ctrl-C on a terminal: the first says at once that it drains, the second hangs up."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.conftest import cli_env
from tests.cli.test_run import _wait_for_status_count

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class _Terminal:
    """A pseudo-terminal the CLI writes to, so that it sees a real TTY."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        self._raw = b""

    def text(self) -> str:
        return _ANSI.sub(b"", self._raw).decode("utf-8", errors="replace")

    def read_until(self, needle: str, timeout_s: float = 30) -> str:
        """Read the terminal until ``needle`` shows up; raise if it never does."""
        deadline = time.monotonic() + timeout_s
        while needle not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {needle!r}; got: {self.text()[-1500:]}")
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self._raw += os.read(self.master, 65536)
                except OSError:  # the child closed its side
                    break
        return self.text()


def test_first_ctrl_c_says_it_drains_and_the_second_hangs_up(workdir: Path) -> None:
    path = workdir / "stuck.csv"
    # 96 and 97 answer and never hang up by themselves; 01 stays pending (concurrency 2)
    path.write_text("name,phone\nA,+14155550196\nB,+14155550197\nC,+14155550101\n",
                    encoding="utf-8")
    db = workdir / "state.db"
    term = _Terminal()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch", "run", str(path), "--db", str(db), "--poll", "0.2",
         "--sandbox-speed", "5", "--concurrency", "2"],
        cwd=workdir, stdin=term.slave, stdout=term.slave, stderr=term.slave, close_fds=True,
        env=cli_env(TERM="xterm-256color", COLUMNS="160", LINES="40"),
    )
    os.close(term.slave)
    try:
        _wait_for_status_count(db, "in_call", 2)
        term.read_until("live calls 2/2")  # the live panel is up
        proc.send_signal(signal.SIGINT)
        shown = term.read_until("To hang up on them now, press Ctrl-C again.")
        assert "Ctrl-C: draining. No new dials; 2 live call(s) left to finish" in shown
        assert "draining: 2 live call(s) left; press Ctrl-C again" in term.read_until("left;")
        proc.send_signal(signal.SIGINT)
        term.read_until("Stopping now: hanging up on 2 live call(s).")
        assert proc.wait(timeout=60) == 130
        summary = term.read_until("run the same command again to go on.")
        assert "Campaign summary" in summary
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(term.master)
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT phone, status FROM records").fetchall())
    assert rows == {"+14155550196": "completed", "+14155550197": "completed",
                    "+14155550101": "pending"}
