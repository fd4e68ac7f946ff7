"""``dispatch requeue``: finished records back to pending, audited, under the run lock."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import anyio
import pytest

from dispatch.cli.main import main as cli_main
from dispatch.records import Record
from dispatch.store import RunLock, Store, insert_record
from dispatch.testing import Answer, FakeClock, MemoryDialer
from tests.cli.campaign import run_campaign

RECS = [Record(id="ok", phone="+15550000001"), Record(id="retry", phone="+15550000002"),
        Record(id="gone", phone="+15550000003")]


def _first_run(db: Path) -> None:
    clock = FakeClock()
    dialer = MemoryDialer(clock, script={"+15550000002": ["busy", "busy"],
                                         "+15550000003": ["no-answer", "no-answer"]},
                          default=Answer(5))
    anyio.run(lambda: run_campaign(db, RECS, dialer=dialer, clock=clock))


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


def test_a_requeued_record_is_dialled_again_with_a_fresh_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "q.db"
    _first_run(db)
    assert _rows(db, "SELECT id, status, attempts FROM records ORDER BY seq") == [
        ("ok", "completed", 1), ("retry", "failed", 2), ("gone", "failed", 2)]
    assert cli_main(["requeue", "--db", str(db), "--status", "failed", "--reason", "busy"]) == 0
    out = capsys.readouterr().out
    assert "requeued 1 record(s)" in out and "failed/busy: 1" in out and "retry" in out
    # the second run: two dials again for "retry" (its retry budget starts afresh),
    # none for the completed record nor for the failed record that was not requeued
    clock = FakeClock()
    dialer = MemoryDialer(clock, script={"+15550000002": ["busy", Answer(7)]},
                          default=Answer(5))
    anyio.run(lambda: run_campaign(db, RECS, dialer=dialer, clock=clock))
    assert [d.to for d in dialer.dials] == ["+15550000002", "+15550000002"]
    assert _rows(db, "SELECT id, status, attempts, requeue_count FROM records ORDER BY seq") == [
        ("ok", "completed", 1, 0), ("retry", "completed", 2, 1), ("gone", "failed", 2, 0)]
    history = _rows(db, "SELECT requeue_round, attempt_no, reason FROM attempts a JOIN records"
                        " r ON r.pk = a.record_pk WHERE r.id = 'retry' ORDER BY a.id")
    assert history == [(0, 1, "busy"), (0, 2, "busy"), (1, 1, "busy"), (1, 2, "hangup")]
    (audit,) = _rows(db, "SELECT user, pid, filter, count FROM requeues")
    assert str(audit[0]).endswith("@" + os.uname().nodename) and audit[1] == os.getpid()
    assert '"busy"' in str(audit[2]) and audit[3] == 1
    assert _rows(db, "SELECT r.id, prev_status, prev_reason, prev_attempts FROM requeue_items"
                     " i JOIN records r ON r.pk = i.record_pk") == [("retry", "failed", "busy", 2)]


def test_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "d.db"
    _first_run(db)
    before = _rows(db, "SELECT * FROM records ORDER BY seq")
    assert cli_main(["requeue", "--db", str(db), "--all", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would requeue 3 record(s)" in out
    assert "completed/hangup: 1" in out and "failed/busy: 1" in out and "failed/no_answer: 1" in out
    assert _rows(db, "SELECT * FROM records ORDER BY seq") == before
    assert _rows(db, "SELECT COUNT(*) FROM requeues") == [(0,)]


def test_live_records_are_never_touched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "l.db"

    async def seed() -> None:
        async with await Store.open(db) as store:
            await store.write_now([
                insert_record(id=rid, phone="+15550000001", strategy="s", status=status,
                              payload={}, now=1.0)
                for rid, status in [("p", "pending"), ("dl", "dialing"), ("ic", "in_call"),
                                    ("s", "scheduled"), ("f", "failed")]
            ])

    anyio.run(seed)
    assert cli_main(["requeue", "--db", str(db), "--all"]) == 0
    assert "requeued 1 record(s)" in capsys.readouterr().out
    assert dict(_rows(db, "SELECT id, status FROM records")) == {
        "p": "pending", "dl": "dialing", "ic": "in_call", "s": "scheduled", "f": "pending"}
    assert cli_main(["requeue", "--db", str(db), "--id", "dl", "ic"]) == 0
    assert "no finished record matches" in capsys.readouterr().out


def test_refused_while_a_campaign_holds_the_run_lock(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "k.db"
    _first_run(db)
    holder = RunLock(f"sqlite+aiosqlite:///{db}")
    holder.acquire()
    try:
        assert cli_main(["requeue", "--db", str(db), "--status", "failed"]) == 2
    finally:
        holder.release()
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"pid {os.getpid()}" in err
    assert _rows(db, "SELECT COUNT(*) FROM records WHERE status = 'pending'") == [(0,)]
    assert cli_main(["requeue", "--db", str(db), "--status", "failed"]) == 0  # free again


@pytest.mark.parametrize(
    ("args", "needle"),
    [([], "at least one filter"),
     (["--status", "pending"], "--status 'pending'"),
     (["--reason", "bsy"], "--reason 'bsy'"),
     (["--all", "--id", "x"], "--all")],
)
def test_bad_filters_get_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    db = tmp_path / "b.db"
    _first_run(db)
    assert cli_main(["requeue", "--db", str(db), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err, err
