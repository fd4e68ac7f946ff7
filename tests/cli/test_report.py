"""``dispatch report``: lead columns, last call, source order, attempts, safe CSV,
one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import anyio
import polars as pl
import pytest

from dispatch.cli.main import main as cli_main
from tests.cli.campaign import run_campaign


@pytest.fixture
def campaign_db(tmp_path: Path) -> Path:
    db = tmp_path / "c.db"
    anyio.run(run_campaign, db)
    return db


def _report(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli_main(["report", *args]) == 0
    return capsys.readouterr().out


def test_csv_report_has_lead_columns_last_call_and_source_order(
    campaign_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _report(capsys, "--db", str(campaign_db), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["c", "a", "d", "b"]  # the source's order
    header = list(rows[0])
    assert header[:4] == ["id", "phone", "name", "appointment"]
    assert not any(name.startswith("_") or "invalid" in name for name in header)
    by_id = {r["id"]: r for r in rows}
    assert by_id["a"]["status"] == "skipped" and by_id["a"]["last_reason"] == "invalid_phone"
    assert by_id["a"]["name"] == "Priya"
    assert "row 4: field 'first_name' is empty" in by_id["d"]["error"]
    b = by_id["b"]
    assert (b["status"], b["attempts"], b["last_reason"]) == ("completed", "2", "hangup")
    assert float(b["last_duration_s"]) == pytest.approx(12.5)
    assert b["last_answered_at"].startswith("20") and b["last_raw_reason"] == "hangup"
    assert by_id["a"]["last_duration_s"] == "" and by_id["a"]["attempts"] == "0"


def test_csv_report_neutralises_formulas(
    campaign_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _report(capsys, "--db", str(campaign_db), "--format", "csv")
    by_id = {r["id"]: r for r in csv.DictReader(io.StringIO(out))}
    assert by_id["c"]["name"] == "'=HYPERLINK(\"http://x\",\"click\")"
    assert by_id["d"]["appointment"] == "'=2+3"
    assert by_id["b"]["phone"] == "+15550000002"  # plain numbers are left alone
    # json keeps the lead's text as it was
    lines = [json.loads(x) for x in _report(capsys, "--db", str(campaign_db), "--format",
                                            "json").splitlines()]
    assert [x["id"] for x in lines] == ["c", "a", "d", "b"]
    assert lines[0]["name"] == "=HYPERLINK(\"http://x\",\"click\")"
    assert lines[3]["attempts"] == 2 and lines[3]["last_duration_s"] == pytest.approx(12.5)


def test_parquet_and_table_carry_the_same_columns(
    campaign_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "r.parquet"
    _report(capsys, "--db", str(campaign_db), "--format", "parquet", "--output", str(target))
    frame = pl.read_parquet(target)
    assert frame["id"].to_list() == ["c", "a", "d", "b"]
    assert {"name", "appointment", "last_duration_s", "last_answered_at", "error"} <= set(
        frame.columns)
    table = _report(capsys, "--db", str(campaign_db))
    assert "appointment" in table and "Lena" in table and "June 15" in table


def test_attempts_report_is_one_row_per_dial(
    campaign_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _report(capsys, "--db", str(campaign_db), "--format", "csv", "--attempts")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["record_id"], r["attempt_no"]) for r in rows] == [
        ("c", "1"), ("b", "1"), ("b", "2")]
    first_b, second_b = rows[1], rows[2]
    assert (first_b["reason"], first_b["raw_reason"], first_b["answered_at"]) == (
        "busy", "busy", "")
    assert second_b["reason"] == "hangup" and float(second_b["duration_s"]) == 12.5
    assert second_b["call_id"] and second_b["phone"] == "+15550000002"
    for column in ("claimed_at", "dialed_at", "answered_at", "ended_at", "disposition", "error"):
        assert column in rows[0]
    assert cli_main(["report", "--db", str(campaign_db), "--attempts"]) == 0
    assert "busy" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--db", "{dir}/notadb"], "--db"),
     (["--db", "{dir}/missing.db"], "--db"),
     (["--db", "{dir}/notadb", "--format", "xml"], "--format"),
     (["--db", "{dir}/c.db", "--format", "xml"], "--format")],
)
def test_bad_values_get_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    (tmp_path / "notadb").write_text("id,phone\n1,+15550000001\n", encoding="utf-8")
    (tmp_path / "c.db").write_bytes(b"")
    code = cli_main(["report", *(a.format(dir=tmp_path) for a in args)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert "Traceback" not in err


def test_status_refuses_a_file_that_is_not_a_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "leads.csv").write_text("id,phone\n1,+15550000001\n", encoding="utf-8")
    assert cli_main(["status", "--db", str(tmp_path / "leads.csv")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a SQLite database" in err
