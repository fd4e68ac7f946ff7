from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

LEADS = """name,phone,service,date,status
Maria,+14155550101,Eye Exam,June 12,
Carlos,+14155550102,Physio,June 15,
Bernardo,+14155550103,Eye Exam,June 16,
Bernardo,+14155550103,Physio,June 17,
Tom,+14155550161,Eye Exam,June 18,
Lena,+14155550175,Physio,June 19,
Omar,+14155550186,Derm,June 20,
Maria,+14155550101,Eye Exam,June 12,
Priya,555-12,Dental,June 21,
Daniel,+14155550114,Eye Exam,June 22,confirmed
"""


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PINECALL_API_KEY"}
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dispatch", *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def leads(tmp_path: Path) -> Path:
    path = tmp_path / "leads.csv"
    path.write_text(LEADS, encoding="utf-8")
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
