"""``dispatch.run_campaign`` and the APScheduler example, on the embedded sandbox."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import dispatch
from dispatch.config import parse_config

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp: Path, csv: str, **campaign: object) -> dispatch.DispatchConfig:
    (tmp / "leads.csv").write_text(csv, encoding="utf-8")
    return parse_config({"store": str(tmp / "lib.db"), "voice": {"sandbox": True,
                                                                 "sandbox_speed": 20},
                         "campaigns": [{"name": "lib", "sources": [
                             {"kind": "csv", "path": str(tmp / "leads.csv")}], **campaign}]},
                        environ={})


def test_run_campaign_runs_to_the_end_and_again_calls_nobody_twice(tmp_path: Path) -> None:
    config = _config(tmp_path, "id,phone\nk1,+14155550101\nk2,+14155550170\n")
    first = dispatch.run_campaign(config, environ={})
    assert (first.campaign, first.counts, first.stopped_early) == (
        "lib", {"completed": 1, "failed": 1}, False)
    again = dispatch.run_campaign(config, environ={})
    assert again.counts == first.counts
    with sqlite3.connect(tmp_path / "lib.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM attempts").fetchone() == (2,)


def test_run_campaign_window_end_drains_and_records_the_cut_call(tmp_path: Path) -> None:
    # ...99 never hangs up: the window ends with it live; it gets 1 s, then is hung up
    config = _config(tmp_path, "id,phone\nlive,+14155550199\nok,+14155550102\n",
                     drain_timeout_s=1)
    result = dispatch.run_campaign(config, max_duration_s=3.0, environ={})
    assert result.stopped_early
    with sqlite3.connect(tmp_path / "lib.db") as conn:
        reasons = dict(conn.execute("SELECT id, last_reason FROM records"))
    assert reasons == {"live": "interrupted", "ok": "hangup"}


def test_run_campaign_names_an_unknown_campaign(tmp_path: Path) -> None:
    config = _config(tmp_path, "id,phone\nk1,+14155550101\n")
    with pytest.raises(ValueError, match=r"no campaign .nope.*campaigns: lib"):
        dispatch.run_campaign(config, campaign="nope", environ={})


def test_apscheduler_example_runs_one_window(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_text("id,phone\nx1,+14155550101\nx2,+14155550103\n")
    (tmp_path / "c.toml").write_text('store = "ex.db"\n[voice]\nsandbox_speed = inf\n'
                                     '[[campaigns]]\nname = "window"\n'
                                     'sources = [{ kind = "csv", path = "l.csv" }]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISPATCH_", "PINECALL_"))}
    result = subprocess.run([sys.executable, str(ROOT / "examples/apscheduler_reminders.py"),
                             "--once", "--config", "c.toml"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "campaign window: all done" in result.stdout
    with sqlite3.connect(tmp_path / "ex.db") as conn:
        assert conn.execute("SELECT status, COUNT(*) FROM records GROUP BY status").fetchall() \
            == [("completed", 2)]
