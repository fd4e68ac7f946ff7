"""CsvStrategy inside a running DispatchHub: rows appended and the file rewritten mid-run."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from csv_helpers import age

from dispatch.clock import SystemClock
from dispatch.hub import DispatchHub
from dispatch.strategies import CsvStrategy
from dispatch.testing import Answer, FakeClock, MemoryDialer
from tests.hub.helpers import read_db

pytestmark = pytest.mark.anyio

HEADER = "name,phone,service\n"


def _row(i: int) -> str:
    return f"Person {i},+1415555{2000 + i:04d},Eye Exam\n"


async def _until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    with anyio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling observable test state
            await anyio.sleep(0.01)


async def test_appended_and_rewritten_file_while_the_hub_runs(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(HEADER + "".join(_row(i) for i in range(5)), encoding="utf-8")
    clock = SystemClock()
    dialer = MemoryDialer(clock, default=Answer(0.01))
    csv = CsvStrategy(path, greeting="Hi {name}, about your {service}.")
    hub = DispatchHub(dialer, [csv], db=tmp_path / "hub.db", poll_interval_s=0.05,
                      max_concurrent=3, clock=clock)

    def dialled() -> list[str]:
        return [d.to for d in dialer.dials]

    async with anyio.create_task_group() as tg:
        tg.start_soon(hub.run)
        await _until(lambda: len(dialled()) == 5)

        # rows appended while running, the last one half-written
        with path.open("a", encoding="utf-8") as fh:
            fh.write(_row(5) + _row(6) + "Person 7,+1415555")
        await _until(lambda: len(dialled()) == 7)
        await anyio.sleep(0.3)
        assert len(dialled()) == 7, "a half-written line must wait"
        with path.open("a", encoding="utf-8") as fh:
            fh.write("2007,Eye Exam\n")
        await _until(lambda: len(dialled()) == 8)

        # the file is replaced by a reordered copy with one new row: only that row is new
        rows = [_row(i) for i in range(9)]
        rows.reverse()
        tmp = tmp_path / "leads.tmp"
        tmp.write_text(HEADER + "".join(rows), encoding="utf-8")
        os.replace(tmp, path)
        await _until(lambda: len(dialled()) == 9)
        await anyio.sleep(0.3)

        # and truncated to its header, then refilled with an old row and a new one
        path.write_text(HEADER, encoding="utf-8")
        await anyio.sleep(0.2)
        path.write_text(HEADER + _row(0) + _row(9), encoding="utf-8")
        await _until(lambda: len(dialled()) == 10)
        await anyio.sleep(0.3)
        await hub.stop()

    await csv.aclose()
    assert sorted(dialled()) == sorted(f"+1415555{2000 + i:04d}" for i in range(10))
    assert len(set(dialled())) == 10, "nobody is dialled twice"
    greetings = {d.to: d.greeting for d in dialer.dials}
    assert greetings["+14155552007"] == "Hi Person 7, about your Eye Exam."


async def test_unreadable_rows_reach_the_store_with_their_reason(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(
        b"id,name,phone\n"
        b"a1,Ana,+14155550001\n"
        b'a2,"Bo" Jr,+14155550002\n'  # text after a closing quote: this row only
        b"a3,Cy,+14155550003\n"
        b"a4,D\xe9,+14155550004\n"  # Latin-1 in a UTF-8 file: this row only
        b"a1,Ana,+14155550009\n"  # a1 again with another phone
        b'a5,"Ed,+14155550005\n'  # a quote that never closes
        b"a6,Flo,+14155550006\n"
    )
    age(path)
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(1.0))
    csv = CsvStrategy(path)
    hub = DispatchHub(dialer, [csv], db=tmp_path / "hub.db", clock=clock)
    async with clock.autojump():
        await hub.run(until_idle=True)
    await csv.aclose()
    assert sorted(d.to for d in dialer.dials) == [
        "+14155550001", "+14155550003", "+14155550006"
    ]
    rows, _ = await read_db(tmp_path / "hub.db")
    skipped = {
        rid: (row["last_reason"], row["error"].split(": ", 1)[1][:7])
        for rid, row in rows.items() if row["status"] == "skipped"
    }
    assert skipped == {
        next(r for r in rows if r.startswith("line:3:")): ("invalid_row", "line 3:"),
        next(r for r in rows if r.startswith("line:5:")): ("invalid_encoding", "line 5:"),
        "a1~line6": ("duplicate_id_conflict", "line 6:"),
        next(r for r in rows if r.startswith("line:7:")): ("invalid_row", "line 7:"),
    }
    assert "--encoding latin-1" in next(r["error"] for r in rows.values()
                                        if r["last_reason"] == "invalid_encoding")


async def test_national_numbers_pass_preflight_when_the_hub_has_the_region(
    tmp_path: Path,
) -> None:
    from dispatch.errors import PreflightError

    path = tmp_path / "national.csv"
    path.write_text("name,phone\nAna,(415) 555-0101\nBo,415 555 0102\n", encoding="utf-8")
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(1.0))
    # positive control: without any region the campaign is refused before dialling
    with pytest.raises(PreflightError, match="--region"):
        await DispatchHub(dialer, [CsvStrategy(path)], db=tmp_path / "a.db",
                          clock=clock).run(until_idle=True)
    assert dialer.dials == []
    # the region given to the hub (not to the strategy) reads them: no refusal
    hub = DispatchHub(dialer, [CsvStrategy(path)], db=tmp_path / "b.db", clock=clock,
                      default_region="US", poll_interval_s=1000, drain_timeout_s=None)
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    assert sorted(d.to for d in dialer.dials) == ["+14155550101", "+14155550102"]
