"""The shipped examples run end to end on the embedded sandbox."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import cli_env

ROOT = Path(__file__).resolve().parents[1]


def test_appointment_reminders_example_writes_dispositions_back(tmp_path: Path) -> None:
    appointments = tmp_path / "appointments.csv"
    shutil.copy(ROOT / "examples" / "appointments.csv", appointments)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "appointment_reminders.py"), str(appointments)],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with appointments.open(newline="", encoding="utf-8") as fh:
        status = {(r["name"], r["service"]): r["status"] for r in csv.DictReader(fh)}
    assert status[("Maria Lopez", "Eye Exam")] == "confirmed"
    assert status[("Carlos Ruiz", "Physiotherapy")] == "cancelled"
    assert status[("Bernardo Silva", "Eye Exam")] == "reschedule"
    assert status[("Bernardo Silva", "Physiotherapy")] == "reschedule"  # same phone, waited
    assert status[("Tom Becker", "Eye Exam")] == "no_answer"
    assert status[("Lena Park", "Physiotherapy")] == "busy"
    # refuse: the opt-out during the first call suppresses the second appointment's call
    assert status[("Noah Weber", "Dental Cleaning")] == "do_not_call"
    assert status[("Noah Weber", "Eye Exam")] == "dnc"
    assert (appointments.with_suffix(".dnc.txt")).read_text() == "+14155550177\n"
    assert all(status.values()), "every row got an outcome"

    report = subprocess.run(
        [sys.executable, "-m", "dispatch", "report", "--db", str(appointments.with_suffix(".db")),
         "--format", "csv"],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60,
    )
    rows = list(csv.DictReader(report.stdout.splitlines()))
    dispositions = sorted(r["disposition"] for r in rows if r["disposition"])
    assert dispositions.count("confirmed") == 3 and dispositions.count("cancelled") == 2
