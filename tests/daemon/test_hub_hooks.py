"""The hub's daemon hooks, in process: the schedule-window gate, limits applied from
the campaign row while running, and several hubs sharing one store."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from sqlalchemy import update

from dispatch.daemon.scoped import CampaignStore
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.store import Store
from dispatch.store.models import CampaignRow
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

pytestmark = pytest.mark.anyio


def _records(n: int, prefix: str) -> list[Record]:
    return [Record(id=f"{prefix}{i}", phone=f"+1555{i:03d}{len(prefix):04d}") for i in range(n)]


async def _eventually(predicate: object, timeout_s: float = 15.0) -> None:
    with anyio.fail_after(timeout_s):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_a_closed_window_dials_nobody_until_it_opens(tmp_path: Path) -> None:
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(0.0))
    hub = DispatchHub(dialer, [MemoryStrategy(_records(3, "w"))], clock=clock,
                      db=tmp_path / "w.db", poll_interval_s=1000, campaign="w")
    hub.set_window_open(False)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        turns = 0
        await _eventually(lambda: hub.heartbeat[0] >= 5)  # the loop turned, several times
        turns = hub.heartbeat[0]
        assert dialer.dials == []  # ... and admitted nobody
        hub.set_window_open(True)  # positive control: the same hub dials once open
        await _eventually(lambda: len(dialer.dials) == 3)
        assert hub.heartbeat[0] > turns
        await hub.stop()


async def test_limits_written_to_the_row_apply_while_running(tmp_path: Path) -> None:
    clock = FakeClock()  # frozen: only a raised limit can let more dials out
    dialer = MemoryDialer(clock, default=Answer(0.0))
    hub = DispatchHub(dialer, [MemoryStrategy(_records(6, "l"))], clock=clock,
                      db=tmp_path / "l.db", poll_interval_s=1000, campaign="l",
                      max_calls_per_minute=1, max_concurrent=2)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await _eventually(lambda: len(dialer.dials) == 1)
        turns = hub.heartbeat[0]
        await _eventually(lambda: hub.heartbeat[0] > turns + 3)
        assert len(dialer.dials) == 1  # the per-minute limit holds on a frozen clock
        store = hub.store
        assert store is not None
        async with store.engine.begin() as conn:  # what a reload or a PATCH writes
            await conn.execute(update(CampaignRow).where(CampaignRow.id == "l")
                               .values(max_per_minute=4, max_concurrent=3))
        await _eventually(lambda: len(dialer.dials) == 4)
        stats = hub.statistics()
        assert (stats.max_calls_per_minute, stats.max_concurrent) == (4, 3)
        await hub.stop()


async def test_hubs_sharing_a_store_keep_to_their_own_records(tmp_path: Path) -> None:
    clock = FakeClock()
    base = await Store.open(tmp_path / "shared.db")
    try:
        async with anyio.create_task_group() as infra:
            await infra.start(base.run_writer)
            dialers = {}
            hubs = []
            for name, n in (("a", 2), ("b", 3)):
                dialers[name] = MemoryDialer(clock, default=Answer(0.0))
                hubs.append(DispatchHub(dialers[name], [MemoryStrategy(_records(n, name),
                                                                        name=f"mem-{name}")],
                                        clock=clock, db=CampaignStore(base, name),
                                        poll_interval_s=1000, campaign=name))
            async with anyio.create_task_group() as tg:
                for hub in hubs:
                    tg.start_soon(hub.run)
                await _eventually(lambda: len(dialers["a"].dials) == 2
                                  and len(dialers["b"].dials) == 3)
                await _eventually(lambda: all(h.statistics().completed == len(d.dials)
                                              for h, d in zip(hubs, dialers.values(),
                                                              strict=True)))
                for hub in hubs:
                    await hub.stop()
            counts = [await CampaignStore(base, n).counts() for n in ("a", "b")]
            assert counts == [{"completed": 2}, {"completed": 3}]
            base.close_writer()
    finally:
        await base.close()
