"""The four workloads of ``peers.py`` (deterministic: a fixed seed per workload).

Times are campaign seconds; ``rate`` is dials per 60 campaign seconds.

- ``rate``: everything at t = 0, short calls; the rate cap binds (the concurrency
  cap binds briefly at the start of every window).
- ``concurrency``: everything at t = 0, call lengths spread like real conversations
  (log-normal, median 25 s, a long tail up to 5 min; ``quick``: median 10 s, at most
  30 s); the concurrency cap binds.
- ``edges``: bursts of ``rate`` records released at k*60 - 1 s and k*60 + 1 s, just
  before and after each window boundary: a fixed-window or leaky-bucket limiter lets
  about twice the cap through in one 60 s window there.
- ``phones``: every phone has four records, the feed repeats some rows in its first
  batch (duplicate rows) and re-sends a third of its records at t = 30 s (a re-read source):
  exercises the one-live-call-per-phone rule and the seen-set.
"""

from __future__ import annotations

import math
import random

from _peers_harness import Job, Workload

__all__ = ["WORKLOADS", "build"]

WORKLOADS = ("rate", "concurrency", "edges", "phones")


def _phone(n: int) -> str:
    return f"+1555{n:07d}"


def _rate(quick: bool) -> Workload:
    rng = random.Random(1)
    n = 130 if quick else 600
    jobs = tuple(Job(f"r{i}", _phone(i), 0.0, rng.uniform(2.0, 8.0)) for i in range(n))
    return Workload("rate", f"rate-bound: {n} records, 120 per 60 s, concurrency 50, calls 2-8 s",
                    jobs, rate=120, concurrency=50)


def _concurrency(quick: bool) -> Workload:
    rng = random.Random(2)
    # quick: shorter calls (median 10 s, at most 30 s) so that each slot still turns over
    n, concurrency, mu, top_s = (45, 15, 2.3, 30.0) if quick else (400, 20, 3.2, 300.0)
    jobs = tuple(
        Job(f"c{i}", _phone(i), 0.0, min(top_s, max(3.0, rng.lognormvariate(mu, 0.8))))
        for i in range(n)
    )
    median_s = round(math.exp(mu))
    return Workload("concurrency",
                    f"concurrency-bound: {n} records, 120 per 60 s, concurrency {concurrency}, "
                    f"calls log-normal (median {median_s} s, 3-{top_s:.0f} s)",
                    jobs, rate=120, concurrency=concurrency)


def _edges(quick: bool) -> Workload:
    rng = random.Random(3)
    rate, pairs = 100, (1 if quick else 3)
    jobs: list[Job] = []
    for k in range(1, pairs + 1):
        for release_s in (60.0 * k - 1.0, 60.0 * k + 1.0):
            for _ in range(rate):
                i = len(jobs)
                jobs.append(Job(f"e{i}", _phone(i), release_s, rng.uniform(2.0, 4.0)))
    return Workload("edges",
                    f"bursts at window edges: {len(jobs)} records in bursts of {rate} at "
                    "k*60-1 s and k*60+1 s, 100 per 60 s, concurrency 100, calls 2-4 s",
                    tuple(jobs), rate=rate, concurrency=100)


def _phones(quick: bool) -> Workload:
    rng = random.Random(4)
    n_phones, top_s = (10, 15.0) if quick else (75, 40.0)
    unique = [
        Job(f"p{i}", _phone(i % n_phones), 0.0, rng.uniform(5.0, top_s))
        for i in range(4 * n_phones)
    ]
    repeated = rng.sample(unique, len(unique) // 5)  # duplicate rows in the same batch
    resent = [Job(j.rid, j.phone, 30.0, j.duration_s)
              for j in rng.sample(unique, len(unique) // 3)]
    return Workload("phones",
                    f"shared phones: {len(unique)} records on {n_phones} phones (4 each), "
                    f"+{len(repeated)} duplicate rows, {len(resent)} re-sent at t=30 s, "
                    f"120 per 60 s, concurrency 30, calls 5-{top_s:.0f} s",
                    tuple(unique + repeated + resent), rate=120, concurrency=30)


def build(name: str, *, quick: bool) -> Workload:
    """The workload called ``name`` (small sizes with ``quick``)."""
    makers = {"rate": _rate, "concurrency": _concurrency, "edges": _edges, "phones": _phones}
    return makers[name](quick)
