"""Two CSV files are two sources: the same id in both is two records, each dialled,
each outcome delivered to its own strategy, also after a restart; one file twice
is refused."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.clock import SystemClock
from dispatch.hub import DispatchHub, RetryPolicy
from dispatch.reasons import Reason
from dispatch.strategies import CsvStrategy
from dispatch.testing import Answer, MemoryDialer

pytestmark = pytest.mark.anyio

A_ONE, A_TWO, B_ONE = "+14155550101", "+14155550102", "+14155550201"


async def _until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    with anyio.fail_after(timeout_s):
        while not predicate():  # noqa: ASYNC110 - polling observable test state
            await anyio.sleep(0.01)


def _hub(dialer: MemoryDialer, files: dict[str, Path], db: Path,
         got: dict[str, list[tuple[str, str, str]]]) -> DispatchHub:
    strategies = []
    for name, path in files.items():
        csv = CsvStrategy(path, settle_s=0.0)

        def done(record: Any, _call_id: Any, reason: Any, name: str = name) -> None:
            got[name].append((record.id, record.phone, str(reason)))

        csv.on_completed = done
        strategies.append(csv)
    return DispatchHub(dialer, strategies, db=db, poll_interval_s=0.05, clock=dialer.clock,
                       retry_policy=RetryPolicy(delays_s={Reason.BUSY: 0.5}, max_attempts=2))


async def test_the_same_id_in_two_files_is_two_records_across_a_restart(tmp_path: Path):
    files = {"a": tmp_path / "a.csv", "b": tmp_path / "b.csv"}
    files["a"].write_text(f"id,name,phone\n1,Ann,{A_ONE}\n2,Al,{A_TWO}\n", encoding="utf-8")
    files["b"].write_text(f"id,name,phone\n1,Bob,{B_ONE}\n", encoding="utf-8")
    db = tmp_path / "hub.db"
    got: dict[str, list[tuple[str, str, str]]] = {"a": [], "b": []}
    dialer = MemoryDialer(SystemClock(), script={B_ONE: ["busy", Answer(0.01)]},
                          default=Answer(0.01))

    first = _hub(dialer, files, db, got)
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.run)
        # A's two rows answered; B's row "1" busy: waiting for its retry
        await _until(lambda: len(got["a"]) == 2 and first.statistics().scheduled == 1)
        await first.stop()
    assert sorted(d.to for d in dialer.dials) == [A_ONE, A_TWO, B_ONE]

    second = _hub(dialer, files, db, got)  # a restart: new strategy objects, same files
    with anyio.fail_after(20):
        await second.run(until_idle=True)

    assert sorted(d.to for d in dialer.dials) == [A_ONE, A_TWO, B_ONE, B_ONE]
    assert sorted(got["a"]) == [("1", A_ONE, "hangup"), ("2", A_TWO, "hangup")]
    assert got["b"] == [("1", B_ONE, "hangup")]  # B's outcome went to B, not to A
    with sqlite3.connect(db) as conn:
        rows = sorted(conn.execute("SELECT source, id, phone, status FROM records"))
    key_a, key_b = (f"csv:{files[n].resolve()}" for n in ("a", "b"))
    assert rows == sorted([(key_a, "1", A_ONE, "completed"), (key_a, "2", A_TWO, "completed"),
                           (key_b, "1", B_ONE, "completed")])


async def test_one_file_twice_is_refused_naming_both(tmp_path: Path):
    path = tmp_path / "leads.csv"
    path.write_text(f"id,phone\n1,{A_ONE}\n", encoding="utf-8")
    (tmp_path / "link.csv").symlink_to(path)
    dialer = MemoryDialer(SystemClock())
    with pytest.raises(ValueError, match=r"strategies 0 \(CsvStrategy\) and 1 \(CsvStrategy\) "
                                         r"have the same key 'csv:.*leads\.csv'"):
        DispatchHub(dialer, [CsvStrategy(path), CsvStrategy(tmp_path / "link.csv")],
                    db=tmp_path / "hub.db")
    other = CsvStrategy(path)
    other.key = "leads-copy"  # an explicit key makes it a source of its own
    DispatchHub(dialer, [CsvStrategy(path), other], db=tmp_path / "hub.db")


async def test_rows_stored_before_source_keys_stay_known_after_the_upgrade(tmp_path: Path):
    """A 0002 database (rows carry only the strategy name ``csv``) is upgraded: its
    rows still belong to the CSV strategy, so nobody is dialled again, a stored retry
    is still made and its outcome still reaches the strategy."""
    db = tmp_path / "old.db"
    await _old_database(db, [("1", A_ONE, "completed", None), ("2", A_TWO, "scheduled", 1.0)])
    path = tmp_path / "a.csv"
    path.write_text(f"id,phone\n1,{A_ONE}\n2,{A_TWO}\n3,{B_ONE}\n", encoding="utf-8")
    got: dict[str, list[tuple[str, str, str]]] = {"a": []}
    dialer = MemoryDialer(SystemClock(), default=Answer(0.01))
    with anyio.fail_after(20):
        await _hub(dialer, {"a": path}, db, got).run(until_idle=True)
    assert sorted(d.to for d in dialer.dials) == [A_TWO, B_ONE]  # "1" was done already
    assert sorted(got["a"]) == [("2", A_TWO, "hangup"), ("3", B_ONE, "hangup")]
    with sqlite3.connect(db) as conn:
        rows = sorted(conn.execute("SELECT source, id, status, attempts FROM records"))
        tries = conn.execute("SELECT count(*) FROM attempts a JOIN records r"
                             " ON r.pk = a.record_pk WHERE r.id = '2'").fetchone()
    assert rows == [("csv", "1", "completed", 1), ("csv", "2", "completed", 2),
                    (f"csv:{path.resolve()}", "3", "completed", 1)]
    assert tries == (2,)


async def _old_database(db: Path, rows: list[tuple[str, str, str, float | None]]) -> None:
    """What the previous release wrote (schema 0002: records carry the name ``csv``)."""
    from dispatch.store.engine import create_engine, resolve_url
    from dispatch.store.migrate import upgrade

    engine = create_engine(resolve_url(db))
    await upgrade(engine, "0002")
    await engine.dispose()
    with sqlite3.connect(db) as conn:
        for seq, (rid, phone, status, due) in enumerate(rows, start=1):
            conn.execute(
                "INSERT INTO records (id, phone, strategy, status, attempts, payload, seq,"
                " next_attempt_at, created_at, updated_at) VALUES (?, ?, 'csv', ?, 1,"
                " '{}', ?, ?, 1.0, 1.0)", (rid, phone, status, seq, due))
            conn.execute("INSERT INTO attempts (record_id, attempt_no, phone, claimed_at,"
                         " reason) VALUES (?, 1, ?, 1.0, 'busy')", (rid, phone))


async def test_two_files_on_an_old_database_redial_nobody(tmp_path: Path):
    """Before 0004 two CSV strategies stored their rows alike (``csv``): after the
    upgrade each of them still knows every such row, so none is dialled again."""
    db = tmp_path / "old.db"
    await _old_database(db, [("1", A_ONE, "completed", None), ("2", A_TWO, "completed", None)])
    files = {"a": tmp_path / "a.csv", "b": tmp_path / "b.csv"}
    files["a"].write_text(f"id,phone\n1,{A_ONE}\n", encoding="utf-8")
    files["b"].write_text(f"id,phone\n2,{A_TWO}\n3,{B_ONE}\n", encoding="utf-8")
    got: dict[str, list[tuple[str, str, str]]] = {"a": [], "b": []}
    dialer = MemoryDialer(SystemClock(), default=Answer(0.01))
    with anyio.fail_after(20):
        await _hub(dialer, files, db, got).run(until_idle=True)
    assert [d.to for d in dialer.dials] == [B_ONE]
    assert got == {"a": [], "b": [("3", B_ONE, "hangup")]}
