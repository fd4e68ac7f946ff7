"""Process-wide settings for a process whose main job is dispatching.

The hub keeps many small objects alive per live call (tasks, frames, futures, the
call's state). With CPython's default collector settings a busy campaign spends a
fifth of its CPU in the cyclic garbage collector, most of it re-scanning objects
created at start-up (modules, the SQLAlchemy and pydantic machinery) that will never
be garbage. :func:`tune_gc` moves those objects out of the collector's view and makes
young-generation collections less frequent. Freed memory and reference counting are
unaffected; only cycles are found a little later.

``python -m dispatch run``, ``serve`` and ``sandbox`` call it once their start-up is
done. A library user who owns the process may call it too (after imports and set-up);
the hub never calls it on its own, since the collector's settings belong to the
application.
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_gc"]

#: allocations between young-generation collections (CPython's default is 700)
GEN0_THRESHOLD = 50_000


_tuned = False


def tune_gc(gen0_threshold: int = GEN0_THRESHOLD) -> None:
    """Collect once, freeze what survives (start-up objects are never scanned again),
    and raise the young generation's threshold. Once per process: later calls (a
    second campaign in the same process) change nothing."""
    global _tuned
    if _tuned:
        return
    _tuned = True
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0_threshold, gen0), gen1, gen2)
