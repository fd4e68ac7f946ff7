"""Report and requeue name a record by (source, id): ``report`` keeps ``id`` the
record id and adds ``source``; ``requeue --id`` matches every source unless
``--source`` narrows it."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import anyio
import pytest

from dispatch.cli.main import main as cli_main
from dispatch.store import Store, insert_record

SOURCES = ("csv:/data/a.csv", "csv:/data/b.csv")


def _two_sources(db: Path) -> None:
    async def build() -> None:
        async with await Store.open(db) as store:
            await store.write_now([
                insert_record(source=source, id="7", phone=f"+1555000000{n}", strategy="csv",
                              status="failed", payload={}, now=1.0, last_reason="busy")
                for n, source in enumerate(SOURCES)])

    anyio.run(build)


def test_report_has_a_source_column_beside_the_record_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    _two_sources(db)
    assert cli_main(["report", "--db", str(db), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["id"], r["source"], r["phone"]) for r in rows] == [
        ("7", SOURCES[0], "+15550000000"), ("7", SOURCES[1], "+15550000001")]
    assert cli_main(["report", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert "source" in table and "b.csv" in table  # two sources: the table shows them


def test_requeue_by_id_in_one_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    _two_sources(db)
    assert cli_main(["requeue", "--db", str(db), "--id", "7", "--source", SOURCES[1]]) == 0
    assert "requeued 1 record(s)" in capsys.readouterr().out
    with sqlite3.connect(db) as conn:
        assert sorted(conn.execute("SELECT source, status FROM records")) == [
            (SOURCES[0], "failed"), (SOURCES[1], "pending")]
        (audit,) = conn.execute("SELECT filter FROM requeues").fetchone()
    assert SOURCES[1] in audit
    assert cli_main(["requeue", "--db", str(db), "--id", "7"]) == 0  # every source
    assert "requeued 1 record(s)" in capsys.readouterr().out  # the other one is pending now
