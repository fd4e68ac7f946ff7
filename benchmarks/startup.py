"""Hub start-up time against the number of finished records in the store.

Builds two SQLite stores at this release's schema -- one empty, one with N finished
records (``completed``, one ended attempt each, an hour old), written with one
``executemany`` per table -- plus one pending record in each, then times (best of
``--repeat``, each in a fresh hub on a freshly opened store):

* start-up: ``DispatchHub.run()`` until the strategy's first ``poll()`` (open and
  migration check, run row, resume: counts, active records, live attempts, the last
  minute's dial starts, source probes);
* the whole run: start-up, that poll, the pending record's dial and idle stop;
* the CPU time of start-up, and of ``Store.counts()`` alone (the one read whose
  cost used to grow with N: now the counters of migration 0008);
* for comparison, what start-up used to do: ``SELECT id FROM records`` into a set
  (every finished id loaded before the first dial);
* the price moved to the poll: a source that returns all N ids again after the
  restart (a re-read CSV, batches of 5,000) has them looked up with
  ``Store.existing_keys`` (chunked indexed ``IN`` queries).

Target: start-up flat in N. Usage: ``python benchmarks/startup.py [--records N]``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from dispatch.clock import SystemClock
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.store import Store
from dispatch.testing import Answer, MemoryDialer, MemoryStrategy

SOURCE = "memory"
_AN_HOUR_AGO_S = 3600.0


async def build(path: Path, finished: int) -> None:
    """A store at head with ``finished`` completed records and one pending one."""
    await (await Store.open(path)).close()  # migrations
    now = time.time()
    old = now - _AN_HOUR_AGO_S
    payload = json.dumps(Record(id="x", phone="+15550000000").payload())
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO records (pk, source, id, phone, strategy, status, attempts,"
            " last_reason, payload, seq, requeue_count, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, 'completed', 1, 'hangup', ?, ?, 0, ?, ?)",
            ((i + 1, SOURCE, f"done{i}", f"+1555{i % 10_000_000:07d}", SOURCE, payload,
              i + 1, old, old) for i in range(finished)))
        conn.executemany(
            "INSERT INTO attempts (record_pk, attempt_no, requeue_round, phone, claimed_at,"
            " dialed_at, ended_at, reason) VALUES (?, 1, 0, ?, ?, ?, ?, 'hangup')",
            ((i + 1, f"+1555{i % 10_000_000:07d}", old, old, old + 30) for i in range(finished)))
        conn.execute(
            "INSERT INTO records (source, id, phone, strategy, status, attempts, payload, seq,"
            " requeue_count, created_at, updated_at) VALUES (?, 'left', '+15559000001', ?,"
            " 'pending', 0, ?, ?, 0, ?, ?)", (SOURCE, SOURCE, payload, finished + 1, now, now))


class Timed(MemoryStrategy):
    """Notes the wall and CPU time of its first poll."""

    first_poll_at: float | None = None
    first_poll_cpu: float = 0.0

    async def poll(self) -> Any:
        if self.first_poll_at is None:
            self.first_poll_at = time.perf_counter()
            self.first_poll_cpu = time.process_time()
        return await super().poll()


async def one_start(path: Path) -> tuple[float, float, float]:
    """``(start-up s, whole run s, start-up CPU s)`` of a fresh hub on ``path``."""
    clock = SystemClock()
    strategy = Timed([])
    dialer = MemoryDialer(clock, default=Answer(0.0))
    began, cpu0 = time.perf_counter(), time.process_time()
    hub = DispatchHub(dialer, [strategy], db=path, clock=clock, poll_interval_s=0.05)
    await hub.run(until_idle=True)
    ended = time.perf_counter()
    assert strategy.first_poll_at is not None
    return strategy.first_poll_at - began, ended - began, strategy.first_poll_cpu - cpu0


async def counts_s(path: Path, repeat: int) -> float:
    """CPU seconds of ``Store.counts()`` (best of ``repeat``): what start-up reads to
    show counts by status (from the counters the database keeps, else a GROUP BY)."""
    best = float("inf")
    async with await Store.open(path, read_only=True) as store:
        for _ in range(repeat):
            began = time.process_time()
            await store.counts()
            best = min(best, time.process_time() - began)
    return best


def old_id_load_s(path: Path) -> float:
    began = time.perf_counter()
    with sqlite3.connect(path) as conn:
        ids = {row[0] for row in conn.execute("SELECT id FROM records")}
    assert ids
    return time.perf_counter() - began


async def measure(finished: int, repeat: int, tmp: Path) -> dict[str, float]:
    path = tmp / f"store_{finished}.db"
    began = time.perf_counter()
    await build(path, finished)
    build_s = time.perf_counter() - began
    starts, runs, cpus = [], [], []
    for _ in range(repeat):
        with sqlite3.connect(path) as conn:  # the same pending record for every start
            conn.execute("UPDATE records SET status = 'pending', attempts = 0"
                         " WHERE id = 'left'")
            conn.execute("DELETE FROM attempts WHERE record_pk ="
                         " (SELECT pk FROM records WHERE id = 'left')")
        start_s, run_s, cpu_s = await one_start(path)
        starts.append(start_s)
        runs.append(run_s)
        cpus.append(cpu_s)
    return {"build_s": build_s, "startup_s": min(starts), "run_s": min(runs),
            "startup_cpu_s": min(cpus), "counts_s": await counts_s(path, repeat),
            "old_id_load_s": old_id_load_s(path), "recheck_s": await recheck_s(path, finished)}


async def recheck_s(path: Path, finished: int, batch: int = 5000) -> float:
    ids = [f"done{i}" for i in range(finished)]
    async with await Store.open(path, read_only=True) as store:
        began = time.perf_counter()
        found = 0
        for start in range(0, len(ids), batch):
            found += len(await store.existing_keys([SOURCE], ids[start:start + batch]))
        elapsed = time.perf_counter() - began
    assert found == finished
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = {n: await measure(n, args.repeat, Path(tmp)) for n in (0, args.records)}
    print(f"{'finished records':>17} {'start-up ms':>12} {'start-up CPU ms':>16} "
          f"{'counts CPU ms':>14} {'whole run ms':>13} {'old id load ms':>15} "
          f"{'re-check all ids s':>19} {'store built s':>14}")
    for n, r in rows.items():
        print(f"{n:>17,} {r['startup_s'] * 1e3:>12.1f} {r['startup_cpu_s'] * 1e3:>16.1f} "
              f"{r['counts_s'] * 1e3:>14.2f} {r['run_s'] * 1e3:>13.1f} "
              f"{r['old_id_load_s'] * 1e3:>15.1f} {r['recheck_s']:>19.2f} {r['build_s']:>14.1f}")
    for key, what in (("startup_s", "start-up"), ("startup_cpu_s", "start-up CPU")):
        ratio = rows[args.records][key] / max(rows[0][key], 1e-9)
        print(f"{what} with {args.records:,} finished records / with none: {ratio:.2f}x")
    print("(wall times are noisy on a shared machine; the CPU columns are the figures)")


if __name__ == "__main__":
    anyio.run(main)
