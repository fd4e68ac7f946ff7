"""``dispatch campaign ...`` in a subprocess against a real ``dispatch run`` (sandbox)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.cli.conftest import cli_env, run_cli


def _query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


def _wait_for_attempts(db: Path, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            if _query(db, "SELECT count(*) FROM attempts")[0][0] >= count:
                return
        except sqlite3.OperationalError:  # not created yet
            continue
    raise AssertionError(f"never saw {count} attempt(s) in {db}")


def _start(path: Path, db: Path) -> subprocess.Popen[str]:
    # one call at a time, each ~1 s: slow enough to pause in the middle
    args = [sys.executable, "-m", "dispatch", "run", str(path), "--db", str(db), "--json-logs",
            "--poll", "0.2", "--concurrency", "1", "--rate", "30", "--sandbox-speed", "20"]
    return subprocess.Popen(args, cwd=path.parent, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def test_pause_reaches_a_running_campaign_and_resume_finishes_it(workdir: Path) -> None:
    path = workdir / "spring.csv"
    # last two digits 00-59: every callee answers and hangs up; 10 records at 30/min
    # last ~20 s, so a pause sent from a slow, loaded machine still finds the run going
    path.write_text("name,phone\n" + "".join(f"P{i},+141555510{i:02d}\n" for i in range(10)),
                    encoding="utf-8")
    db = workdir / "state.db"
    proc = _start(path, db)
    try:
        _wait_for_attempts(db, 2)  # positive control: it is dialling, about one a second
        paused = run_cli("campaign", "pause", "spring", "--db", str(db), cwd=workdir)
        assert paused.returncode == 0, paused.stderr
        assert "acknowledged by dispatcher pid" in paused.stdout
        ((acked_at, by),) = _query(db, "SELECT acked_at, acked_by FROM campaigns")
        assert f"pid {proc.pid}@" in by
        time.sleep(3.0)  # ~3 dials would have started unpaused
        assert _query(db, "SELECT count(*) FROM attempts WHERE claimed_at > ?", acked_at) == [(0,)]
        shown = run_cli("campaign", "show", "spring", "--db", str(db), cwd=workdir)
        assert "state      paused" in shown.stdout
        assert proc.poll() is None, "a paused one-shot run waits"
        resumed = run_cli("campaign", "resume", "spring", "--db", str(db), cwd=workdir)
        assert resumed.returncode == 0 and "acknowledged" in resumed.stdout, resumed.stderr
        ((resumed_at,),) = _query(db, "SELECT state_changed_at FROM campaigns")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]
    assert _query(db, "SELECT count(*) FROM attempts WHERE claimed_at > ? AND claimed_at < ?",
                  acked_at, resumed_at) == [(0,)]
    assert _query(db, "SELECT status, count(*), max(attempts) FROM records GROUP BY 1") == [
        ("completed", 10, 1)]
    listed = run_cli("campaign", "list", "--db", str(db), cwd=workdir)
    assert listed.stdout.splitlines()[1].split()[:3] == ["spring", "done", "10"]


def test_unknown_campaign_and_illegal_transition_are_one_line_exit_2(workdir: Path) -> None:
    path = workdir / "one.csv"
    path.write_text("name,phone\nA,+14155551000\n", encoding="utf-8")
    db = workdir / "state.db"
    done = run_cli("run", str(path), "--db", str(db), "--json-logs", "--sandbox-speed", "200",
                   "--campaign", "q4", cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    for args, message in ((("pause", "nope"), "unknown campaign 'nope'"),
                          (("resume", "q4"), "campaign 'q4' is done: cannot resume it"),
                          (("show", "nope"), "unknown campaign 'nope'")):
        result = run_cli("campaign", *args, "--db", str(db), cwd=workdir)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    shown = json.loads(run_cli("campaign", "show", "q4", "--json", "--db", str(db),
                               cwd=workdir).stdout)
    assert (shown["state"], shown["records"], shown["max_concurrent"]) == (
        "done", {"completed": 1}, 5)
    status = run_cli("status", "--db", str(db), cwd=workdir)
    assert "campaigns: q4 (done)" in status.stdout
    missing = run_cli("campaign", "list", "--db", str(workdir / "none.db"), cwd=workdir)
    assert missing.returncode == 2 and "no database there" in missing.stderr
