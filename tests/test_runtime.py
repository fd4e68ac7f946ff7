"""dispatch.runtime.tune_gc, in a fresh interpreter (it changes process-wide state)."""

from __future__ import annotations

import json
import subprocess
import sys

_SCRIPT = """
import gc, json
from dispatch.runtime import GEN0_THRESHOLD, tune_gc
before = {"frozen": gc.get_freeze_count(), "gen0": gc.get_threshold()[0]}
tune_gc()
first = {"frozen": gc.get_freeze_count(), "gen0": gc.get_threshold()[0]}
keep = [[i] for i in range(1000)]  # new objects after the first call
tune_gc()
second = {"frozen": gc.get_freeze_count(), "gen0": gc.get_threshold()[0]}
print(json.dumps({"before": before, "first": first, "second": second,
                  "threshold": GEN0_THRESHOLD}))
"""


def test_tune_gc_freezes_start_up_objects_once_and_raises_gen0_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    seen = json.loads(out)
    assert seen["before"]["frozen"] == 0
    assert seen["before"]["gen0"] < seen["threshold"]
    assert seen["first"]["frozen"] > 1000  # the modules, classes and functions loaded
    assert seen["first"]["gen0"] == seen["threshold"]
    assert seen["second"] == seen["first"]  # once per process: the new lists stay scanned
