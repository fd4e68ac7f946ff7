"""``dispatch serve`` as systemd runs it: a subprocess, a real notify socket, signals.

The embedded sandbox places the calls (no key): the callee of a number ending in 99
never hangs up, so that call is live when SIGTERM arrives.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .notify_socket import NotifySocket

pytestmark = pytest.mark.timeout(240)

CONFIG = """\
store = "{db}"
log_format = "json"

[voice]
sandbox_speed = 20

[control]
enabled = false

[[campaigns]]
name = "alpha"
sources = [{{ kind = "csv", path = "{alpha}" }}]
drain_timeout_s = 3

[campaigns.limits]
max_per_minute = {rate}
max_concurrent = 3

[[campaigns]]
name = "beta"
sources = [{{ kind = "csv", path = "{beta}" }}]
"""


GAMMA = """
[[campaigns]]
name = "gamma"
sources = [{{ kind = "csv", path = "{gamma}" }}]
"""


def _write_config(path: Path, tmp: Path, rate: int, *, swap_beta_for_gamma: bool = False) -> None:
    text = CONFIG.format(db=tmp / "d.db", alpha=tmp / "alpha.csv", beta=tmp / "beta.csv",
                         rate=rate)
    if swap_beta_for_gamma:
        text = text[: text.index("[[campaigns]]\nname = \"beta\"")] + GAMMA.format(
            gamma=tmp / "gamma.csv")
    path.write_text(text, encoding="utf-8")


def _query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return list(conn.execute(sql))


def _wait(predicate: object, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def _env(notify: NotifySocket) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DISPATCH_", "PINECALL_", "WATCHDOG_", "NOTIFY_"))}
    env.update(NOTIFY_SOCKET=notify.name, WATCHDOG_USEC="1000000")
    return env


def test_serve_ready_watchdog_reload_and_drain(tmp_path: Path) -> None:
    # alpha: the first record is a callee who never hangs up (live at SIGTERM), then 5 more
    (tmp_path / "alpha.csv").write_text(
        "id,phone\n" + "".join(f"a{i},+1415555{i:04d}\n" for i in (99, 1, 2, 3, 4, 5)))
    (tmp_path / "beta.csv").write_text("id,phone\nb1,+14155550201\nb2,+14155550202\n")
    config = tmp_path / "dispatch.toml"
    _write_config(config, tmp_path, rate=1)
    db = tmp_path / "d.db"
    notify = NotifySocket()
    proc = subprocess.Popen([sys.executable, "-m", "dispatch", "serve", "--config", str(config)],
                            env=_env(notify), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ready = notify.wait_for("READY", "1")
        assert "alpha" in ready.get("STATUS", "") and "beta" in ready.get("STATUS", "")
        first_ping = notify.wait_for("WATCHDOG", "1")
        notify.wait_for("WATCHDOG", "1", after=notify.messages.index(first_ping) + 1)
        # one dial per minute: alpha has dialled its live callee and nobody else
        _wait(lambda: _query(db, "SELECT COUNT(*) FROM attempts")[0][0] >= 3)  # a99, b1, b2
        alpha_dials = "SELECT COUNT(*) FROM attempts a JOIN records r ON r.pk = a.record_pk " \
                      "WHERE r.campaign_id = 'alpha'"
        assert _query(db, alpha_dials)[0][0] == 1

        config.write_text(config.read_text().replace("max_concurrent = 3", "max_concurrent = 0"))
        mark = len(notify.messages)
        proc.send_signal(signal.SIGHUP)  # an invalid file: nothing changes, still ready
        refused = notify.wait_for("READY", "1", after=mark)
        assert refused["STATUS"].startswith("reload refused (invalid config)")
        assert _query(db, alpha_dials)[0][0] == 1

        # SIGHUP: the raised limit applies at once, gamma starts, beta (done) is removed
        (tmp_path / "gamma.csv").write_text("id,phone\ng1,+14155550301\n")
        _write_config(config, tmp_path, rate=100, swap_beta_for_gamma=True)
        mark = len(notify.messages)
        proc.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", "1", after=mark)
        assert int(reloading["MONOTONIC_USEC"]) > 0
        reloaded = notify.wait_for("READY", "1", after=notify.messages.index(reloading) + 1)
        assert "gamma" in reloaded["STATUS"]
        _wait(lambda: _query(db, alpha_dials)[0][0] == 6, timeout_s=30)
        _wait(lambda: _query(db, "SELECT status FROM records WHERE id = 'g1'")
              == [("completed",)], timeout_s=30)
        assert _query(db, "SELECT max_per_minute FROM campaigns WHERE id = 'alpha'") == [(100,)]
        live = _query(db, "SELECT status FROM records WHERE id = 'a99'")
        assert live == [("in_call",)]

        mark = len(notify.messages)
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING", "1", after=mark)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
    rows = dict(_query(db, "SELECT id, last_reason FROM records WHERE id = 'a99'"))
    assert rows == {"a99": "interrupted"}  # hung up after the 3 s grace, recorded
    by_campaign = dict(_query(db, "SELECT campaign_id, COUNT(*) FROM records "
                                  "WHERE status = 'completed' GROUP BY campaign_id"))
    assert by_campaign == {"alpha": 6, "beta": 2, "gamma": 1}
    assert '"campaign removed from the config: draining it"' in stderr
    assert "reload refused: invalid config" in stderr and "max_concurrent" in stderr


def test_serve_refuses_an_invalid_config_naming_each_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[voice]\napi_key = "pk_live_SECRET123"\n\n[[campaigns]]\nname = "x"\n'
        'sources = [{ kind = "csv", path = "x.csv" }]\n[campaigns.limits]\nmax_per_minute = 0\n',
        encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "dispatch", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("DISPATCH_")})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "voice.api_key" in lines[0]
    assert "SECRET123" not in result.stderr + result.stdout
    config.write_text(config.read_text().replace('api_key = "pk_live_SECRET123"\n', ""))
    result = subprocess.run([sys.executable, "-m", "dispatch", "config", "check", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"{config}: campaigns[0].limits.max_per_minute: Input "
                                     "should be greater than 0 (got 0)")


def test_serve_start_failures_are_one_line_with_their_exit_code(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,phone\na1,+14155550101\n")
    config = tmp_path / "k.toml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
    env["PINECALL_API_KEY"] = "pk_live_HUSHHUSH"

    def serve(agent: str) -> subprocess.CompletedProcess[str]:
        config.write_text(f'store = "k.db"\n[voice]\nurl = "ws://127.0.0.1:9"\n[control]\n'
                          f'enabled = false\n[[campaigns]]\nname = "k"\n'
                          f'sources = [{{ kind = "csv", path = "a.csv" }}]\n{agent}')
        return subprocess.run([sys.executable, "-m", "dispatch", "serve", "--config",
                               str(config)], capture_output=True, text=True, timeout=90,
                              cwd=tmp_path, env=env)

    no_caller_id = serve("")
    assert no_caller_id.returncode == 2
    assert "agent.from (caller id) is required" in no_caller_id.stderr
    unreachable = serve('[campaigns.agent]\nfrom = "+14155550000"\n')
    assert unreachable.returncode == 1  # maybe transient: systemd restarts it
    assert "cannot reach the voice server" in unreachable.stderr
    for result in (no_caller_id, unreachable):
        assert "HUSHHUSH" not in result.stderr + result.stdout
