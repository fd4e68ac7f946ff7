"""The floor under ``paced_cpu.py``: the least CPU per dial of any Python dialer on
this stack, doing the same campaign with nothing but the irreducible work.

Same sandbox process, same speed, same records and outcomes, same limits (120 dials
in any 60 s, 30 at once, one retry of every unanswered outcome the hub's default policy
retries, without its delays), and the same facts written into the same SQLite schema
(``Store.open`` makes it: every index and the count triggers). What it leaves out is
everything a dispatcher adds: no tasks (plain ``asyncio.Protocol`` callbacks and
``call_at`` timers), no anyio, no writer thread (``sqlite3`` on the loop thread), no
leases, no campaign state, no compliance, no callbacks, no reconnects, no logging;
the WebSocket is ``websockets``' sans-I/O protocol fed straight from
``data_received``. A frame it does not expect (``call.error``, an ``error``, an end
for a call it never saw dialling) stops the run with an error rather than a hang.
It commits as the hub does: a claim before its dial frame leaves, a settle at
once (riding with the claim it frees a slot for), the dialing and answered states
within 0.5 s with whatever commits next. It is a measurement, not a product: it
blocks the loop on SQLite and trusts the server.

Prints CPU per dial (``os.times`` over the campaign, user and system; the collector
tuned as ``paced_cpu.py`` runs the hub) and, with ``--split``, how much of it is
SQLite's (thread CPU inside ``execute``/``commit``) and how much the wait in ``epoll``.

    python benchmarks/paced_floor.py [--n 1500] [--speed 60] [--split]

Compare it with ``paced_cpu.py`` run in the same minute (``paced_cpu.py --floor``):
the machine's speed varies about 2x by the hour.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import selectors
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from dispatch.hub.attempt import STATE_WRITE_DEFER_S
from dispatch.hub.retry import DEFAULT_DELAYS_S
from dispatch.runtime import tune_gc
from dispatch.sandbox import SANDBOX_NUMBER
from dispatch.sdk.reasons import normalize_reason
from dispatch.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from _bench_common import sandbox_process

#: the campaign both paced benchmarks run (``paced_cpu.py`` takes these from here)
RATE = 120
CONCURRENT = 30


def phones(n: int) -> list[str]:
    """The campaign's numbers: the last two digits pick the sandbox's outcome (mostly
    answered, some busy, unanswered or failed)."""
    return [f"+1555{i:05d}{i % 100:02d}" for i in range(n)]


class _Split:
    """Thread CPU spent in SQLite calls and in the loop's ``epoll`` wait."""

    def __init__(self) -> None:
        self.sqlite_ns = 0
        self.epoll_ns = 0

    def timed_sqlite(self, fn: Any) -> Any:
        def timed(*args: Any) -> Any:
            start = time.thread_time_ns()
            try:
                return fn(*args)
            finally:
                self.sqlite_ns += time.thread_time_ns() - start
        return timed


class Floor(asyncio.Protocol):
    """The whole dialer: one socket, a sliding window, a concurrency count, SQLite."""

    def __init__(self, url: str, db: sqlite3.Connection, numbers: list[str], window_s: float,
                 speed: float, split: _Split | None) -> None:
        self.loop = asyncio.get_running_loop()
        self.ws = ClientProtocol(parse_uri(url + "/client"), max_size=2**24)
        self.db = db
        self.execute = split.timed_sqlite(db.execute) if split else db.execute
        self.commit = split.timed_sqlite(db.commit) if split else db.commit
        self.window_s = window_s
        self.speed = speed
        self.t0 = time.time()
        self.queue: collections.deque[tuple[int, str]] = collections.deque(
            (pk, phone) for pk, phone in enumerate(numbers, start=1))
        self.tries: dict[int, int] = {}
        self.live: dict[str, tuple[int, int]] = {}  # phone -> (record pk, attempt id)
        self.by_call: dict[str, tuple[int, int, str]] = {}  # call id -> (pk, attempt, phone)
        self.answered: set[str] = set()  # call ids that reached call.started
        self.starts: collections.deque[float] = collections.deque()
        self.wake: asyncio.TimerHandle | None = None
        self.dirty = False
        self.deferred: asyncio.TimerHandle | None = None
        self.transactions = 0
        self.open = 0
        self.ready = self.loop.create_future()
        self.done = self.loop.create_future()
        self.dials = 0
        self.transport: asyncio.Transport | None = None

    # -- time: the campaign's clock, as the hub's ScaledClock keeps it --------------

    def now(self) -> float:
        return self.t0 + (time.time() - self.t0) * self.speed

    # -- the socket -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self.on_frame(json.loads(event.data))
            elif isinstance(event, Response):
                self.send({"event": "connect", "api_key": ""})
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail("the sandbox closed the socket")

    def send(self, frame: dict[str, Any]) -> None:
        self.ws.send_text(json.dumps(frame).encode())
        self.flush()

    def flush(self) -> None:
        assert self.transport is not None
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)

    # -- the protocol ---------------------------------------------------------------

    def on_frame(self, frame: dict[str, Any]) -> None:
        event = frame.get("event")
        if event == "call.dialing":
            self.on_dialing(frame)
        elif event == "call.started":
            self.on_started(frame)
        elif event == "call.ended":
            self.on_ended(frame)
        elif event == "connected":
            self.send({"event": "agent.create", "agent_id": "floor"})
        elif event == "agent.created":
            self.send({"event": "channel.add", "agent_id": "floor", "type": "phone",
                       "ref": SANDBOX_NUMBER})
        elif event == "channel.added" and not self.ready.done():
            self.ready.set_result(None)
        elif event in ("call.error", "error"):
            self.fail(f"the sandbox sent {event}: {frame}")

    def fail(self, why: str) -> None:
        """Stop the run: something the floor does not model happened."""
        for future in (self.ready, self.done):
            if not future.done():
                future.set_exception(RuntimeError(why))

    def on_dialing(self, frame: dict[str, Any]) -> None:
        ids = self.live.get(frame["to"])
        if ids is None:
            self.fail(f"call.dialing to {frame['to']!r}, which was not dialled")
            return
        call_id, now = frame["call_id"], self.now()
        self.by_call[call_id] = (*ids, frame["to"])
        self.write("UPDATE attempts SET call_id = ?, dialing_at = ? WHERE id = ?",
                   (call_id, now, ids[1]))
        self.write("UPDATE records SET last_call_id = ?, updated_at = ? WHERE pk = ?",
                   (call_id, now, ids[0]))
        self.commit_within(STATE_WRITE_DEFER_S)

    def on_started(self, frame: dict[str, Any]) -> None:
        ids = self.by_call.get(frame["call_id"])
        if ids is not None:
            self.answered.add(frame["call_id"])
            self.write("UPDATE attempts SET answered_at = ? WHERE id = ?", (self.now(), ids[1]))
            self.commit_within(STATE_WRITE_DEFER_S)

    def on_ended(self, frame: dict[str, Any]) -> None:
        ids = self.by_call.pop(frame["call_id"], None)
        if ids is None:
            self.fail(f"call.ended for call {frame['call_id']!r}, never seen dialling")
            return
        pk, attempt, phone = ids
        del self.live[phone]
        self.open -= 1
        reason, now = frame.get("reason", "unknown"), self.now()
        self.write("UPDATE attempts SET ended_at = ?, reason = ?, raw_reason = ?, "
                   "duration_s = ? WHERE id = ?",
                   (now, reason, reason, frame.get("duration_seconds"), attempt))
        # the hub's rule: an answered call is never retried, an unanswered one is when
        # its reason has a delay in the default policy
        answered = frame["call_id"] in self.answered
        self.answered.discard(frame["call_id"])
        retryable = not answered and normalize_reason(reason) in DEFAULT_DELAYS_S
        if retryable and self.tries[pk] < 2:
            status = "pending"
            self.queue.append((pk, phone))
        else:
            status = "failed" if retryable else "completed"
        self.write("UPDATE records SET status = ?, last_reason = ?, updated_at = ? "
                   "WHERE pk = ?", (status, reason, now, pk))
        if status != "pending" and not self.queue and not self.live:
            self.loop.call_soon(self._finish)
        self.pump()  # commits with the claims it makes
        self.commit_now()  # a settle does not wait

    def _finish(self) -> None:
        if not self.done.done() and not self.queue and not self.live:
            self.done.set_result(None)

    # -- admission: the sliding window and the concurrency cap ----------------------

    def pump(self) -> None:
        real = time.monotonic()
        frames: list[dict[str, Any]] = []
        while self.queue and self.open < CONCURRENT:
            while self.starts and real - self.starts[0] >= self.window_s:
                self.starts.popleft()
            if len(self.starts) >= RATE:
                if self.wake is None:
                    self.wake = self.loop.call_at(self.starts[0] + self.window_s, self._woken)
                break
            pk, phone = self.queue.popleft()
            frames.append(self.claim(pk, phone, real))
        if frames:
            self.commit_now()  # the claims are durable before their frames leave
            for frame in frames:
                self.send(frame)

    def _woken(self) -> None:
        self.wake = None
        self.pump()

    def claim(self, pk: int, phone: str, real: float) -> dict[str, Any]:
        tries = self.tries[pk] = self.tries.get(pk, 0) + 1
        now = self.now()
        cursor = self.write(
            "INSERT INTO attempts (record_pk, attempt_no, requeue_round, phone, claimed_at, "
            "dialed_at, campaign_id) VALUES (?, ?, 0, ?, ?, ?, 'default')",
            (pk, tries, phone, now, now))
        self.write("UPDATE records SET status = 'dialing', attempts = ?, updated_at = ? "
                   "WHERE pk = ?", (tries, now, pk))
        self.live[phone] = (pk, cursor.lastrowid)
        self.open += 1
        self.starts.append(real)
        self.dials += 1
        return {"event": "call.dial", "agent_id": "floor", "to": phone,
                "from": SANDBOX_NUMBER, "metadata": {"record_id": f"r{pk - 1}"}}

    # -- the store --------------------------------------------------------------------

    def write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        self.dirty = True
        cursor: sqlite3.Cursor = self.execute(sql, params)
        return cursor

    def commit_within(self, delay_s: float) -> None:
        if self.deferred is None:
            self.deferred = self.loop.call_later(delay_s, self.commit_now)

    def commit_now(self) -> None:
        if self.deferred is not None:
            self.deferred.cancel()
            self.deferred = None
        if self.dirty:
            self.dirty = False
            self.commit()
            self.transactions += 1


def _seed(db_path: Path, numbers: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(db_path, isolation_level="DEFERRED")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    now = time.time()
    db.executemany(
        "INSERT INTO records (source, id, phone, strategy, status, attempts, payload, "
        "created_at, updated_at, seq, campaign_id) "
        "VALUES ('memory', ?, ?, 'memory', 'pending', 0, '{}', ?, ?, ?, 'default')",
        [(f"r{i}", phone, now, now, i + 1) for i, phone in enumerate(numbers)])
    db.commit()
    return db


@dataclass
class FloorRun:
    """What one floor campaign measured."""

    dials: int
    user_s: float
    sys_s: float
    elapsed_s: float
    statuses: dict[str, int]
    transactions: int
    rows: int
    sqlite_ns: int | None
    epoll_ns: int | None

    @property
    def cpu_ms_per_dial(self) -> float:
        return 1000 * (self.user_s + self.sys_s) / max(1, self.dials)


async def measure(n: int, speed: float, *, split: bool = False) -> FloorRun:
    """Run the floor campaign of ``n`` records at ``speed`` against its own sandbox."""
    numbers = phones(n)
    timing = _Split() if split else None
    select = selectors.EpollSelector.select
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(speed=str(speed)) as url:
        path = Path(tmp) / "floor.db"
        store = await Store.open(path)  # the real schema: indexes, triggers
        await store.close()
        db = _seed(path, numbers)
        loop = asyncio.get_running_loop()
        host, port = url.removeprefix("ws://").split(":")
        _, floor = await loop.create_connection(
            lambda: Floor(url, db, numbers, 60.0 / speed, speed, timing), host, int(port))
        await asyncio.wait_for(floor.ready, 20)
        if timing is not None:
            def timed_select(self: selectors.EpollSelector, timeout: float | None = None) -> Any:
                start = time.thread_time_ns()
                try:
                    return select(self, timeout)
                finally:
                    timing.epoll_ns += time.thread_time_ns() - start
            selectors.EpollSelector.select = timed_select  # type: ignore[method-assign]
        try:
            times0, t0 = os.times(), time.perf_counter()
            floor.pump()
            await floor.done
            elapsed_s, times1 = time.perf_counter() - t0, os.times()
        finally:
            selectors.EpollSelector.select = select  # type: ignore[method-assign]
        statuses = dict(db.execute("SELECT status, count(*) FROM records GROUP BY status"))
        rows = db.total_changes - n
        db.close()
        assert floor.transport is not None
        floor.transport.close()
    return FloorRun(
        dials=floor.dials, user_s=times1.user - times0.user,
        sys_s=times1.system - times0.system, elapsed_s=elapsed_s, statuses=statuses,
        transactions=floor.transactions, rows=rows,
        sqlite_ns=timing.sqlite_ns if timing else None,
        epoll_ns=timing.epoll_ns if timing else None)


async def main(args: argparse.Namespace) -> None:
    tune_gc()  # the collector as paced_cpu.py runs the hub
    run = await measure(args.n, args.speed, split=args.split)
    dials = max(1, run.dials)
    print(f"records            {args.n} ({run.dials} dial lifecycles, retries included)")
    print(f"limits             {RATE}/min, {CONCURRENT} concurrent; time x{args.speed:g}")
    print(f"statuses           {run.statuses}")
    print(f"elapsed            {run.elapsed_s:.1f} s real = "
          f"{run.elapsed_s * args.speed / 60:.1f} campaign min")
    print(f"floor CPU per dial {run.cpu_ms_per_dial:.3f} ms  "
          f"({1000 * run.user_s / dials:.3f} user + {1000 * run.sys_s / dials:.3f} system)")
    print(f"per dial           {run.transactions / dials:.2f} transactions, "
          f"{run.rows / dials:.2f} rows written (triggers included)")
    if run.sqlite_ns is not None and run.epoll_ns is not None:
        print(f"  of which SQLite  {run.sqlite_ns / dials / 1e6:.3f} ms "
              "(thread CPU in execute/commit)")
        print(f"  of which epoll   {run.epoll_ns / dials / 1e6:.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--split", action="store_true",
                        help="also print SQLite's and epoll's share (see the module doc)")
    asyncio.run(main(parser.parse_args()))
