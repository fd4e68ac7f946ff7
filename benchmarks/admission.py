"""The admission step's cost (issue 9): per dial, and a preview of 1,000,000 records.

* per dial, in claim batches of 256 as the hub takes them: ``HubCompliance.decide``
  (do-not-call lists of 100,000 + 500 numbers, calling hours in the callee's zone
  with the US state table, the per-phone cap over prefetched attempts) for records
  of 20,000 distinct numbers in 12 zones, plus the batch's reads from a real SQLite
  file holding ``--attempts`` attempt rows (the internal list's fingerprint and one
  indexed range read of the batch's phones), amortised over the batch;
* preview: ``preview_records`` over ``--records`` (default 1,000,000) records, half
  of them deferred (outside the window), some on the DNC list.

Target: < 50 us per dial. Usage: ``python benchmarks/admission.py [--records N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from dispatch.compliance import StaticSuppressionList
from dispatch.hub.admission import Compliance, HubCompliance, preview_records
from dispatch.store import Store
from dispatch.store.compliance import attempt_window, dnc_fingerprint

AREA = ["212", "305", "415", "312", "713", "602", "206", "808", "907", "617", "404", "503"]
T0 = 1_773_230_400.0 + 6 * 3600  # 2026-03-11 14:00 EDT: open on the east coast


def _phones(n: int, rng: random.Random) -> list[str]:
    phones = [f"+1{rng.choice(AREA)}555{i % 10_000:04d}" for i in range(n // 2)]
    phones += [f"+4420794{i % 100_000:05d}" for i in range(n // 4)]
    phones += [f"+346112{i % 100_000:05d}" for i in range(n - len(phones))]
    return phones


def _compliance(rng: random.Random, phones: list[str]) -> HubCompliance:
    big = StaticSuppressionList("file", (f"+1999555{i:04d}" for i in range(100_000)))
    small = StaticSuppressionList("sql", rng.sample(phones, 500))
    return HubCompliance(Compliance(dnc_lists=[big, small]), "bench")


async def _prefetch_cost(path: Path, phones: list[str],
                         attempts: int) -> tuple[float, Any, Any, float]:
    """Seconds per claim batch of 256 to read the attempt window; the first batch's
    window; the window of every phone and the seconds it took."""
    async with await Store.open(path) as store:
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO records (source, id, phone, strategy, status, attempts,"
                     " payload, seq, created_at, updated_at, campaign_id) VALUES ('s', 'r',"
                     " '+1', 's', 'completed', 0, '{}', 1, 1.0, 1.0, 'bench')")
        # spread over the last 10 days: about one attempt per phone in any 24 h
        rows = [(1, i + 1, 0, phones[i % len(phones)], T0 - i * 864_000 / attempts, "bench")
                for i in range(attempts)]
        conn.executemany("INSERT INTO attempts (record_pk, attempt_no, requeue_round, phone,"
                         " claimed_at, campaign_id) VALUES (?, ?, ?, ?, ?, ?)", rows)
    async with await Store.open(path, read_only=True) as store:
        batches = [phones[i:i + 256] for i in range(0, 256 * 40, 256)]
        first = await attempt_window(store.engine, batches[0], None, T0 - 86_400)
        start = time.perf_counter()
        for batch in batches:  # what the hub reads per claim batch (no campaign cap set)
            await dnc_fingerprint(store.engine)
            await attempt_window(store.engine, batch, None, T0 - 86_400)
        batch_s = (time.perf_counter() - start) / len(batches)
        start = time.perf_counter()
        everyone = await attempt_window(store.engine, phones, "bench", T0 - 86_400 - 10 * 3600)
        return batch_s, first, everyone, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--attempts", type=int, default=200_000)
    parser.add_argument("--decisions", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(9)
    distinct = _phones(20_000, rng)
    compliance = _compliance(rng, distinct)
    with tempfile.TemporaryDirectory() as tmp:
        batch_s, window, everyone, everyone_s = anyio.run(
            _prefetch_cost, Path(tmp) / "a.db", distinct, args.attempts)
    dial_phones = distinct[:256]
    for phone in dial_phones:  # warm the zone caches once, as a running hub has
        compliance.decide("w", phone, {}, T0, window)
    start = time.perf_counter()
    verdicts: dict[str, int] = {}
    for i in range(args.decisions):
        decision = compliance.decide(f"r{i}", dial_phones[i % 256], {}, T0, window)
        verdicts[decision.verdict.value] = verdicts.get(decision.verdict.value, 0) + 1
    decide_us = (time.perf_counter() - start) / args.decisions * 1e6
    records = [(f"r{i}", distinct[i % len(distinct)], {"state": "FL"} if i % 50 == 0 else {})
               for i in range(args.records)]
    start = time.perf_counter()
    summary = preview_records(compliance, records, T0 - 10 * 3600, everyone)
    preview_s = time.perf_counter() - start
    print(json.dumps({
        "decide_us_per_dial": round(decide_us, 2),
        "prefetch_ms_per_batch_of_256": round(batch_s * 1e3, 2),
        "prefetch_us_per_dial": round(batch_s / 256 * 1e6, 2),
        "admission_us_per_dial": round(decide_us + batch_s / 256 * 1e6, 2),
        "target_us": 50,
        "decide_verdicts": verdicts,
        "attempt_rows": args.attempts,
        "preview_records": args.records,
        "preview_s": round(preview_s, 2),
        "preview_prefetch_s": round(everyone_s, 2),
        "preview_dial_now": summary.dial_now,
        "preview_deferred": sum(summary.deferred.values()),
        "preview_skipped": dict(summary.skipped),
    }, indent=2))


if __name__ == "__main__":
    main()
