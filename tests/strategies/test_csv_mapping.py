"""Default mapping, ids, status skipping, map_row, batching."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from csv_helpers import drain, phones, write
from structlog.testing import capture_logs

from dispatch.records import Record
from dispatch.strategies import CsvStrategy
from dispatch.strategies._csv_mapping import content_id

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("column", ["phone", "Phone Number", "phone-number", "MOBILE", " Tel "])
async def test_phone_column_found_by_name(tmp_path: Path, column: str) -> None:
    path = tmp_path / "leads.csv"
    write(path, f"name,{column}\nAna,+14155550001\n")
    (record,) = await drain(CsvStrategy(path))
    assert record.phone == "+14155550001"
    assert record.metadata == {"name": "Ana"}


async def test_content_id_is_pinned() -> None:
    # A persisted id must never change across releases: this value is frozen.
    row = {"name": "Maria", "phone": "+14155551234", "status": "done", "empty": None}
    assert content_id(row, exclude=["status"]) == "500b91fa30c1208fea793ae1"


async def test_ids_stable_across_instances_and_duplicates_collapse(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone\nA,+14155550001\nB,+14155550002\nA,+14155550001\n")
    first = await drain(CsvStrategy(path))
    second = await drain(CsvStrategy(path))
    assert [r.id for r in first] == [r.id for r in second]
    assert phones(first) == ["+14155550001", "+14155550002"]


async def test_id_column_is_used(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "id,phone\nlead-1,+14155550001\nlead-1,+14155550009\n,+14155550002\n")
    records = await drain(CsvStrategy(path))
    assert [r.id for r in records] == [
        "lead-1",
        "lead-1~line3",  # same id, other phone: kept as a skipped conflict, not dropped
        content_id({"phone": "+14155550002", "id": None}),
    ]
    assert phones(records) == ["+14155550001", "+14155550009", "+14155550002"]
    assert records[1].metadata["_invalid_reason"] == "duplicate_id_conflict"


async def test_rows_with_status_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone,status\n+14155550001,\n+14155550002,confirmed\n+14155550003,  \n")
    assert phones(await drain(CsvStrategy(path))) == ["+14155550001", "+14155550003"]


async def test_skip_statuses_and_no_status_column(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone,state\n+14155550001,retry\n+14155550002,Done\n")
    only_done = CsvStrategy(path, status_column="state", skip_statuses=["done"])
    assert phones(await drain(only_done)) == ["+14155550001"]
    assert len(await drain(CsvStrategy(path, status_column=None))) == 2


async def test_greeting_template_and_invalid_rows(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone,when\nAna,+14155550001,noon\n,+14155550002,noon\n")
    records = await drain(CsvStrategy(path, greeting="Hi {name}, see you at {when}."))
    assert records[0].greeting == "Hi Ana, see you at noon."
    assert "_invalid" not in records[0].metadata
    assert records[1].metadata["_invalid"] == "line 3: greeting field 'name' is empty"


async def test_greeting_field_that_is_not_a_column(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,phone\nAna,+14155550001\n")
    with capture_logs() as logs:
        (record,) = await drain(CsvStrategy(path, greeting="Hi {nmae}"))
    assert record.metadata["_invalid"] == "line 2: greeting field 'nmae' is not a column"
    assert any(e["event"] == "csv greeting template problem" for e in logs)


async def test_not_before_column(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone,not_before\n+14155550001,2030-01-02T03:04:05\n+14155550002,tomorrow\n")
    ok, bad = await drain(CsvStrategy(path))
    assert ok.not_before_ts is not None and ok.not_before is not None
    assert ok.not_before.year == 2030
    assert bad.metadata["_invalid"] == "line 3: not_before 'tomorrow' is not an ISO-8601 datetime"


async def test_missing_phone_column_is_an_error_then_fixed(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "name,cell\nAna,+14155550001\n")
    strategy = CsvStrategy(path)
    with capture_logs() as logs:
        assert await strategy.poll() == []
        assert await strategy.poll() == []
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("csv columns cannot be mapped", "error")
    ]
    assert "no phone column" in logs[0]["error"]
    assert not strategy.has_more
    write(path, "name,phone\nAna,+14155550001\n")
    assert len(await drain(strategy)) == 1


async def test_default_region(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone\n020 7946 0958\n")
    (record,) = await drain(CsvStrategy(path, default_region="GB"))
    assert record.phone == "+442079460958"


async def test_map_row_none_record_dict_and_raise(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "kind,phone\nskip,+14155550001\nrecord,+14155550002\ndict,+14155550003\nboom,+1\n")

    def map_row(row: Mapping[str, str | None]) -> Any:
        if row["kind"] == "skip":
            return None
        if row["kind"] == "record":
            return Record(id="r", phone=row["phone"] or "")
        if row["kind"] == "dict":
            return {"id": "d", "phone": row["phone"], "greeting": "hello"}
        raise ValueError("bad row")

    with capture_logs() as logs:
        records = await drain(CsvStrategy(path, map_row=map_row))
    assert [r.id for r in records[:2]] == ["r", "d"]
    assert records[1].greeting == "hello"
    assert records[2].metadata["_invalid"] == "line 5: map_row raised ValueError('bad row')"
    assert [e["problem"] for e in logs if e["event"] == "csv row rejected"] == [
        "line 5: map_row raised ValueError('bad row')"
    ]


async def test_map_row_sees_none_for_empty_fields(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, 'a,phone,c\n"",+14155550001\n')
    seen: list[dict[str, str | None]] = []

    def map_row(row: dict[str, str | None]) -> None:
        seen.append(row)

    assert await drain(CsvStrategy(path, map_row=map_row)) == []
    assert seen == [{"a": None, "phone": "+14155550001", "c": None}]


async def test_batches_and_has_more(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone\n" + "".join(f"+1415555{i:04d}\n" for i in range(25)))
    strategy = CsvStrategy(path, batch_size=10)
    sizes = [len(await strategy.poll())]
    while strategy.has_more:
        sizes.append(len(await strategy.poll()))
    assert sizes == [10, 10, 5]
    assert strategy.statistics().records_emitted == 25
    with pytest.raises(ValueError):
        CsvStrategy(path, batch_size=0)
