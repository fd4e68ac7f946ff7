"""Webhook intake benchmark: records/s with signature checks, and webhook-to-dial latency.

Figures (targets from issue 10):

* intake throughput: signed POSTs (Standard Webhooks, HMAC-SHA256 checked over the raw
  body, idempotency key looked up, records committed to a real SQLite file before the
  202) from ``--senders`` concurrent httpx clients, in a separate process from the
  intake (the two cores are shared as in production: sender and dispatcher apart);
  single-record requests and batches of ``--batch`` records (target >= 2,000 records/s);
* webhook-to-dial latency with free slots: a DispatchHub with the intake and an
  in-memory dialer (poll interval 60 s, so only the wake-up can explain a fast dial);
  one signed POST at a time, from just before the POST to the dial leaving the hub;
  p50/p99 over ``--latency-n`` records (target p99 < 50 ms).

Usage: ``python benchmarks/webhook_intake.py [--requests N] [--batch N] [--senders N]
[--latency-n N]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import anyio
import httpx
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"benchmark-secret-key-32-bytes!!!").decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signed(records: list[dict[str, object]]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"records": records}).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = dt.datetime.now(tz=dt.UTC)
    return body, {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                  "webhook-signature": Webhook(SECRET).sign(msg_id, now, body.decode()),
                  "content-type": "application/json"}


async def _serve_bare(port: int) -> None:
    """Child mode: a bare Starlette endpoint answering 202 (the HTTP stack's ceiling)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from dispatch.asgi import bind_socket, serve_asgi

    async def accept(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"ok": True}, status_code=202)

    app = Starlette(routes=[Route("/v1/records", accept, methods=["POST"])])
    sock = bind_socket("127.0.0.1", port, "bare endpoint")
    async with anyio.create_task_group() as tg:
        await tg.start(lambda *, task_status: serve_asgi(app, sock, task_status=task_status))
        print("ready", flush=True)


async def _serve_intake(db: str, port: int) -> None:
    """Child mode: an intake on a real store until killed (no hub: nothing drains it)."""
    from dispatch.store import Store
    from dispatch.strategies import WebhookStrategy
    from dispatch.webhooks import parse_secret

    strategy = WebhookStrategy(port=port, secrets=[parse_secret(SECRET)],
                               max_pending=10_000_000)
    store = await Store.open(db)
    async with anyio.create_task_group() as tg:
        await tg.start(store.run_writer)
        await tg.start(strategy.serve, store, lambda: None)
        print("ready", flush=True)
        await anyio.sleep_forever()


async def _send_all(url: str, requests: list[tuple[bytes, dict[str, str]]],
                    senders: int) -> float:
    queue = list(reversed(requests))
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)

    async def sender(client: httpx.AsyncClient) -> None:
        while queue:
            body, headers = queue.pop()
            response = await client.post(url, content=body, headers=headers)
            if response.status_code != 202:
                raise RuntimeError(f"intake answered {response.status_code}: {response.text}")

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(senders):
                tg.start_soon(sender, client)
        return time.perf_counter() - started


def _throughput(requests: int, batch: int, senders: int, *, bare: bool = False) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        mode = ["--bare", str(port)] if bare else ["--serve", str(Path(tmp) / "in.db"), str(port)]
        child = subprocess.Popen([sys.executable, __file__, *mode],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("intake did not start")
            time.sleep(0.5)
            serial = iter(range(10**9))
            bodies = [_signed([{"id": f"b{next(serial)}", "phone": f"+1555{i % 10**7:07d}"}
                               for i in range(batch)]) for _ in range(requests)]
            elapsed = anyio.run(_send_all, f"http://127.0.0.1:{port}/v1/records", bodies,
                                senders)
        finally:
            child.kill()
            child.wait()
    return requests * batch / elapsed


async def _latency(n: int) -> list[float]:
    from dispatch.clock import SystemClock
    from dispatch.hub import DispatchHub
    from dispatch.strategies import WebhookStrategy
    from dispatch.testing import Answer, MemoryDialer
    from dispatch.webhooks import parse_secret

    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        dialer = MemoryDialer(SystemClock(), default=Answer(duration_s=0.001))
        intake = WebhookStrategy(port=0, secrets=[parse_secret(SECRET)])
        hub = DispatchHub(dialer, [intake], db=Path(tmp) / "hub.db", poll_interval_s=60.0,
                          max_concurrent=50)
        async with anyio.create_task_group() as tg, httpx.AsyncClient() as client:
            tg.start_soon(hub.run)
            await intake.ready.wait()
            for i in range(n + 5):  # the first 5 warm up
                body, headers = _signed([{"id": f"l{i}", "phone": f"+1555{i:07d}"}])
                sent = time.time()
                response = await client.post(intake.url, content=body, headers=headers)
                assert response.status_code == 202
                with anyio.fail_after(10):
                    while len(dialer.dials) <= i:  # noqa: ASYNC110 - measuring a probe
                        await anyio.sleep(0.0005)
                if i >= 5:
                    samples.append(dialer.dials[i].at - sent)
            await hub.stop()
            tg.cancel_scope.cancel()
    return samples


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--senders", type=int, default=16)
    parser.add_argument("--latency-n", type=int, default=300)
    parser.add_argument("--serve", nargs=2, metavar=("DB", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        anyio.run(_serve_intake, args.serve[0], int(args.serve[1]))
        return
    if args.bare:
        anyio.run(_serve_bare, args.bare)
        return
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    ceiling = _throughput(args.requests, 1, args.senders, bare=True)
    print(f"bare Starlette 202 endpoint, same client: {ceiling:,.0f} requests/s "
          "(the HTTP stack's ceiling here)")
    single = _throughput(args.requests, 1, args.senders)
    print(f"intake, 1 record/request, {args.senders} senders: {single:,.0f} records/s "
          "(signed, committed before 202)")
    batched = _throughput(max(1, args.requests // 10), args.batch, args.senders)
    print(f"intake, {args.batch} records/request: {batched:,.0f} records/s (target >= 2,000)")
    samples = anyio.run(_latency, args.latency_n)
    print(f"webhook-to-dial latency, free slots, n={len(samples)}: "
          f"p50 {statistics.median(samples) * 1000:.1f} ms, "
          f"p99 {_pct(samples, 0.99) * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms "
          "(target p99 < 50 ms)")


if __name__ == "__main__":
    main()
