"""``dispatch run`` on real CSV files: campaign-wide mistakes exit 2 before any dial.

These run the whole CLI with ``CsvStrategy.preflight()``; the README's main job must
still pass it (``examples/leads.csv`` has one national number among international ones).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from dispatch.strategies import CsvStrategy
from dispatch.strategy import Strategy
from tests.cli.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
FAST = ("--sandbox-speed", "200", "--poll", "0.2", "--concurrency", "6", "--json-logs")

needs_csv_preflight = pytest.mark.skipif(
    CsvStrategy.preflight is Strategy.preflight,
    reason="CsvStrategy.preflight() not implemented in this tree yet",
)


def _attempts(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            (n,) = conn.execute("SELECT count(*) FROM attempts").fetchone()
        except sqlite3.OperationalError:  # never migrated: nothing happened
            return 0
    return int(n)


def _error_line(stderr: str) -> dict[str, object]:
    """The run's one error line (every stderr line is JSON; the error is the last)."""
    events = [json.loads(line) for line in stderr.splitlines()]
    assert events and events[-1]["event"] == "error", stderr[-2000:]
    assert sum(e["event"] == "error" for e in events) == 1
    return events[-1]


def test_the_readme_main_job_finishes(tmp_path: Path) -> None:
    db = tmp_path / "main.db"
    result = run_cli("run", str(ROOT / "examples" / "leads.csv"), "--db", str(db), *FAST,
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["unfinished"] == 0 and summary["counts"]["completed"] > 0
    assert summary["reasons"].get("invalid_phone") == 1  # "555-12": that row alone


@needs_csv_preflight
def test_a_greeting_field_the_file_lacks_is_refused_and_a_fixed_rerun_dials(
    leads: Path, tmp_path: Path
) -> None:
    db = tmp_path / "g.db"
    refused = run_cli("run", str(leads), "--db", str(db), "--greeting", "Hi {first_name}",
                      *FAST, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    event = _error_line(refused.stderr)
    assert event["option"] == "--greeting" and "first_name" in event["message"]
    assert _attempts(db) == 0

    fixed = run_cli("run", str(leads), "--db", str(db), "--greeting", "Hi {name}", *FAST,
                    cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert json.loads(fixed.stdout)["counts"]["completed"] == 4


@needs_csv_preflight
def test_national_numbers_without_region_are_refused_with_the_hint(tmp_path: Path) -> None:
    path = tmp_path / "national.csv"
    path.write_text("name,phone\nA,(415) 555-0101\nB,415 555 0102\nC,+14155550103\n",
                    encoding="utf-8")
    db = tmp_path / "n.db"
    refused = run_cli("run", str(path), "--db", str(db), *FAST, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert _error_line(refused.stderr)["option"] == "--region"
    assert _attempts(db) == 0
    fixed = run_cli("run", str(path), "--db", str(db), "--region", "us", *FAST, cwd=tmp_path)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert json.loads(fixed.stdout)["counts"] == {"completed": 3}


@needs_csv_preflight
@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff\xfe binary", b"name,email\nA,a@x\n"])
def test_an_unusable_file_exits_2_in_one_shot_mode(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = run_cli("run", str(path), "--db", str(tmp_path / "u.db"), *FAST, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "bad.csv" in _error_line(result.stderr)["message"]
