"""Issue 9 end to end through the CLI (subprocesses) against the sandbox: calling hours
on the embedded sandbox's simulated time, DNC hits never dialled (the sandbox's own
dial log), deferrals visible in ``status``, ``dispatch check`` and ``dispatch dnc``."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.conftest import SandboxServer, cli_env, run_cli
from tests.compliance.helpers import local

NY = "America/New_York"
OPENING_UTC = "2026-03-11T12:00:00+00:00"  # 08:00 EDT (US DST began 2026-03-08)


def _csv(path: Path, phones: list[str], extra: str = "") -> Path:
    header = "id,phone" + ("," + extra.split("=")[0] if extra else "")
    rows = [f"r{i},{p}" + ("," + extra.split("=")[1] if extra else "")
            for i, p in enumerate(phones)]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _records(db: Path) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return {r["id"]: r for r in conn.execute("SELECT * FROM records")}


def _attempt_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM attempts").fetchone()[0])


def test_started_at_2059_dials_until_2100_and_resumes_at_0800(tmp_path: Path) -> None:
    # callees ring 20-30 simulated s without answering (endings 60-74): at speed 10 each
    # dial holds the only line 2-3 real s, so 21:00 comes while records are left
    leads = _csv(tmp_path / "late.csv", [f"+121255501{60 + i}" for i in range(5)])
    db = tmp_path / "late.db"
    result = run_cli("run", str(leads), "--db", str(db), "--json-logs", "--poll", "0.2",
                     "--concurrency", "1", "--sandbox-speed", "10",
                     "--sandbox-time", "2026-03-10T20:59:52-04:00", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _records(db)
    assert len(rows) == 5 and all(r["status"] == "failed" for r in rows.values())
    assert all(r["attempts"] == 1 for r in rows.values())  # a deferral is not an attempt
    assert _attempt_count(db) == 5
    when = sorted(local(r["decision_at"], NY) for r in rows.values())
    before = [t for t in when if t < "2026-03-10T21:00"]
    after = [t for t in when if t >= "2026-03-11T08:00"]
    assert before and after and len(before) + len(after) == 5, when  # none in between
    assert before[0].startswith("2026-03-10T20:59:52")
    assert after[0].startswith("2026-03-11T08:00:00"), when  # the exact opening
    assert all(t < "2026-03-11T08:05" for t in after)
    events = [json.loads(x) for x in result.stderr.splitlines() if x.startswith("{")]
    deferred = [e for e in events if e.get("event") == "deferred"]
    assert deferred and {e["until"] for e in deferred} == {OPENING_UTC}
    assert {e["reason"] for e in deferred} == {"outside_calling_hours"}


def test_dnc_file_and_internal_list_are_never_dialled(tmp_path: Path,
                                                      sandbox_server: SandboxServer) -> None:
    phones = [f"+141555501{n:02d}" for n in (1, 2, 3, 4)]
    leads = _csv(tmp_path / "l.csv", phones)
    db = tmp_path / "d.db"
    added = run_cli("dnc", "add", phones[2], "--reason", "asked on the phone", "--db", str(db),
                    cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    dnc_file = tmp_path / "suppressed.csv"
    dnc_file.write_text(f"name,phone\nX,{phones[1]}\n", encoding="utf-8")
    result = run_cli("run", str(leads), "--db", str(db), "--json-logs", "--poll", "0.2",
                     "--url", sandbox_server.url, "--from", "+14155550000",
                     "--calling-hours", "00:00-24:00",  # independent of the real hour
                     "--dnc-file", str(dnc_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    dialled = sorted(str(d["to"]) for d in sandbox_server.dials())
    assert dialled == [phones[0], phones[3]]  # what reached the voice server
    rows = _records(db)
    assert (rows["r1"]["status"], rows["r1"]["last_reason"]) == ("skipped", "dnc")
    assert "suppressed.csv" in rows["r1"]["error"]
    assert (rows["r2"]["status"], rows["r2"]["last_reason"]) == ("skipped", "dnc")
    assert "'internal'" in rows["r2"]["error"]
    listing = run_cli("dnc", "list", "--db", str(db), "--json", cwd=tmp_path)
    entries = [json.loads(x) for x in listing.stdout.splitlines()]
    assert [(e["phone"], e["reason"], e["scope"]) for e in entries] == [
        (phones[2], "asked on the phone", "*")]
    report = run_cli("report", "--db", str(db), "--format", "json", cwd=tmp_path)
    lines = [json.loads(x) for x in report.stdout.splitlines() if x.strip()]
    assert {r["id"]: r["decision"] for r in lines} == {"r0": "allow", "r1": "skip",
                                                       "r2": "skip", "r3": "allow"}


def test_real_run_outside_hours_waits_and_status_shows_the_deferral(
        tmp_path: Path, sandbox_server: SandboxServer) -> None:
    now = time.gmtime()
    closed = f"{(now.tm_hour + 12) % 24:02d}:00-{(now.tm_hour + 12) % 24:02d}:30"
    leads = _csv(tmp_path / "l.csv", ["+14155550101", "+14155550102"],
                 extra="timezone=UTC")
    db = tmp_path / "w.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch", "run", str(leads), "--db", str(db), "--json-logs",
         "--poll", "0.2", "--url", sandbox_server.url, "--from", "+14155550000",
         "--calling-hours", closed], cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        scheduled = 0
        while time.monotonic() < deadline and scheduled < 2:
            time.sleep(0.2)
            try:
                scheduled = sum(1 for r in _records(db).values()
                                if r["status"] == "scheduled" and r["decision"] == "defer")
            except sqlite3.OperationalError:
                continue
        assert scheduled == 2
        status = run_cli("status", "--db", str(db), cwd=tmp_path)
        assert "deferred outside_calling_hours" in status.stdout, status.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err[-2000:]
    assert sandbox_server.dials() == []  # nobody dialled outside the window
    assert _attempt_count(db) == 0
    deferred = [json.loads(x) for x in err.splitlines()
                if x.startswith("{") and '"deferred"' in x]
    assert len(deferred) == 2 and all(e["simulated_time"] is False for e in deferred)


def test_check_counts_allowed_deferred_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        "id,phone,state\n"
        "ny1,+12125550101,\n"  # New York: 19:30 local -> allowed
        "ny2,+12125550102,\n"
        "fl,+13055550103,FL\n"  # Florida: 08:00-20:00 -> deferred to 08:00
        "zone,+15550000001,\n"  # no zone for 555 -> unknown_timezone
        "dnc,+12125550104,\n"
        "bad,12,\n", encoding="utf-8")
    dnc = tmp_path / "dnc.txt"
    dnc.write_text("+12125550104\n", encoding="utf-8")
    result = run_cli("check", str(path), "--at", "2026-03-10T20:30:00-04:00",
                     "--dnc-file", str(dnc), "--db", str(tmp_path / "none.db"), "--json-logs",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["dial_now"] == 2 and out["total"] == 6
    assert out["deferred"] == {"deferred outside_calling_hours America/New_York": 1}
    assert out["first_wake"]["deferred outside_calling_hours America/New_York"] == \
        "2026-03-11T12:00:00+00:00"
    assert out["skipped"] == {"skipped unknown_timezone": 1, "skipped dnc": 1,
                              "skipped invalid_phone": 1}
    assert any("state rules FL" in e
               for e in out["examples"]["deferred outside_calling_hours America/New_York"])
    text = run_cli("check", str(path), "--at", "2026-03-10T20:30:00-04:00", "--db",
                   str(tmp_path / "none.db"), cwd=tmp_path)
    assert "dial now: 3" in text.stdout and "skipped unknown_timezone: 1" in text.stdout
    assert not (tmp_path / "none.db").exists()  # check never creates a database
    db = tmp_path / "with-list.db"
    assert run_cli("dnc", "add", "+12125550102", "--db", str(db), cwd=tmp_path).returncode == 0
    listed = run_cli("check", str(path), "--at", "2026-03-10T20:30:00-04:00", "--db", str(db),
                     "--json-logs", cwd=tmp_path)
    out = json.loads(listed.stdout)
    assert out["dial_now"] == 2 and out["skipped"]["skipped dnc"] == 1  # the internal list
    bad = run_cli("check", str(path), "--calling-hours", "21:00-08:00", cwd=tmp_path)
    assert bad.returncode == 2 and "--calling-hours" in bad.stderr



def test_sandbox_time_is_refused_for_a_real_voice_server(tmp_path: Path) -> None:
    leads = _csv(tmp_path / "l.csv", ["+14155550101"])
    for extra, env in ((["--url", "ws://127.0.0.1:9"], cli_env()),
                       ([], cli_env(PINECALL_API_KEY="pk_test_not_used_123"))):
        result = run_cli("run", str(leads), "--db", str(tmp_path / "r.db"), "--from",
                         "+14155550000", "--sandbox-time", "2026-03-10T10:00:00Z", *extra,
                         cwd=tmp_path, env=env)
        assert result.returncode == 2, result.stderr[-2000:]
        assert "--sandbox-time" in result.stderr and "real clock" in result.stderr
        assert "pk_test_not_used_123" not in result.stderr


def test_dnc_commands_manage_the_internal_list(tmp_path: Path) -> None:
    db = str(tmp_path / "n.db")
    imported = tmp_path / "list.txt"
    imported.write_text("# from the CRM\n+1 415 555 0111\n4155550112\nnot a phone\n",
                        encoding="utf-8")
    result = run_cli("dnc", "import", str(imported), "--region", "US", "--db", db,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "line 4" in result.stdout and "added 2 number(s)" in result.stdout
    scoped = run_cli("dnc", "add", "+14155550113", "--campaign", "spring", "--db", db,
                     cwd=tmp_path)
    assert scoped.returncode == 0 and "campaign spring" in scoped.stdout
    again = run_cli("dnc", "add", "+14155550111", "--db", db, cwd=tmp_path)
    assert "already on the list" in again.stdout
    removed = run_cli("dnc", "remove", "+14155550112", "+14155550199", "--db", db,
                      cwd=tmp_path)
    assert "+14155550199: not on the list" in removed.stdout and "removed 1 entry" in \
        removed.stdout
    listing = run_cli("dnc", "list", "--db", db, "--json", cwd=tmp_path)
    entries = [json.loads(x) for x in listing.stdout.splitlines()]
    assert [(e["phone"], e["scope"], e["source"]) for e in entries] == [
        ("+14155550111", "*", "import list.txt"), ("+14155550113", "spring", entries[1]["source"])]
    assert entries[1]["source"].startswith("cli ")
    bad = run_cli("dnc", "add", "call me", "--db", db, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    missing = run_cli("dnc", "list", "--db", str(tmp_path / "none.db"), cwd=tmp_path)
    assert missing.returncode == 2 and not (tmp_path / "none.db").exists()
