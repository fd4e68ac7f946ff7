"""``dispatch run --sql URL --table T`` end to end against the embedded sandbox."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.cli.conftest import cli_env, run_cli

FAST = ("--sandbox-speed", "200", "--poll", "0.2", "--concurrency", "4", "--json-logs")


def _app_db(path: Path) -> Path:
    db = path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.executescript("""
            CREATE TABLE leads (id INTEGER PRIMARY KEY, phone TEXT, name TEXT,
                                status TEXT, reason TEXT, outcome_at TEXT);
            INSERT INTO leads (id, phone, name) VALUES
              (1, '+14155550101', 'Maria'), (2, '+14155550102', 'Carlos'),
              (3, NULL, 'No Phone'), (4, '+14155550104', 'Tom');
            UPDATE leads SET status = 'completed', reason = 'earlier' WHERE id = 4;
        """)
    return db


def test_run_from_a_sqlite_table_writes_outcomes_back(tmp_path: Path) -> None:
    app = _app_db(tmp_path)
    result = run_cli("run", "--sql", f"sqlite+aiosqlite:///{app}", "--table", "leads",
                     "--greeting", "Hi {name}", "--sql-writeback",
                     "status,reason,updated_at=outcome_at", "--db", str(tmp_path / "d.db"),
                     *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["counts"] == {"completed": 2, "skipped": 1}
    assert summary["file"].startswith("sql:sqlite+aiosqlite:///") and "#leads" in summary["file"]
    with sqlite3.connect(app) as conn:
        rows = conn.execute("SELECT id, status, reason, outcome_at FROM leads ORDER BY id")
        got = {r[0]: r[1:] for r in rows}
    assert got[1][:2] == ("completed", "hangup") and got[1][2]
    assert got[3][:2] == ("skipped", "invalid_record")
    assert got[4] == ("completed", "earlier", None), "a row with a status is left alone"
    with sqlite3.connect(tmp_path / "d.db") as conn:
        campaigns = [r[0] for r in conn.execute("SELECT * FROM campaigns")]
    assert campaigns == ["leads"], "the campaign is named after the table"


def test_sql_option_mistakes_are_one_line_exit_2(tmp_path: Path) -> None:
    app = _app_db(tmp_path)
    url = f"sqlite+aiosqlite:///{app}"
    cases = [
        (("--sql", url), "--table"),
        (("--sql", url, "--table", "leads", "--sql-query", "SELECT 1"), "--table"),
        (("--sql", url, "--table", "nowhere"), "nowhere"),
        (("--sql", url, "--table", "leads", "--sql-writeback", "status=missing_col"),
         "missing_col"),
        (("--sql", "env:DISPATCH_TEST_NO_SUCH_VAR", "--table", "leads"),
         "DISPATCH_TEST_NO_SUCH_VAR"),
    ]
    for args, needle in cases:
        result = run_cli("run", *args, "--db", str(tmp_path / "d.db"), cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert needle in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_password_from_env_is_never_printed(tmp_path: Path) -> None:
    secret = "Pa55-in-env-only"
    env = cli_env(DISPATCH_TEST_SQL_URL=f"postgresql+asyncpg://nobody:{secret}@127.0.0.1:1/x")
    result = run_cli("run", "--sql", "env:DISPATCH_TEST_SQL_URL", "--table", "leads",
                     "--db", str(tmp_path / "d.db"), "--json-logs", cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "cannot connect to postgresql+asyncpg://nobody:***@127.0.0.1:1/x" in result.stderr
    assert secret not in result.stderr + result.stdout
