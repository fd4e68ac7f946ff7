"""``dispatch run --cps N``: the per-second cap reaches the hub and holds."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.cli.conftest import run_cli


def test_cps_paces_the_run_and_is_recorded(leads: Path, workdir: Path) -> None:
    db = workdir / "cps.db"
    result = run_cli("run", str(leads), "--db", str(db), "--cps", "2", "--sandbox-speed", "200",
                     "--poll", "0.2", "--concurrency", "10", cwd=workdir)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(db) as conn:
        config = json.loads(conn.execute("SELECT config FROM runs").fetchone()[0])
        starts = sorted(r[0] for r in conn.execute(
            "SELECT dialed_at FROM attempts WHERE dialed_at IS NOT NULL"))
    assert config["max_calls_per_second"] == 2
    assert len(starts) >= 5  # enough dials to need three seconds
    assert max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts) == 2


def test_cps_zero_is_a_usage_error(leads: Path, workdir: Path) -> None:
    result = run_cli("run", str(leads), "--cps", "0", cwd=workdir)
    assert result.returncode == 2
    assert "--cps" in result.stderr
