"""Outcome write-back into the CSV (atomic, appends survive) and the results file."""

from __future__ import annotations

import codecs
import csv
import os
from pathlib import Path

import pytest
from csv_helpers import age, drain, phones, write

from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.strategies import CsvStrategy
from dispatch.strategies._csv_writeback import StatusWriteBack
from dispatch.strategy import Outcome

pytestmark = pytest.mark.anyio


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def outcome(record: Record, reason: Reason, disposition: str | None = None) -> Outcome:
    status = "completed" if reason is Reason.HANGUP else "failed"
    return Outcome(record, status, reason, 1, call_id="CA1", disposition=disposition)


async def test_status_written_back_and_never_redialled(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone\nAna,+14155550001\nBob,+14155550002\nCy,+14155550003\n")
    strategy = CsvStrategy(path, write_back="status")
    ana, bob, cy = await drain(strategy)
    inode = os.stat(path).st_ino
    await strategy.record_outcome(outcome(ana, Reason.HANGUP, "confirmed"))
    await strategy.record_outcome(outcome(bob, Reason.NO_ANSWER))
    assert await strategy.poll() == []  # flushes, re-reads our own rewrite, finds nothing new
    assert path.read_text() == (
        "name,phone,status\nAna,+14155550001,confirmed\nBob,+14155550002,no_answer\n"
        "Cy,+14155550003,\n"
    )
    assert os.stat(path).st_ino != inode  # replaced atomically
    assert os.listdir(tmp_path) == ["leads.csv"]  # no temp file left
    assert phones(await drain(CsvStrategy(path))) == ["+14155550003"]  # next run skips done
    await strategy.record_outcome(outcome(cy, Reason.BUSY))
    await strategy.aclose()
    assert path.read_text().endswith("Cy,+14155550003,busy\n")


async def test_write_back_keeps_format(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "\ufeffnom;phone\r\nJosé;+14155550001\r\n".encode("utf-8"))
    strategy = CsvStrategy(path, write_back="status")
    (record,) = await drain(strategy)
    await strategy.record_outcome(outcome(record, Reason.HANGUP))
    await strategy.aclose()
    assert path.read_bytes() == "\ufeffnom;phone;status\r\nJosé;+14155550001;hangup\r\n".encode()


async def test_write_back_latin1(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone\nJosé,+14155550001\n", encoding="latin-1")
    strategy = CsvStrategy(path, write_back="status", encoding="latin-1")
    (record,) = await drain(strategy)
    await strategy.record_outcome(outcome(record, Reason.BUSY))
    await strategy.aclose()
    assert path.read_bytes() == "name,phone,status\nJosé,+14155550001,busy\n".encode("latin-1")


async def test_rows_appended_during_write_back_survive(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone\nAna,+14155550001\nBo,+1415")  # a partial line, too
    strategy = CsvStrategy(path, write_back="status")
    (ana,) = await drain(strategy)

    class RacingWriteBack(StatusWriteBack):
        def _replace(self, content: bytes, st: os.stat_result, copied_from: int) -> None:
            with open(path, "ab") as f:  # another process appends mid-flush
                f.write(b"5550002\nCy,+14155550003\n")
            super()._replace(content, st, copied_from)

    strategy._outcomes.status_writer = RacingWriteBack(path, "status")
    await strategy.record_outcome(outcome(ana, Reason.HANGUP, "confirmed"))
    records = await drain(strategy)
    assert path.read_text() == (
        "name,phone,status\nAna,+14155550001,confirmed\nBo,+14155550002\nCy,+14155550003\n"
    )
    assert phones(records) == ["+14155550002", "+14155550003"]


async def test_write_back_postponed_while_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone\n+14155550001\n")
    strategy = CsvStrategy(path, write_back="status")
    (record,) = await drain(strategy)
    content = path.read_bytes()
    path.unlink()
    await strategy.record_outcome(outcome(record, Reason.HANGUP))
    assert await strategy.poll() == []
    assert strategy.statistics().outcomes_queued == 1
    write(path, content)
    assert await strategy.poll() == []
    assert path.read_text() == "phone,status\n+14155550001,hangup\n"


async def test_results_file(tmp_path: Path) -> None:
    path, results = tmp_path / "leads.csv", tmp_path / "results.csv"
    write(path, "phone\n+14155550001\n+14155550002\n")
    strategy = CsvStrategy(path, results_file=results)
    one, two = await drain(strategy)
    await strategy.record_outcome(outcome(one, Reason.HANGUP, "confirmed"))
    await strategy.poll()
    await strategy.record_outcome(outcome(two, Reason.NO_ANSWER))
    await strategy.aclose()
    rows = read_rows(results)
    assert [(r["id"], r["phone"], r["status"], r["reason"]) for r in rows] == [
        (one.id, "+14155550001", "confirmed", "hangup"),
        (two.id, "+14155550002", "no_answer", "no_answer"),
    ]
    assert rows[0]["attempts"] == "1" and rows[0]["call_id"] == "CA1" and rows[0]["at"]
    assert path.read_text() == "phone\n+14155550001\n+14155550002\n"  # source untouched


FORMULAS = ['=HYPERLINK("http://x","y")', "=2+3"]


async def test_written_words_are_neutralised_user_cells_kept(tmp_path: Path) -> None:
    path, results = tmp_path / "leads.csv", tmp_path / "results.csv"
    write(path, "name,phone,note\n=1+1,+14155550001,@keep\nBo,+14155550002,-x\n")
    strategy = CsvStrategy(path, write_back="status", results_file=results)
    one, two = await drain(strategy)
    await strategy.record_outcome(outcome(one, Reason.HANGUP, FORMULAS[0]))
    await strategy.record_outcome(outcome(two, Reason.HANGUP, FORMULAS[1]))
    await strategy.aclose()
    assert path.read_text() == (
        "name,phone,note,status\n"
        '=1+1,+14155550001,@keep,"\'=HYPERLINK(""http://x"",""y"")"\n'
        "Bo,+14155550002,-x,'=2+3\n"
    )
    rows = read_rows(results)
    assert [(r["status"], r["disposition"], r["phone"]) for r in rows] == [
        ("'" + FORMULAS[0], "'" + FORMULAS[0], "+14155550001"),
        ("'=2+3", "'=2+3", "+14155550002"),
    ]


async def test_results_file_neutralises_every_cell(tmp_path: Path) -> None:
    path, results = tmp_path / "leads.csv", tmp_path / "results.csv"
    write(path, "id,phone\n=cmd|' /C calc'!A0,+14155550001\n")
    strategy = CsvStrategy(path, results_file=results)
    (record,) = await drain(strategy)
    await strategy.record_outcome(outcome(record, Reason.HANGUP))
    await strategy.aclose()
    (row,) = read_rows(results)
    assert row["id"] == "'=cmd|' /C calc'!A0"
    assert all(not v.startswith(("=", "@")) for v in row.values())


async def _write_back_all(path: Path, words: dict[str, str], **options: str) -> None:
    """Drain the file and write ``words[phone]`` back for the records that have one."""
    strategy = CsvStrategy(path, write_back="status", **options)
    for record in await drain(strategy):
        if record.phone in words:
            await strategy.record_outcome(outcome(record, Reason.HANGUP, words[record.phone]))
    await strategy.aclose()


async def test_user_cells_stay_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    original = (
        'name,phone,status,notes\r\n"Ana",+14155550001,,"x ""y"" z"\r\n'
        '"Bo, Jr",+14155550002,,"two\nlines"\r\nCy,+14155550003,,=1+1\r\n'
    )
    write(path, original)
    await _write_back_all(path, {"+14155550002": "=2+3", "+14155550003": "a,b"})
    assert path.read_bytes().decode() == (
        'name,phone,status,notes\r\n"Ana",+14155550001,,"x ""y"" z"\r\n'
        "\"Bo, Jr\",+14155550002,'=2+3,\"two\nlines\"\r\nCy,+14155550003,\"a,b\",=1+1\r\n"
    )


async def test_unreadable_rows_survive_write_back(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    data = b'name,phone\nAna,+14155550001\nB\xffo,+14155550002\nx,"open\nCy,+14155550003\n'
    write(path, data)
    age(path)
    await _write_back_all(path, {"+14155550001": "confirmed", "+14155550003": "busy"})
    assert path.read_bytes() == (
        b'name,phone,status\nAna,+14155550001,confirmed\nB\xffo,+14155550002\nx,"open\n'
        b"Cy,+14155550003,busy\n"
    )


async def test_write_back_into_utf16_and_cr_only_files(tmp_path: Path) -> None:
    utf16, cr = tmp_path / "u16.csv", tmp_path / "cr.csv"
    text = "name,phone\nZoë,+14155550001\nBo,+14155550002\n"
    write(utf16, codecs.BOM_UTF16_BE + text.encode("utf-16-be"))
    write(cr, text.replace("\n", "\r"))
    for path in (utf16, cr):
        await _write_back_all(path, {"+14155550002": "busy"})
    expected = "name,phone,status\nZoë,+14155550001,\nBo,+14155550002,busy\n"
    assert utf16.read_bytes() == codecs.BOM_UTF16_BE + expected.encode("utf-16-be")
    assert cr.read_bytes() == expected.replace("\n", "\r").encode()


async def test_ragged_rows_get_the_cell_at_the_status_index(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone,name,city\n+14155550001\n+14155550002,Bo,Rome,extra\n")
    await _write_back_all(path, {"+14155550001": "busy", "+14155550002": "hangup"})
    assert path.read_text() == (
        "phone,name,city,status\n+14155550001,,,busy\n+14155550002,Bo,Rome,hangup,extra\n"
    )
