"""Sources that fail: poll() raising (backoff, statistics, SourceFailing), preflight
errors before anything is stored, unusable sources in one-shot and daemon runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.errors import PreflightError, SourceFailing, SourceUnusable
from dispatch.hub import DispatchHub
from dispatch.hub.sources import FIRST_RETRY_S, GIVE_UP_AFTER
from dispatch.records import Record
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

from .helpers import eventually, read_db, records

pytestmark = pytest.mark.anyio


class FlakyStrategy(MemoryStrategy):
    """Raises for its first ``failures`` polls, then hands out its records."""

    def __init__(self, items: Sequence[Record], failures: int, clock: FakeClock) -> None:
        super().__init__(items, name="flaky")
        self.failures = failures
        self.clock = clock
        self.poll_times: list[float] = []

    async def poll(self) -> Sequence[Any]:
        self.poll_times.append(self.clock.now())
        if len(self.poll_times) <= self.failures:
            self.polls += 1
            raise ConnectionError("crm timed out: token=abc")
        return await super().poll()


def hub_for(tmp_path: Path, strategies: list[Any], clock: FakeClock, **options: Any) -> DispatchHub:
    dialer = MemoryDialer(clock, default=Answer(1))
    options.setdefault("poll_interval_s", 5.0)
    return DispatchHub(dialer, strategies, db=tmp_path / "hub.db", clock=clock, **options)


async def test_a_poll_that_always_raises_never_ends_a_run_as_idle_and_done(tmp_path: Path):
    clock = FakeClock()
    strategy = MemoryStrategy()
    strategy.poll_error = OSError("disk gone")
    hub = hub_for(tmp_path, [strategy], clock)
    async with clock.autojump():
        with anyio.fail_after(30), pytest.raises(SourceFailing) as info:
            await hub.run(until_idle=True)
    assert info.value.source == "memory"
    assert str(info.value) == ("strategy 'memory': poll() failed 5 times in a row; "
                               "last error: OSError: disk gone")
    assert strategy.polls == GIVE_UP_AFTER


async def test_failing_polls_back_off_and_recover(tmp_path: Path):
    clock = FakeClock()
    strategy = FlakyStrategy(records(2), failures=3, clock=clock)
    hub = hub_for(tmp_path, [strategy], clock)
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    gaps = [b - a for a, b in zip(strategy.poll_times, strategy.poll_times[1:4], strict=False)]
    assert gaps == [FIRST_RETRY_S, 2 * FIRST_RETRY_S, 4 * FIRST_RETRY_S]
    rows, _ = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"}
    assert hub.statistics().failing_sources == ()


async def test_statistics_show_the_failing_source(tmp_path: Path):
    clock = FakeClock()
    strategy = FlakyStrategy(records(1), failures=10**6, clock=clock)
    hub = hub_for(tmp_path, [strategy], clock)
    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)  # a daemon keeps retrying
        await eventually(lambda: len(strategy.poll_times) == 1)
        await eventually(lambda: hub.statistics().failing_sources != ())
        (failure,) = hub.statistics().failing_sources
        assert (failure.strategy, failure.consecutive_failures) == ("flaky", 1)
        assert failure.last_error == "ConnectionError: crm timed out: token=abc"
        assert failure.next_retry_at == clock.now() + FIRST_RETRY_S
        for n in range(2, GIVE_UP_AFTER + 3):  # past the one-shot limit: still polling
            clock.advance(hub.statistics().failing_sources[0].next_retry_at - clock.now())
            await eventually(lambda n=n: len(strategy.poll_times) == n)
        await eventually(
            lambda: hub.statistics().failing_sources[0].consecutive_failures == GIVE_UP_AFTER + 2)
        assert hub.running
        await hub.stop()


async def test_a_poll_returning_none_is_a_failure_not_a_crash(tmp_path: Path):
    class NoneStrategy(MemoryStrategy):
        async def poll(self) -> Any:
            self.polls += 1
            return None

    clock = FakeClock()
    hub = hub_for(tmp_path, [NoneStrategy(name="nones"), MemoryStrategy(records(2))], clock)
    async with clock.autojump():
        with anyio.fail_after(30), pytest.raises(SourceFailing, match="returned NoneType"):
            await hub.run(until_idle=True)
    rows, _ = await read_db(tmp_path / "hub.db")
    assert {r["status"] for r in rows.values()} == {"completed"}  # the good source's records


class Checked(MemoryStrategy):
    def __init__(self, error: BaseException | None, items: Sequence[Record] = ()) -> None:
        super().__init__(items, name="checked")
        self.error = error
        self.preflights = 0

    async def preflight(self) -> None:
        self.preflights += 1
        if self.error is not None:
            raise self.error


async def test_a_preflight_error_raises_before_anything_is_dialled_or_stored(tmp_path: Path):
    clock = FakeClock()
    error = PreflightError("--greeting uses {first_name}; the file has: name, phone",
                           option="--greeting")
    strategy = Checked(error, records(3))
    hub = hub_for(tmp_path, [MemoryStrategy(records(2, prefix="o")), strategy], clock)
    with pytest.raises(PreflightError) as info:
        await hub.run(until_idle=True)
    assert info.value is error and strategy.preflights == 1 and strategy.polls == 0
    assert not (tmp_path / "hub.db").exists()


async def test_a_preflight_that_crashes_is_one_line_naming_the_strategy(tmp_path: Path):
    hub = hub_for(tmp_path, [Checked(KeyError("phone"))], FakeClock())
    with pytest.raises(PreflightError, match=r"^strategy 'checked': preflight failed: KeyError"):
        await hub.run(until_idle=True)


async def test_an_unusable_source_ends_a_one_shot_run(tmp_path: Path):
    error = SourceUnusable("leads.csv: empty file", source="leads.csv")
    hub = hub_for(tmp_path, [Checked(error, records(1))], FakeClock())
    with pytest.raises(SourceUnusable, match="empty file"):
        await hub.run(until_idle=True)
    assert not (tmp_path / "hub.db").exists()


async def test_an_unusable_source_does_not_stop_a_daemon(tmp_path: Path):
    clock = FakeClock()
    strategy = Checked(SourceUnusable("leads.csv: missing", source="leads.csv"), records(2))
    hub = hub_for(tmp_path, [strategy], clock)
    async with clock.autojump(), anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await eventually(lambda: hub.statistics().completed == 2)
        await hub.stop()
    assert strategy.preflights == 1


async def test_a_poll_raising_source_unusable_ends_a_one_shot_run_at_once(tmp_path: Path):
    clock = FakeClock()
    strategy = MemoryStrategy(records(1))
    strategy.poll_error = SourceUnusable("leads.csv: no phone column (found: a, b)",
                                         source="leads.csv")
    hub = hub_for(tmp_path, [strategy], clock)
    async with clock.autojump():
        with anyio.fail_after(30), pytest.raises(SourceUnusable, match="no phone column"):
            await hub.run(until_idle=True)
    assert strategy.polls == 1


async def test_a_daemon_warns_once_per_state_change_of_an_unusable_source(tmp_path: Path):
    from structlog.testing import capture_logs

    clock = FakeClock()
    missing = SourceUnusable("leads.csv: no such file", source="leads.csv")
    strategy = Checked(missing, records(1))
    strategy.poll_error = missing
    hub = hub_for(tmp_path, [strategy], clock)
    with capture_logs() as logs:
        async with clock.autojump(), anyio.create_task_group() as tg:
            tg.start_soon(hub.run)
            await eventually(lambda: strategy.polls >= 3)
            strategy.poll_error = SourceUnusable("leads.csv: empty file", source="leads.csv")
            await eventually(lambda: strategy.polls >= 5)
            strategy.poll_error = None
            await eventually(lambda: hub.statistics().completed == 1)
            await hub.stop()
    warnings = [e["error"] for e in logs if e["event"] == "source unusable"]
    assert warnings == ["SourceUnusable: leads.csv: no such file",
                        "SourceUnusable: leads.csv: empty file"]
