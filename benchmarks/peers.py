"""DispatchHub against the rate limiters a user would reach for, on one workload and one far end.

What is compared: the same feed of records (``_peers_workloads.py``), the same fake
voice platform (``_peers_harness.FarEnd``) and the same limits ("at most ``rate``
dials start in any 60 s window", "at most ``concurrency`` calls live", one live call
per phone, every record id dialled once) through

- ``DispatchHub`` (public API: ``DispatchHub(dialer, [strategy], max_calls_per_minute=,
  max_concurrent=, db=, clock=)``, SQLite store in a temporary file);
- aiolimiter + a semaphore, pyrate-limiter, limits (moving window) and aiometer, each
  wrapped in the obvious user code (a seen-set, a phone lock; ``_peers_runners.py``);
- an ``unlimited`` control (no limit, no lock, no seen-set), which shows that every
  column can see a violation.

How: time is compressed. A 60 s window lasts ``--window-s`` real seconds (default 1,
i.e. 60x) for every runner alike: the peers' limiters are given that real window, the
hub and the far end read a clock that runs ``60 / window_s`` times faster than real
time. Every figure is computed from the far end's own log (the instant each dial
left and the instant its call ended, in campaign seconds), never from a runner's
view. Each runner runs in its own process (``--child``), so CPU and peak RSS are its
own:

- worst 60 s: most dial starts in any half-open 60 s window, against the cap;
- peak live: most calls live at one instant, against the cap;
- phone ovl: calls that started while another call to the same phone was live;
- dup: dials of a record id already dialled; lost: record ids never dialled;
- makespan: feed start to the last call's end; ideal: a greedy earliest-start
  simulation with the same limits, releases, phones and call durations
  (``_bench_common.greedy_makespan``);
- CPU ms/dial: the process's CPU time from the feed start to the end, over dials
  (the far end and the feed are in every process, see the control row);
- RSS: the process's peak resident set (the hub's includes SQLAlchemy and SQLite).

    python benchmarks/peers.py [--quick] [--window-s 1] [--workload NAME ...] [--runner NAME ...]

Needs the ``bench`` extra (``pip install -e '.[bench]'``). When the hub's far-end window
exceeds its cap, ``benchmarks/_peers_explain.py WORKLOAD`` compares the hub's own
window stamps with the far end's departures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))
from _peers_harness import FarEnd, ScaledClock, Workload
from _peers_workloads import WORKLOADS, build

HUB = "DispatchHub"
RUNNERS = (HUB, "aiolimiter+semaphore", "pyrate-limiter", "limits (moving window)", "aiometer",
           "unlimited (control)")
#: the hub's makespan may exceed the greedy ideal by at most this share
MAKESPAN_TOLERANCE = 0.01


def child(runner: str, workload_file: Path, window_s: float) -> None:
    """Run one runner on one workload in this process; print its result as JSON."""
    workload = Workload.load(workload_file)
    clock = ScaledClock(60.0 / window_s)
    far_end = FarEnd(clock, workload.durations())
    if runner == HUB:  # imported only here: a peer's process never loads dispatch
        from _peers_hub import run_hub

        result = anyio.run(run_hub, workload, clock, far_end, window_s)
    else:
        from _peers_runners import PEERS

        result = anyio.run(PEERS[runner], workload, clock, far_end, window_s)
    print(json.dumps(result))


def run_child(runner: str, workload_file: Path, window_s: float,
              timeout_s: float) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", runner, str(workload_file),
           "--window-s", str(window_s)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout_s:.0f} s"}
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()
        return {"error": f"exit {proc.returncode}: {lines[-1]}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure(workload: Workload, result: dict[str, Any], ideal_s: float) -> dict[str, Any]:
    """The table's figures, from the far-end log alone."""
    # _bench_common imports dispatch: only the parent loads it, never a peer's process
    from _bench_common import peak_live, phone_overlaps

    from dispatch.testing import worst_window

    log = result["log"]
    ended = [(phone, start, end) for _rid, phone, start, end in log if end is not None]
    rids = [row[0] for row in log]
    expected = {job.rid for job in workload.jobs}
    makespan_s = max((end for _p, _s, end in ended), default=float("nan"))
    return {
        "dials": len(log),
        "unended": len(log) - len(ended),
        "worst": worst_window([row[2] for row in log]),
        "peak": peak_live([(start, end) for _p, start, end in ended]),
        "overlaps": phone_overlaps(ended),
        "dups": len(rids) - len(set(rids)),
        "lost": len(expected - set(rids)),
        "makespan_s": makespan_s,
        "ratio": makespan_s / ideal_s,
        "cpu_ms": 1000 * result["cpu_s"] / max(1, len(log)),
        "rss_mib": result["rss_mib"],
    }


def violations(workload: Workload, m: dict[str, Any]) -> list[str]:
    found = []
    if m["worst"] > workload.rate:
        found.append(f"{m['worst']} dials in one 60 s window (cap {workload.rate})")
    if m["peak"] > workload.concurrency:
        found.append(f"{m['peak']} calls live at once (cap {workload.concurrency})")
    for key, what in (("overlaps", "same-phone overlaps"), ("dups", "duplicate dials"),
                      ("lost", "records never dialled"), ("unended", "calls never ended")):
        if m[key]:
            found.append(f"{m[key]} {what}")
    return found


HEADER = (f"  {'runner':<24}{'dials':>6}{'worst 60 s':>12}{'peak live':>11}{'phone ovl':>10}"
          f"{'dup':>5}{'lost':>5}{'makespan':>10}{'/ideal':>8}{'CPU ms/dial':>12}{'RSS MiB':>9}")


def row(name: str, workload: Workload, m: dict[str, Any]) -> str:
    worst = f"{m['worst']}/{workload.rate}"
    peak = f"{m['peak']}/{workload.concurrency}"
    return (f"  {name:<24}{m['dials']:>6}{worst:>12}{peak:>11}{m['overlaps']:>10}{m['dups']:>5}"
            f"{m['lost']:>5}{m['makespan_s']:>9.1f}s{m['ratio']:>8.3f}{m['cpu_ms']:>12.3f}"
            f"{m['rss_mib']:>9.0f}")


def verdict(workload: Workload, m: dict[str, Any] | None) -> str:
    if m is None:
        return f"  => {HUB}: no result"
    found = violations(workload, m)
    within = m["ratio"] <= 1 + MAKESPAN_TOLERANCE
    what = "; ".join(found) if found else "zero violations"
    span = f"makespan / ideal = {m['ratio']:.4f} ({'within' if within else 'over'} 1 %)"
    target = "meets" if not found and within else "MISSES"
    return f"  => {HUB} {target} the target: {what}, {span}"


def bench_workload(workload: Workload, runners: list[str], window_s: float, tmp: Path) -> None:
    from _bench_common import greedy_makespan

    path = tmp / f"{workload.name}.json"
    workload.dump(path)
    jobs = [(j.release_s, j.phone, j.duration_s) for j in workload.unique_jobs()]
    ideal_s = greedy_makespan(jobs, workload.rate, workload.concurrency)
    print(f"\n== {workload.name}: {workload.title}")
    print(f"   ideal makespan {ideal_s:.1f} s (campaign seconds; 60 s = {window_s:g} s real)")
    print(HEADER)
    hub_m: dict[str, Any] | None = None
    for name in runners:
        timeout_s = 30 + 5 * ideal_s * window_s / 60.0
        result = run_child(name, path, window_s, timeout_s)
        if "error" in result:
            print(f"  {name:<24}{result['error']}")
            continue
        m = measure(workload, result, ideal_s)
        print(row(name, workload, m) + (f"  ({result['note']})" if result.get("note") else ""))
        if name == HUB:
            hub_m = m
    if HUB in runners:
        print(verdict(workload, hub_m))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (< 30 s in all)")
    parser.add_argument("--window-s", type=float, default=1.0,
                        help="real seconds per 60 s window, for every runner (default 1)")
    parser.add_argument("--workload", action="append", choices=WORKLOADS)
    parser.add_argument("--runner", action="append", choices=RUNNERS)
    parser.add_argument("--child", nargs=2, metavar=("RUNNER", "WORKLOAD_JSON"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.window_s <= 0:
        parser.error("--window-s must be > 0")
    if args.child:
        child(args.child[0], Path(args.child[1]), args.window_s)
        return
    started = time.perf_counter()
    print(f"time compressed {60.0 / args.window_s:g}x: a 60 s window lasts {args.window_s:g} s "
          "of real time for every runner; figures from the far end's log")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.workload or WORKLOADS:
            bench_workload(build(name, quick=args.quick), args.runner or list(RUNNERS),
                           args.window_s, Path(tmp))
    print(f"\nAt {60.0 / args.window_s:g}x, every real millisecond a runner spends between a free "
          f"slot or token and the dial costs {60.0 / args.window_s:g} ms of campaign time "
          "(see --window-s).")
    print(f"(total {time.perf_counter() - started:.0f} s; CPU figures are noisy on a shared "
          "machine)")


if __name__ == "__main__":
    main()
