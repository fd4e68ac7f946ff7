"""CsvStrategy ingest benchmark on a generated 1,000,000-row CSV.

Figures (targets from the issue):

* polars alone: ``pl.read_csv(path, infer_schema=False)`` (every column as text,
  what the strategy needs), best of N;
* full load: construction + first ``poll()`` with ``batch_size=1`` -- the whole
  file parsed and blank/status/handled rows filtered, ready to hand out, one Record
  built -- best of N; ratio to polars alone (target <= 1.5). Row keys and persisted
  ids are computed per batch as rows are handed out, so they are in the drain;
* drain: building all 1,000,000 Records (row keys, persisted blake2b ids, phone
  normalisation by ``Record``) in ``batch_size=5000`` polls -- reported separately;
* unchanged re-poll (target <= 10 ms), 1,000 appended rows picked up at the next
  poll (time of that poll), peak RSS of a process doing load + drain + re-polls +
  append (target <= 500 MB), each measured in a fresh subprocess;
* the forgiving fallback: the same file with one invalid UTF-8 byte in its middle
  row (polars refuses it, so the whole file is read row by row with the ``csv``
  module, and that one row becomes a skipped record): full-load time, best of N,
  and its ratio to the fast load.

Usage: ``python benchmarks/csv_ingest.py [--rows N] [--repeat N]``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # a script run: make ``strategies`` importable
    sys.path.insert(0, str(_ROOT))

_NAMES = ["Maria", "Carlos", "Bernardo", "Ana", "John", "Li Wei", "Ömer", "Zoë"]
_SERVICES = ["Eye Exam", "Physiotherapy", "Dental, cleaning", "Check-up"]


def _row(i: int, rng: random.Random) -> list[str]:
    return [
        f"{rng.choice(_NAMES)} {i}",
        f"+1415{i % 10_000_000:07d}",
        rng.choice(_SERVICES),
        f"2026-06-{1 + i % 28:02d}",
        "10:00 AM",
        f"user{i}@example.com",
        "" if i % 3 else 'call after 5pm, ask for "Dr. G"',
    ]


def generate(path: Path, rows: int, start: int = 0, header: bool = True) -> None:
    """Write ``rows`` realistic rows (quoted commas and quotes in some fields)."""
    rng = random.Random(start)
    with open(path, "a" if not header else "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        if header:
            writer.writerow(["name", "phone", "service", "date", "time", "email", "notes"])
        writer.writerows(_row(i, rng) for i in range(start, start + rows))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def _timing_child(path: Path, repeat: int) -> dict[str, Any]:
    import polars as pl

    from dispatch.strategies import CsvStrategy

    polars_s, load_s = [], []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        frame = pl.read_csv(path, infer_schema=False)
        polars_s.append(time.perf_counter() - t0)
        del frame
        gc.collect()
        t0 = time.perf_counter()
        strategy = CsvStrategy(path, greeting="Hi {name}", batch_size=1)
        await strategy.poll()
        load_s.append(time.perf_counter() - t0)
        del strategy
    return {"polars_s": polars_s, "load_s": load_s}


async def _full_child(path: Path, rows: int) -> dict[str, Any]:
    from dispatch.strategies import CsvStrategy

    t0 = time.perf_counter()
    strategy = CsvStrategy(path, greeting="Hi {name}", batch_size=5000)
    count = len(await strategy.poll())
    first_poll_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    while strategy.has_more:
        count += len(await strategy.poll())
    drain_s = time.perf_counter() - t1
    # let the event loop finish the last draining poll's tail work (thread hand-back,
    # freeing its batch) so that it is not charged to the first unchanged re-poll
    await anyio.sleep(0.05)
    gc.collect()
    repoll_s = []
    for _ in range(200):
        t = time.perf_counter()
        assert await strategy.poll() == []
        repoll_s.append(time.perf_counter() - t)
    generate(path, 1000, start=rows, header=False)
    t = time.perf_counter()
    appended = len(await strategy.poll())
    append_s = time.perf_counter() - t
    return {
        "records": count,
        "first_poll_s": first_poll_s,
        "drain_s": drain_s,
        "repoll_median_s": statistics.median(repoll_s),
        "repoll_max_s": max(repoll_s),
        "repoll_p99_s": sorted(repoll_s)[int(len(repoll_s) * 0.99) - 1],
        "appended_records": appended,
        "append_poll_s": append_s,
        "stats": str(strategy.statistics()),
        "peak_rss_mb": _peak_rss_mb(),
    }


async def _fallback_child(path: Path, repeat: int) -> dict[str, Any]:
    from dispatch.strategies import CsvStrategy

    load_s, stats = [], ""
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        strategy = CsvStrategy(path, greeting="Hi {name}", batch_size=1)
        await strategy.poll()
        load_s.append(time.perf_counter() - t0)
        stats = str(strategy.statistics())
        del strategy
    return {"load_s": load_s, "stats": stats, "peak_rss_mb": _peak_rss_mb()}


def _corrupt_middle_row(path: Path, out: Path) -> None:
    data = path.read_bytes()
    middle = data.index(b"\n", len(data) // 2) + 1
    out.write_bytes(data[:middle] + b"\xff" + data[middle:])


def _polars_rss_child(path: Path) -> dict[str, Any]:
    import polars as pl

    pl.read_csv(path, infer_schema=False)
    return {"peak_rss_mb": _peak_rss_mb()}


def _run_child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _child(kind: str, path: Path, number: int) -> None:
    if kind == "timing":
        result = anyio.run(_timing_child, path, number)
    elif kind == "full":
        result = anyio.run(_full_child, path, number)
    elif kind == "fallback":
        result = anyio.run(_fallback_child, path, number)
    else:
        result = _polars_rss_child(path)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path, number = args.child
        _child(kind, Path(path), int(number))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "leads.csv"
        t0 = time.perf_counter()
        generate(path, args.rows)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows, {size_mb:.1f} MB in {time.perf_counter() - t0:.1f} s")
        timing = _run_child("timing", str(path), str(args.repeat))
        polars_s, load_s = min(timing["polars_s"]), min(timing["load_s"])
        print(f"polars alone read (best of {args.repeat}):   {polars_s * 1000:8.1f} ms")
        print(f"CsvStrategy full load (best of {args.repeat}): {load_s * 1000:8.1f} ms")
        print(f"ratio load / polars:              {load_s / polars_s:8.2f}   (target <= 1.5)")
        print(
            f"  (medians: polars {statistics.median(timing['polars_s']) * 1000:.1f} ms, "
            f"load {statistics.median(timing['load_s']) * 1000:.1f} ms)"
        )
        full = _run_child("full", str(path), str(args.rows))
        base = _run_child("polars", str(path), "0")
        print(f"first poll (load + 5000 Records):  {full['first_poll_s'] * 1000:8.1f} ms")
        print(f"drain {full['records']:,} records:           {full['drain_s']:8.1f} s")
        print(
            f"unchanged re-poll median/p99/max: {full['repoll_median_s'] * 1000:8.3f} / "
            f"{full['repoll_p99_s'] * 1000:.3f} / {full['repoll_max_s'] * 1000:.3f} ms"
            "   (target <= 10 ms)"
        )
        print(
            f"1,000 appended rows -> {full['appended_records']} records at the next poll, "
            f"{full['append_poll_s'] * 1000:.1f} ms"
        )
        print(f"peak RSS load+drain+append:        {full['peak_rss_mb']:8.1f} MB   (target <= 500)")
        print(f"peak RSS polars alone (reference): {base['peak_rss_mb']:8.1f} MB")
        print(f"statistics: {full['stats']}")
        bad = Path(tmp) / "bad.csv"
        _corrupt_middle_row(path, bad)
        fallback = _run_child("fallback", str(bad), str(max(1, args.repeat // 2)))
        fallback_s = min(fallback["load_s"])
        print(f"fallback full load, 1 invalid byte mid-file: {fallback_s * 1000:8.1f} ms"
              f"   ({fallback_s / load_s:.1f}x the fast load, "
              f"{(fallback_s - load_s) / args.rows * 1e6:.2f} us more per row)")
        print(f"  peak RSS {fallback['peak_rss_mb']:.1f} MB; statistics: {fallback['stats']}")


if __name__ == "__main__":
    main()
