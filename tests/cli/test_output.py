"""What ``dispatch run`` writes to stderr and stdout (not a terminal)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rich.console import Console

from dispatch.cli.output import Output
from tests.cli.conftest import run_cli

FAST = ("--sandbox-speed", "200", "--poll", "0.2", "--concurrency", "4")


def test_json_logs_is_one_json_object_per_stderr_line_and_a_json_summary(
    leads: Path, workdir: Path
) -> None:
    db = workdir / "j.db"
    # the greeting field is empty for no row, the phone of one row is invalid: a warning
    result = run_cli("run", str(leads), "--db", str(db), "--json-logs",
                     "--greeting", "Hi {name}", *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    names = {e["event"] for e in events}
    assert {"sandbox mode", "completed", "record skipped"} <= names, names
    banner = next(e for e in events if e["event"] == "sandbox mode")
    assert "SANDBOX MODE" in banner["message"]

    summary = json.loads(result.stdout)  # stdout is exactly one JSON object
    assert summary["counts"] == {"completed": 4, "failed": 3, "skipped": 1}
    assert summary["reasons"] == {"busy": 1, "failed": 1, "hangup": 4, "invalid_phone": 1,
                                  "no_answer": 1}
    assert summary["db"] == str(db) and summary["file"] == str(leads)
    assert summary["duration_s"] > 0 and summary["exit_code"] == 0


def test_json_logs_error_is_a_json_line(workdir: Path) -> None:
    path = workdir / "a.csv"
    path.write_text("name,phone\nA,+14155550101\n", encoding="utf-8")
    result = run_cli("run", str(path), "--url", "ws://127.0.0.1:9", "--json-logs",
                     "--db", str(workdir / "e.db"), cwd=workdir)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    event = json.loads(line)
    assert event["level"] == "error" and event["option"] == "--from"
    assert result.stdout == ""


def test_without_json_logs_the_summary_table_is_on_stdout_and_logs_on_stderr(
    leads: Path, workdir: Path
) -> None:
    result = run_cli("run", str(leads), "--db", str(workdir / "t.db"), *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Campaign summary" in result.stdout and "Campaign summary" not in result.stderr
    assert re.search(r"│ completed\s+│\s+4 │", result.stdout), result.stdout
    lines = result.stderr.splitlines()
    assert any("SANDBOX MODE" in line for line in lines)
    assert any(re.search(r"\[info\s*\] completed .*reason=hangup", line) for line in lines)
    assert not any(line.startswith("{") for line in lines)


def test_json_logs_usage_error_is_a_json_line_naming_the_option(workdir: Path) -> None:
    result = run_cli("run", "x.csv", "--json-logs", "--region", "XX", cwd=workdir)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    event = json.loads(line)
    assert event["option"] == "--region" and "'XX'" in event["message"]


def test_a_terminal_notice_is_plain_text_not_markup() -> None:
    console = Console(record=True, width=200)
    Output(json_logs=False, interactive=True, console=console).notice(
        "source unusable", "no phone column; found [name, email] [/b] {first_name}")
    assert console.export_text().strip() == "no phone column; found [name, email] [/b] {first_name}"
