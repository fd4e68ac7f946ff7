"""Record identity is (source key, id), and dedup is the database's: start-up reads
what is in play, never every finished id; the in-memory cache of stored keys is
bounded and only a cache."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import anyio
import pytest

import dispatch.hub.state as hub_state
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.store import Store, insert_record
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

pytestmark = pytest.mark.anyio

FINISHED = 3000


async def _run_idle(hub: DispatchHub, clock: FakeClock) -> None:
    async with clock.autojump():
        with anyio.fail_after(60):
            await hub.run(until_idle=True)


def _spy(store: Store) -> list[tuple[str, int]]:
    """Record ``(method, rows returned)`` for every read the store answers."""
    calls: list[tuple[str, int]] = []
    for name, fn in inspect.getmembers(store, inspect.iscoroutinefunction):
        if name.startswith("_") or name in ("write", "write_now", "flush", "run_writer"):
            continue

        async def wrapped(*args: Any, _fn: Any = fn, _name: str = name, **kwargs: Any) -> Any:
            result = await _fn(*args, **kwargs)
            size = len(result) if isinstance(result, list | set | dict) else 0
            calls.append((_name, size))
            return result

        setattr(store, name, wrapped)
    return calls


class FirstPollMarks(MemoryStrategy):
    """Remembers how many store reads had happened when it was first polled."""

    def __init__(self, calls: list[tuple[str, int]], items: list[Any], **kw: Any) -> None:
        super().__init__(items, **kw)
        self.calls = calls
        self.startup: list[tuple[str, int]] | None = None

    async def poll(self) -> Any:
        if self.startup is None:
            self.startup = list(self.calls)
        return await super().poll()


async def test_start_up_does_not_load_finished_ids(tmp_path: Path):
    clock = FakeClock()
    store = await Store.open(tmp_path / "hub.db")
    finished = [Record(id=f"done{i}", phone=f"+1555{i:07d}") for i in range(FINISHED)]
    await store.write_now(
        [insert_record(id=r.id, phone=r.phone, strategy="memory",
                       status="completed", payload=r.payload(), now=clock.now())
         for r in finished]
        + [insert_record(id="left", phone="+15559000001", strategy="memory",
                         status="pending", payload={}, now=clock.now())])
    calls = _spy(store)
    fresh = Record(id="new", phone="+15559000002")
    # the source returns every finished record again, plus one new one
    strategy = FirstPollMarks(calls, [*finished, fresh])
    dialer = MemoryDialer(clock, default=Answer(5))
    hub = DispatchHub(dialer, [strategy], db=store, clock=clock, drain_timeout_s=None)
    try:
        await _run_idle(hub, clock)
    finally:
        await store.close()
    assert strategy.startup is not None
    read = {name for name, _ in strategy.startup}
    assert "load_active" in read  # a positive control: the spy sees start-up reads
    rows_read = sum(n for name, n in strategy.startup if name != "counts")
    assert rows_read <= 1, strategy.startup  # the one record left pending, nothing more
    # dedup still holds: asked of the database when the source returned the ids
    assert sorted(d.to for d in dialer.dials) == ["+15559000001", "+15559000002"]
    asked = [n for name, n in calls if name == "existing_keys"]
    assert sum(asked) == FINISHED  # found once; later polls are answered by the cache


async def test_a_tiny_cache_never_lets_a_stored_id_be_dialled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(hub_state, "KNOWN_CACHE_SIZE", 2)
    clock = FakeClock()
    recs = [Record(id=f"r{i}", phone=f"+1555000{i:04d}") for i in range(12)]
    strategy = MemoryStrategy(recs)  # every poll returns every record again
    dialer = MemoryDialer(clock, default=Answer(30))
    hub = DispatchHub(dialer, [strategy], db=tmp_path / "hub.db", clock=clock,
                      poll_interval_s=1.0, max_concurrent=2, drain_timeout_s=None)
    await _run_idle(hub, clock)
    assert strategy.polls > 5  # many polls saw ids the cache had long forgotten
    assert sorted(d.to for d in dialer.dials) == sorted(r.phone for r in recs)


async def test_the_same_id_from_two_strategies_is_two_records(tmp_path: Path):
    clock = FakeClock()
    a = MemoryStrategy([Record(id="1", phone="+15550000001")], name="a")
    b = MemoryStrategy([Record(id="1", phone="+15550000002")], name="b")
    dialer = MemoryDialer(clock, script={"+15550000002": ["busy"]}, default=Answer(5))
    hub = DispatchHub(dialer, [a, b], db=tmp_path / "hub.db", clock=clock,
                      drain_timeout_s=None)
    await _run_idle(hub, clock)
    assert sorted(d.to for d in dialer.dials) == ["+15550000001", "+15550000002"]
    assert [(o.record.phone, o.status) for o in a.outcomes] == [("+15550000001", "completed")]
    assert [(o.record.phone, o.status) for o in b.outcomes] == [("+15550000002", "failed")]


def test_two_strategies_with_one_key_are_refused(tmp_path: Path):
    dialer = MemoryDialer(FakeClock())
    with pytest.raises(ValueError, match=r"strategies 0 \(MemoryStrategy\) and 2 "
                                         r"\(MemoryStrategy\) have the same key 'memory'"):
        DispatchHub(dialer, [MemoryStrategy(), MemoryStrategy(name="x"), MemoryStrategy()],
                    db=tmp_path / "hub.db")
    with pytest.raises(ValueError, match="control character"):
        MemoryStrategy().key = "a\x1fb"


def test_the_known_cache_is_bounded() -> None:
    cache = hub_state.KnownKeys(capacity=3)
    for key in "abcd":
        cache.add(key)
    assert "a" not in cache and len(cache) == 3
    assert "b" in cache  # touched: now the newest
    cache.add("e")
    assert "c" not in cache and {"b", "d", "e"} == {k for k in "bde" if k in cache}
