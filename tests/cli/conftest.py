from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

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


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Tests that run the CLI in this process must not leave its logging set up (the
    next test's output would go to a closed capture stream)."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    logging.captureWarnings(False)


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


@dataclasses.dataclass
class SandboxServer:
    """A ``dispatch sandbox`` process on a loopback port, with its dial log."""

    url: str
    dial_log: Path

    def dials(self) -> list[dict[str, object]]:
        """The ``dial`` lines the server wrote (what actually reached it)."""
        if not self.dial_log.exists():
            return []
        lines = [json.loads(x) for x in self.dial_log.read_text().splitlines() if x]
        return [x for x in lines if x.get("event") == "dial"]


@pytest.fixture
def sandbox_server(tmp_path: Path) -> Iterator[SandboxServer]:
    dial_log = tmp_path / "sandbox-dials.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dispatch", "sandbox", "--port", "0", "--speed", "200",
         "--dial-log", str(dial_log)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().split()[-1]
        assert url.startswith("ws://127.0.0.1:"), line
        yield SandboxServer(url=url, dial_log=dial_log)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
