"""File shapes: encodings, delimiters, quoting, ragged rows, missing files."""

from __future__ import annotations

from pathlib import Path

import pytest
from csv_helpers import age, append, drain, write
from structlog.testing import capture_logs

from dispatch.strategies import CsvStrategy

pytestmark = pytest.mark.anyio


async def test_utf8_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, b"\xef\xbb\xbfname,phone\r\nMaria,+14155550001\r\nCarlos,+14155550002\r\n")
    records = await drain(CsvStrategy(path))
    assert [(r.metadata["name"], r.phone) for r in records] == [
        ("Maria", "+14155550001"),
        ("Carlos", "+14155550002"),
    ]


async def test_quoted_commas_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, 'name,phone,notes\n"Doe, Jane",+14155550001,"line one\nline, two"\n')
    (record,) = await drain(CsvStrategy(path))
    assert record.metadata == {"name": "Doe, Jane", "notes": "line one\nline, two"}


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
async def test_delimiter_detected_from_header(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "leads.csv"
    rows = ["name", "phone", "city"], ["Ana", "+14155550001", "Paris, TX"]
    write(path, "".join(delimiter.join(r) + "\n" for r in rows))
    (record,) = await drain(CsvStrategy(path))
    assert record.phone == "+14155550001"
    assert record.metadata["city"] == "Paris, TX"


async def test_delimiter_option_wins(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone;note\n+14155550001;a,b,c,d\n")
    (record,) = await drain(CsvStrategy(path, delimiter=";"))
    assert record.metadata["note"] == "a,b,c,d"


async def test_latin1_encoding(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone\nJosé Müller,+14155550001\n", encoding="latin-1")
    (record,) = await drain(CsvStrategy(path, encoding="latin-1"))
    assert record.metadata["name"] == "José Müller"


async def test_every_column_is_text(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone,zip,amount\n4155550001,02134,1.50\n")
    (record,) = await drain(CsvStrategy(path, default_region="US"))
    assert record.phone == "+14155550001"
    assert record.metadata == {"zip": "02134", "amount": "1.50"}


async def test_ragged_rows_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone,city\nA,+14155550001\n\nB,+14155550002,Rome,extra\n,,\n")
    records = await drain(CsvStrategy(path))
    assert [r.metadata for r in records] == [
        {"name": "A", "city": ""},
        {"name": "B", "city": "Rome"},
    ]


async def test_header_only_then_rows(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone\n")
    strategy = CsvStrategy(path)
    assert await drain(strategy) == []
    assert strategy.statistics().state == "ok"
    append(path, "A,+14155550001\n")
    assert len(await drain(strategy)) == 1


async def test_missing_file_warns_once_and_is_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "later.csv"
    strategy = CsvStrategy(path)
    with capture_logs() as logs:
        for _ in range(3):
            assert await strategy.poll() == []
    assert [e["event"] for e in logs] == ["csv file not found; waiting for it"]
    assert logs[0]["log_level"] == "warning"
    write(path, "phone\n+14155550001\n")
    assert len(await drain(strategy)) == 1


async def test_unreadable_file_warns_once(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.mkdir()  # opening a directory fails even for root
    strategy = CsvStrategy(path)
    with capture_logs() as logs:
        for _ in range(3):
            assert await strategy.poll() == []
    assert [e["event"] for e in logs] == ["csv file cannot be read"]
    path.rmdir()
    write(path, "phone\n+14155550001\n")
    assert len(await drain(strategy)) == 1


async def test_stray_quote_in_a_field_is_read_literally(tmp_path: Path) -> None:
    # main dropped this row and every row after it, silently
    path = tmp_path / "leads.csv"
    write(path, 'phone,size\n+14155550000,ok\n+14155550001,5" screen\n+14155550002,big\n')
    age(path)
    records = await drain(CsvStrategy(path))
    assert [(r.phone, r.metadata["size"]) for r in records] == [
        ("+14155550000", "ok"), ("+14155550001", '5" screen'), ("+14155550002", "big")
    ]


async def test_unterminated_header_waits_then_settles(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone")
    strategy = CsvStrategy(path)
    assert await strategy.poll() == []
    age(path)
    assert await strategy.poll() == []
    assert strategy.statistics().state == "ok"
