"""As a library, dispatch never prints and never reconfigures the host's logging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HOST_APP = Path(__file__).with_name("host_app.py")


def test_a_library_campaign_writes_nothing_to_stdout_and_logs_through_stdlib(tmp_path: Path):
    out = tmp_path / "out.json"
    env = {k: v for k, v in os.environ.items() if k != "PINECALL_API_KEY"}
    proc = subprocess.run(
        [sys.executable, str(HOST_APP), str(out), str(tmp_path / "host.db")],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == ""
    result = json.loads(out.read_text())
    assert result["after"] == result["before"]  # the host's handlers and level
    assert result["structlog_configured"] is False
    lines = result["lines"]
    skipped = [(name, level, text) for name, level, text in lines if "record skipped" in text]
    assert skipped and skipped[0][:2] == ("dispatch.hub", "WARNING")
    assert "record_id='bad'" in skipped[0][2] and "invalid_phone" in skipped[0][2]
    ours = {name for name, _, text in lines if "component=" in text or name.startswith("dispatch")}
    assert "dispatch.hub" in ours and all(name.startswith("dispatch.") for name in ours)
