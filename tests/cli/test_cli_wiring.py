"""Small CLI wiring: unknown arguments are one line; crash recovery on the embedded sandbox."""

from __future__ import annotations

import argparse
import subprocess
import sys

from dispatch.cli import backend


def test_an_unknown_argument_is_one_line_and_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "dispatch", "run", "x.csv", "--bogus"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "dispatch: error: unrecognized arguments: --bogus (see dispatch --help)"]


def _args(**overrides: object) -> argparse.Namespace:
    values: dict[str, object] = {"retry_delay": None, "retries": 2}
    values.update(overrides)
    return argparse.Namespace(**values)


def test_the_embedded_sandbox_retries_attempts_a_restart_cannot_find() -> None:
    # the embedded sandbox died with the crashed process, and its calls with it: an
    # attempt the new sandbox does not know is retried, not closed as `unknown`
    policy = backend._retry_policy(_args(), embedded=True)
    assert policy is not None and policy.retry_unknown and policy.max_attempts >= 3
    # a real voice server keeps calls alive across our crash: never guess there
    assert backend._retry_policy(_args(), embedded=False) is None
    remote = backend._retry_policy(_args(retry_delay=30.0), embedded=False)
    assert remote is not None and not remote.retry_unknown
