"""``python -m dispatch run`` end to end against the embedded sandbox (subprocesses)."""

from __future__ import annotations

import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.cli.conftest import cli_env, run_cli

FAST = ("--sandbox-speed", "200", "--poll", "0.2", "--concurrency", "4")


def _statuses(db: Path) -> dict[str, tuple[str, str | None, int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status, last_reason, attempts FROM records").fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def _start_run(path: Path, db: Path, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "dispatch", "run", str(path), "--db", str(db), "--json-logs",
            "--poll", "0.2", *extra]
    return subprocess.Popen(args, cwd=path.parent, env=cli_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def _wait_for_status_count(db: Path, status: str, count: int, timeout_s: float = 60) -> None:
    """Poll the campaign's database (from outside, like an operator) until enough records
    have ``status``; raise if that never happens."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.2)
        if not db.exists():
            continue
        try:
            with sqlite3.connect(db) as conn:
                (n,) = conn.execute(
                    "SELECT count(*) FROM records WHERE status = ?", (status,)
                ).fetchone()
        except sqlite3.OperationalError:  # schema not created yet
            continue
        if n >= count:
            return
    raise AssertionError(f"never saw {count} record(s) {status!r} in {db}")


def test_run_finishes_every_record_and_reports(leads: Path, workdir: Path) -> None:
    db = workdir / "state.db"
    result = run_cli("run", str(leads), "--db", str(db), "--json-logs", *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SANDBOX MODE" in result.stderr
    statuses = _statuses(db)
    # 10 data rows: one exact duplicate collapses, one already has a status -> 8 records
    assert len(statuses) == 8
    by_status = {}
    for status, reason, _attempts in statuses.values():
        by_status.setdefault(status, []).append(reason)
    assert sorted(by_status["completed"]) == ["hangup"] * 4
    assert sorted(by_status["failed"]) == ["busy", "failed", "no_answer"]
    assert by_status["skipped"] == ["invalid_phone"]
    # non-TTY output is structured: every log line on stderr after the banner is JSON
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "completed" for e in events)

    report = run_cli("report", "--db", str(db), "--format", "csv", cwd=workdir)
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader(io.StringIO(report.stdout)))
    assert len(rows) == 8
    wanted = {"id", "phone", "status", "attempts", "last_reason", "last_call_id", "updated_at"}
    assert wanted <= set(rows[0])
    answered = [r for r in rows if r["status"] == "completed"]
    assert all(r["last_call_id"].startswith("CA") for r in answered)

    lines = run_cli("report", "--db", str(db), "--format", "json", cwd=workdir).stdout
    parsed = [json.loads(line) for line in lines.splitlines()]
    assert len(parsed) == 8 and all("status" in p for p in parsed)

    parquet = workdir / "out.parquet"
    out = run_cli("report", "--db", str(db), "--format", "parquet", "--output", str(parquet),
                  cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert pl.read_parquet(parquet).height == 8

    table = run_cli("report", "--db", str(db), cwd=workdir)
    assert table.returncode == 0 and "completed" in table.stdout

    status = run_cli("status", "--db", str(db), "--json", cwd=workdir)
    counts = json.loads(status.stdout)
    assert counts["completed"] == 4 and counts["failed"] == 3 and counts["skipped"] == 1

    again = run_cli("run", str(leads), "--db", str(db), "--json-logs", *FAST, cwd=workdir)
    assert again.returncode == 0
    assert _statuses(db) == statuses, "a second run must not dial anything again"


def test_missing_file_is_a_one_line_error(workdir: Path) -> None:
    result = run_cli("run", str(workdir / "nope.csv"), cwd=workdir)
    assert result.returncode == 2
    assert "nope.csv" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_option_is_a_usage_error(leads: Path, workdir: Path) -> None:
    result = run_cli("run", str(leads), "--rate", "0", cwd=workdir)
    assert result.returncode == 2
    assert "--rate" in result.stderr


def test_report_without_database_says_so(workdir: Path) -> None:
    result = run_cli("report", "--db", str(workdir / "none.db"), cwd=workdir)
    assert result.returncode == 2 and "no database" in result.stderr


def test_bad_key_exits_3_and_never_prints_the_key(leads: Path, workdir: Path) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "dispatch", "sandbox", "--port", "0", "--api-key", "right-key-123"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        url = line.strip().split()[-1]
        assert url.startswith("ws://"), line
        secret = "pk_wrong_key_987654"
        result = run_cli(
            "run", str(leads), "--url", url, "--from", "+15005550006", "--db",
            str(workdir / "x.db"), cwd=workdir, env=cli_env(PINECALL_API_KEY=secret),
        )
        assert result.returncode == 3, result.stderr[-2000:]
        assert "INVALID_KEY" in result.stderr
        assert secret not in result.stderr and secret not in result.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        if server.stdout is not None:
            server.stdout.close()


def test_interrupted_run_continues_where_it_stopped(workdir: Path) -> None:
    path = workdir / "many.csv"
    # last two digits 00-59: every callee answers and hangs up
    rows = ["name,phone"] + [f"P{i},+141555510{i:02d}" for i in range(60)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    db = workdir / "state.db"
    proc = _start_run(path, db, "--sandbox-speed", "20", "--concurrency", "3")
    _wait_for_status_count(db, "completed", 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    first = _statuses(db)
    assert any(s != "completed" for s, _, _ in first.values()) or len(first) < 60
    assert all(s not in ("dialing", "in_call") for s, _, _ in first.values()), "drain left calls"

    again = run_cli("run", str(path), "--db", str(db), "--json-logs", "--sandbox-speed", "200",
                    "--poll", "0.2", "--concurrency", "6", cwd=workdir)
    assert again.returncode == 0, again.stderr[-3000:]
    final = _statuses(db)
    assert len(final) == 60
    assert all(s == "completed" for s, _, _ in final.values())
    assert all(attempts == 1 for _, _, attempts in final.values()), "someone was dialled twice"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_report_to_output_file(leads: Path, workdir: Path, fmt: str) -> None:
    db = workdir / "s.db"
    assert run_cli("run", str(leads), "--db", str(db), *FAST, cwd=workdir).returncode == 0
    out = workdir / f"r.{fmt}"
    assert run_cli("report", "--db", str(db), "--format", fmt, "--output", str(out),
                   cwd=workdir).returncode == 0
    assert out.read_text(encoding="utf-8").count("\n") >= 8


def test_second_ctrl_c_stops_now_and_leaves_the_database_consistent(workdir: Path) -> None:
    path = workdir / "stuck.csv"
    # 96 and 97 answer and never hang up by themselves; 01 would answer normally
    path.write_text("name,phone\nA,+14155550196\nB,+14155550197\nC,+14155550101\n",
                    encoding="utf-8")
    db = workdir / "state.db"
    proc = _start_run(path, db, "--sandbox-speed", "5", "--concurrency", "2")
    _wait_for_status_count(db, "in_call", 2)
    proc.send_signal(signal.SIGINT)  # drain: these calls would never end by themselves
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)  # stop now
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    events = [json.loads(line) for line in err.splitlines()]
    drain, now = (e for e in events if e["event"].startswith("stopping"))
    assert drain["live_calls"] == 2 and drain["signal"] == "SIGINT"
    assert "2 live call(s) left" in drain["message"] and "Ctrl-C again" in drain["message"]
    assert now["event"] == "stopping now" and now["live_calls"] == 2
    by_phone: dict[str, tuple[str, str | None]] = {}
    with sqlite3.connect(db) as conn:
        for phone, status, reason in conn.execute("SELECT phone, status, last_reason FROM records"):
            by_phone[phone] = (status, reason)
    assert by_phone["+14155550196"] == ("completed", "interrupted")
    assert by_phone["+14155550197"] == ("completed", "interrupted")
    assert by_phone["+14155550101"][0] == "pending", "never dialled: left for the next run"


def test_latin1_semicolon_file_with_a_greeting_template(workdir: Path) -> None:
    path = workdir / "latin1.csv"
    path.write_bytes("nombre;phone;servicio\r\nJosé;+14155550101;Óptica\r\n;+14155550102;Dental\r\n"
                     .encode("latin-1"))
    db = workdir / "l.db"
    result = run_cli("run", str(path), "--db", str(db), "--encoding", "latin-1",
                     "--greeting", "Hola {nombre}, su cita de {servicio}.", *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT phone, payload FROM records").fetchall())
        errors = dict(conn.execute("SELECT phone, error FROM records").fetchall())
    assert json.loads(rows["+14155550101"])["greeting"] == "Hola José, su cita de Óptica."
    statuses = _statuses(db)
    assert sorted(s for s, _, _ in statuses.values()) == ["completed", "skipped"]
    assert "nombre" in errors["+14155550102"], "the empty template field is named"


def test_a_second_run_on_the_same_database_is_refused(workdir: Path) -> None:
    path = workdir / "busy.csv"
    # 96 never hangs up by itself: the first run stays busy until we stop it
    path.write_text("name,phone\nA,+14155550196\n", encoding="utf-8")
    db = workdir / "shared.db"
    first = _start_run(path, db, "--sandbox-speed", "5")
    try:
        _wait_for_status_count(db, "in_call", 1)
        second = run_cli("run", str(path), "--db", str(db), *FAST, cwd=workdir)
        assert second.returncode == 2, second.stderr[-2000:]
        line = second.stderr.strip().splitlines()[-1]
        assert "in use by another dispatch run" in line and str(first.pid) in line
        with sqlite3.connect(db) as conn:
            (dials,) = conn.execute("SELECT count(*) FROM attempts").fetchone()
        assert dials == 1, "the refused run dialled nobody"
    finally:
        first.send_signal(signal.SIGINT)  # drain...
        time.sleep(0.5)
        if first.poll() is None:
            first.send_signal(signal.SIGINT)  # ...and stop now: that call never ends
        first.communicate(timeout=60)
