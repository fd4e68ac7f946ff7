"""Control-plane overhead: hub dials/s with and without ``/metrics`` scraped every
second, and ``GET /v1/campaigns/{id}`` latency while the hub dials flat out.

The control app runs in the hub's own event loop (as under ``dispatch serve``), served
by uvicorn on a loopback port; the sandbox runs in its own process at ``--speed inf``.

    python benchmarks/control_plane.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from dispatch.control import ControlServer, HubsTarget, create_app
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER
from dispatch.sdk import Pinecall
from dispatch.store import open_store
from dispatch.testing import MemoryStrategy

sys.path.insert(0, str(Path(__file__).parent))
from _bench_common import sandbox_process

CAMPAIGN = "bench"


async def scrape_every_second(client: httpx.AsyncClient, scrapes_ms: list[float]) -> None:
    while True:
        t0 = time.perf_counter()
        response = await client.get("/metrics")
        assert response.status_code == 200
        scrapes_ms.append(1000 * (time.perf_counter() - t0))
        await anyio.sleep(1.0)


async def probe_latency(client: httpx.AsyncClient, latencies_ms: list[float]) -> None:
    while True:
        t0 = time.perf_counter()
        response = await client.get(f"/v1/campaigns/{CAMPAIGN}")
        if response.status_code == 200:
            latencies_ms.append(1000 * (time.perf_counter() - t0))
        await anyio.sleep(0.05)


async def campaign(url: str, db: Path, n: int, mode: str) -> tuple[float, list[float], float]:
    """One run of ``n`` instant calls; ``mode``: ``none``, ``metrics`` or ``latency``.

    Returns dials/s, the side task's request times (ms) and one ``/metrics`` scrape
    time (ms) after the run, when the database holds all ``n`` attempts."""
    recs = [Record(id=f"r{i}", phone=f"+1555{i:05d}{i % 60:02d}") for i in range(n)]
    samples: list[float] = []
    async with Pinecall(url=url) as pc, open_store(db) as store:
        agent = pc.agent("bench", phone_number=SANDBOX_NUMBER)
        await agent.ready()
        hub = DispatchHub(agent, [MemoryStrategy(recs)], from_=SANDBOX_NUMBER, db=store,
                          campaign=CAMPAIGN, poll_interval_s=1.0)
        async with anyio.create_task_group() as tg:
            server = ControlServer(create_app(HubsTarget([hub], store), token=None), port=0)
            base = await tg.start(server.run)
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                async with anyio.create_task_group() as side:
                    if mode == "metrics":
                        side.start_soon(scrape_every_second, client, samples)
                    elif mode == "latency":
                        side.start_soon(probe_latency, client, samples)
                    t0 = time.perf_counter()
                    await hub.run(until_idle=True)
                    elapsed_s = time.perf_counter() - t0
                    side.cancel_scope.cancel()
                t0 = time.perf_counter()
                assert (await client.get("/metrics")).status_code == 200
                final_ms = 1000 * (time.perf_counter() - t0)
            server.stop()
    return n / elapsed_s, samples, final_ms


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def line(what: str, values: list[float]) -> str:
    return (f"{what:<34} {len(values)} requests, p50 {pct(values, 50):.1f} ms, "
            f"p95 {pct(values, 95):.1f} ms, max {max(values, default=float('nan')):.1f} ms")


async def main(n: int) -> None:
    runs: dict[str, list[tuple[float, list[float], float]]] = {}
    with sandbox_process(speed="inf") as url:
        for mode in ("none", "metrics", "none", "metrics", "latency"):
            with tempfile.TemporaryDirectory() as tmp:
                runs.setdefault(mode, []).append(await campaign(url, Path(tmp) / "b.db", n, mode))
    base = max(r[0] for r in runs["none"])
    scraped = max(r[0] for r in runs["metrics"])
    probed = runs["latency"][0][0]
    print(f"records per run                    {n} (sandbox --speed inf, no limits)")
    print("dials/s, no scrape (best of 2)     "
          f"{base:.0f} (runs: {', '.join(f'{r[0]:.0f}' for r in runs['none'])})")
    print(f"dials/s, /metrics every 1 s        {scraped:.0f} ({100 * (scraped / base - 1):+.1f} %;"
          f" runs: {', '.join(f'{r[0]:.0f}' for r in runs['metrics'])})")
    print(line("/metrics scrape during the run", [ms for r in runs["metrics"] for ms in r[1]]))
    print(line(f"/metrics after, {n} attempts", [r[2] for r in runs["metrics"]]))
    print(line("GET /v1/campaigns/{id}, under load", runs["latency"][0][1]))
    print(f"dials/s while probed every 50 ms   {probed:.0f} ({100 * (probed / base - 1):+.1f} %)")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
