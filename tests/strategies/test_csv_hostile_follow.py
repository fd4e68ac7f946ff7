"""Hostile files that change or vanish while the strategy follows them."""

from __future__ import annotations

import codecs
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from csv_corpus import phone_for
from csv_helpers import age, append, drain, write
from structlog.testing import capture_logs

from dispatch.records import Record
from dispatch.strategies import CsvStrategy

pytestmark = pytest.mark.anyio

HEADER = "name,phone\n"


def row(line: int) -> str:
    return f"n{line},{phone_for(line)}\n"


def good(records: list[Record]) -> list[str]:
    return [r.phone for r in records if r.invalid_detail is None]


def bad(records: list[Record]) -> list[tuple[str, str]]:
    return sorted(
        (str(r.metadata["_invalid"]).split(":")[0], str(r.metadata["_invalid_reason"]))
        for r in records
        if r.invalid_detail is not None
    )


async def appended_with_bad_rows(path: Path) -> None:
    write(path, HEADER + row(2) + row(3))
    strategy = CsvStrategy(path)
    assert good(await drain(strategy)) == [phone_for(2), phone_for(3)]
    appended = row(4) + f'n5,{phone_for(5)},"open\n' + row(6) + "nMARK7,+1\n" + row(8)
    append(path, appended.encode().replace(b"MARK", b"\xff"))  # line 7: invalid UTF-8
    age(path)
    records = await drain(strategy)
    assert good(records) == [phone_for(4), phone_for(6), phone_for(8)]
    assert bad(records) == [("line 5", "invalid_row"), ("line 7", "invalid_encoding")]


async def truncated_and_rewritten(path: Path) -> None:
    write(path, HEADER + row(2) + row(3) + row(4))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 3
    write(path, HEADER + row(2) + row(3) + f'n4,{phone_for(9)},"x\n')
    age(path)
    records = await drain(strategy)
    assert good(records) == [] and bad(records) == [("line 4", "invalid_row")]


async def deleted_then_recreated(path: Path) -> None:
    write(path, HEADER + row(2))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 1
    os.unlink(path)
    with capture_logs() as logs:
        assert await drain(strategy) == []
        assert await drain(strategy) == []
    assert [e["event"] for e in logs] == ["csv file not found; waiting for it"]
    write(path, HEADER + row(2) + row(3))
    assert good(await drain(strategy)) == [phone_for(3)]


async def half_written_last_line(path: Path) -> None:
    write(path, HEADER + row(2) + "n3,+1415")
    strategy = CsvStrategy(path)
    assert good(await drain(strategy)) == [phone_for(2)]
    append(path, phone_for(3)[len("+1415"):] + "\n")
    assert good(await drain(strategy)) == [phone_for(3)]


async def open_quote_completed_later(path: Path) -> None:
    write(path, HEADER.replace("\n", ",notes\n") + f'n2,{phone_for(2)},"first\n')
    strategy = CsvStrategy(path)
    assert await drain(strategy) == []
    append(path, 'second"\n' + f"n4,{phone_for(4)},x\n")
    records = await drain(strategy)
    assert good(records) == [phone_for(2), phone_for(4)]
    assert records[0].metadata["notes"] == "first\nsecond"


async def open_quote_after_an_invalid_byte(path: Path) -> None:
    header = HEADER.replace("\n", ",notes\n")
    write(path, (header + f"nMARK2,{phone_for(2)},x\n" + f'n3,{phone_for(3)},"first\n').encode()
          .replace(b"MARK", b"\xe9"))
    strategy = CsvStrategy(path)
    records = await drain(strategy)
    assert good(records) == [] and bad(records) == [("line 2", "invalid_encoding")]
    append(path, 'second"\n' + f"n5,{phone_for(5)},x\n")
    records = await drain(strategy)
    assert good(records) == [phone_for(3), phone_for(5)] and bad(records) == []


async def conflict_appended_later(path: Path) -> None:
    write(path, "id,phone\n" + f"a1,{phone_for(2)}\n")
    strategy = CsvStrategy(path)
    assert good(await drain(strategy)) == [phone_for(2)]
    append(path, f"a1,{phone_for(2)}\n" + f"a1,{phone_for(4)}\n")
    (conflict,) = await drain(strategy)
    assert conflict.id == "a1~line4" and conflict.phone == phone_for(4)
    assert conflict.metadata["_invalid_reason"] == "duplicate_id_conflict"
    text = str(conflict.metadata["_invalid"])
    assert text.startswith("line 4: id 'a1' is already used by line 2 with different content")
    fresh = await drain(CsvStrategy(path))  # a restart sees the same, with the same ids
    assert [r.id for r in fresh] == ["a1", "a1~line4"]


async def appended_to_cr_only_file(path: Path) -> None:
    write(path, HEADER.replace("\n", "\r") + row(2).replace("\n", "\r"))
    strategy = CsvStrategy(path)
    assert good(await drain(strategy)) == [phone_for(2)]
    append(path, row(3).replace("\n", "\r"))
    assert good(await drain(strategy)) == [phone_for(3)]


async def appended_to_utf16_file(path: Path) -> None:
    write(path, codecs.BOM_UTF16_LE + (HEADER + row(2)).encode("utf-16-le"))
    strategy = CsvStrategy(path)
    assert good(await drain(strategy)) == [phone_for(2)]
    append(path, row(3).encode("utf-16-le"))
    assert good(await drain(strategy)) == [phone_for(3)]


async def becomes_binary_then_restored(path: Path) -> None:
    write(path, HEADER + row(2))
    strategy = CsvStrategy(path)
    assert len(await drain(strategy)) == 1
    write(path, b"\x00\x01\x02" * 100)
    with capture_logs() as logs:
        assert await drain(strategy) == []
        assert await drain(strategy) == []
    assert [e["event"] for e in logs] == ["csv file cannot be used"]
    assert "not a text CSV file" in logs[0]["error"]
    write(path, HEADER + row(2) + row(3))
    assert good(await drain(strategy)) == [phone_for(3)]


SCENARIOS: list[Callable[[Path], Awaitable[None]]] = [
    appended_with_bad_rows,
    truncated_and_rewritten,
    deleted_then_recreated,
    half_written_last_line,
    open_quote_completed_later,
    open_quote_after_an_invalid_byte,
    conflict_appended_later,
    appended_to_cr_only_file,
    appended_to_utf16_file,
    becomes_binary_then_restored,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
async def test_changing_file(tmp_path: Path, scenario: Callable[[Path], Awaitable[None]]) -> None:
    await scenario(tmp_path / "leads.csv")
