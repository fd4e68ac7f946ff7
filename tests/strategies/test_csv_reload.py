"""Hot reload: appends parsed incrementally, partial lines held back, rewrites re-read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from csv_helpers import age, append, bump_mtime, drain, phones, write

from dispatch.strategies import CsvStrategy

pytestmark = pytest.mark.anyio

HEADER = "name,phone\n"


def rows(start: int, count: int) -> str:
    return "".join(f"n{i},+1415555{i:04d}\n" for i in range(start, start + count))


async def test_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 3))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 3
    before = strategy.statistics()
    assert await strategy.poll() == []
    after = strategy.statistics()
    assert (after.bytes_parsed, after.full_reads, after.incremental_reads) == (
        before.bytes_parsed,
        before.full_reads,
        before.incremental_reads,
    )


async def test_appended_rows_are_parsed_incrementally(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 200))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 200
    parsed_before = strategy.statistics().bytes_parsed
    new = rows(200, 5)
    append(path, new)
    records = await drain(strategy)
    assert phones(records) == [f"+1415555{i:04d}" for i in range(200, 205)]
    stats = strategy.statistics()
    assert stats.full_reads == 1
    assert stats.incremental_reads == 1
    assert stats.bytes_parsed - parsed_before == len(HEADER) + len(new)


async def test_partial_last_line_is_held_back_until_complete(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 1) + "n1,+1415")
    strategy = CsvStrategy(path)
    assert phones(await drain(strategy)) == ["+14155550000"]
    append(path, "5550001\nn2,+14155")
    assert phones(await drain(strategy)) == ["+14155550001"]
    append(path, "550002\n")
    assert phones(await drain(strategy)) == ["+14155550002"]


async def test_open_quoted_field_is_held_back(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, 'name,phone,notes\nA,+14155550000,"first line\n')
    strategy = CsvStrategy(path)
    assert await drain(strategy) == []
    append(path, 'second line"\n')
    (record,) = await drain(strategy)
    assert record.metadata["notes"] == "first line\nsecond line"


async def test_unterminated_last_line_is_taken_once_settled(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 1) + "n1,+14155550001")
    strategy = CsvStrategy(path, settle_s=5.0)
    assert phones(await drain(strategy)) == ["+14155550000"]
    age(path, 10.0)
    assert phones(await drain(strategy)) == ["+14155550001"]
    append(path, "\n" + rows(2, 1))
    assert phones(await drain(strategy)) == ["+14155550002"]


async def test_in_place_edit_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 2))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 2
    write(path, HEADER + rows(0, 1) + "n9,+14155550009\n")  # same size, new content
    bump_mtime(path)
    assert phones(await drain(strategy)) == ["+14155550009"]
    assert strategy.statistics().full_reads == 2


async def test_truncated_file_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 5))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 5
    write(path, HEADER + rows(1, 1) + rows(50, 1))
    assert phones(await drain(strategy)) == ["+14155550050"]


async def test_edit_before_offset_with_growth_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 3))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 3
    write(path, HEADER + "x,+14155550077\n" + rows(1, 3))  # grew, but not by appending
    bump_mtime(path)
    assert phones(await drain(strategy)) == ["+14155550077", "+14155550003"]
    assert strategy.statistics().incremental_reads == 0


async def test_replaced_file_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 2))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 2
    other = tmp_path / "new.csv"
    write(other, HEADER + rows(0, 2) + rows(7, 1))
    os.replace(other, path)
    assert phones(await drain(strategy)) == ["+14155550007"]


async def test_reordered_rows_give_no_new_records(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 20))
    strategy = CsvStrategy(path)
    first = await drain(strategy)
    write(path, HEADER + "".join(reversed(rows(0, 20).splitlines(keepends=True))))
    bump_mtime(path)
    assert await drain(strategy) == []
    fresh = await drain(CsvStrategy(path))
    assert sorted(r.id for r in fresh) == sorted(r.id for r in first)


async def test_reordered_columns_keep_ids(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write(a, "name,phone,city\nAna,+14155550001,Rome\n")
    write(b, "city;phone;name;empty\nRome;+14155550001;Ana;\n")
    (ra,) = await drain(CsvStrategy(a))
    (rb,) = await drain(CsvStrategy(b))
    assert ra.id == rb.id


async def test_file_deleted_and_recreated(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, HEADER + rows(0, 2))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 2
    path.unlink()
    assert await drain(strategy) == []
    write(path, HEADER + rows(0, 3))
    assert phones(await drain(strategy)) == ["+14155550002"]
