"""``dispatch db``: refuses non-databases, newer schemas and running campaigns, in one
line with exit 2; the same one line for every command on a newer schema."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from dispatch.cli.main import main as cli_main
from dispatch.store import RunLock
from tests.cli.conftest import run_cli


def _one_line(err: str, needle: str) -> None:
    assert len(err.strip().splitlines()) == 1, err
    assert needle in err and "Traceback" not in err, err


def test_upgrade_refuses_to_turn_a_csv_into_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "file.csv"
    csv.write_text("name,phone\nMaria,+14155550101\n", encoding="utf-8")
    assert cli_main(["db", "upgrade", "--db", str(csv)]) == 2
    _one_line(capsys.readouterr().err, "not a SQLite database")
    assert csv.read_text(encoding="utf-8") == "name,phone\nMaria,+14155550101\n"
    empty = tmp_path / "new.db"
    empty.touch()
    assert cli_main(["db", "upgrade", "--db", str(empty)]) == 0  # empty: may be created
    assert "at revision 0009" in capsys.readouterr().out


def test_upgrade_refuses_while_a_campaign_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "busy.db"
    assert cli_main(["db", "upgrade", "--db", str(db)]) == 0
    capsys.readouterr()
    holder = RunLock(f"sqlite+aiosqlite:///{db}")
    holder.acquire()
    try:
        assert cli_main(["db", "upgrade", "--db", str(db)]) == 2
    finally:
        holder.release()
    _one_line(capsys.readouterr().err, f"pid {os.getpid()}")


@pytest.fixture
def newer_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    db = tmp_path / "newer.db"
    assert cli_main(["db", "upgrade", "--db", str(db)]) == 0
    capsys.readouterr()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00dcafe'")
    return db


@pytest.mark.parametrize("command", [["db", "upgrade"], ["report"], ["status"],
                                     ["requeue", "--all"]])
def test_a_newer_schema_gives_one_line_for_every_command(
    newer_db: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert cli_main([*command, "--db", str(newer_db)]) == 2
    _one_line(capsys.readouterr().err, "written by a newer dispatch (schema f00dcafe)")


def test_run_on_a_newer_schema_gives_one_line(newer_db: Path, leads: Path) -> None:
    result = run_cli("run", str(leads), "--db", str(newer_db), cwd=newer_db.parent,
                     timeout_s=60)
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr, "written by a newer dispatch (schema f00dcafe); upgrade dispatch")
