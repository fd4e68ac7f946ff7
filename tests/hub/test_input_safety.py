"""The library never dies of one record: bad phones, metadata that is not JSON,
records too large for the wire, and polls that return things that are not records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.testing import Answer, FakeClock, MemoryDialer, MemoryStrategy

from .helpers import read_db

pytestmark = pytest.mark.anyio


class Opaque:
    """An application object that has no JSON form."""


def cyclic() -> dict[str, Any]:
    value: dict[str, Any] = {"a": 1}
    value["self"] = value
    return value


async def run_batch(tmp_path: Path, items: list[Any], **options: Any) -> tuple[
    MemoryDialer, MemoryStrategy, dict[str, dict[str, Any]]
]:
    clock = FakeClock()
    dialer = MemoryDialer(clock, default=Answer(1))
    strategy = MemoryStrategy(items)
    hub = DispatchHub(dialer, [strategy], db=tmp_path / "hub.db", clock=clock, **options)
    async with clock.autojump():
        with anyio.fail_after(30):
            await hub.run(until_idle=True)
    rows, _ = await read_db(tmp_path / "hub.db")
    return dialer, strategy, rows


def good(i: int) -> Record:
    return Record(id=f"ok{i}", phone=f"+1555000{i:04d}")


def dialled(dialer: MemoryDialer) -> set[str]:
    return {d.metadata["dispatch_record_id"] for d in dialer.dials}


async def test_letters_in_a_phone_are_never_dialled_as_keypad_digits(tmp_path: Path):
    items = [Record(id="letters", phone="+1 (415) abc-0000"),
             Record(id="ext", phone="+1 415 555 0100 x123"),
             Record(id="tel", phone="tel:+1-415-555-0101"), good(1)]
    dialer, _, rows = await run_batch(tmp_path, items)
    assert {d.to for d in dialer.dials} == {"+14155550101", "+15550000001"}
    assert rows["letters"]["status"] == "skipped"
    assert rows["letters"]["last_reason"] == "invalid_phone"
    assert "letters" in rows["letters"]["error"]
    assert "extensions cannot be dialled" in rows["ext"]["error"]


@pytest.mark.parametrize(
    ("field", "value", "named", "what"),
    [
        ("metadata", {"when": {1, 2}}, "metadata.when", "set"),
        ("metadata", {"owner": Opaque()}, "metadata.owner", "Opaque"),
        ("metadata", {"blob": b"\x00\x01"}, "metadata.blob", "bytes"),
        ("metadata", {"deep": [1, {"x": dt.date(2026, 1, 1)}]}, "metadata.deep[1].x", "date"),
        ("metadata", cyclic(), "metadata.self", "it contains itself"),
        ("config", {"temperature": float("nan")}, "config.temperature", "finite"),
        ("config", {"voice": object()}, "config.voice", "object"),
    ],
)
async def test_a_record_whose_fields_are_not_json_is_skipped_and_the_rest_go_on(
    tmp_path: Path, field: str, value: Any, named: str, what: str
):
    bad = Record(id="r7", phone="+15559990007", **{field: value})
    dialer, strategy, rows = await run_batch(tmp_path, [good(1), bad, good(2)])
    assert dialled(dialer) == {"ok1", "ok2"}
    assert rows["r7"]["status"] == "skipped" and rows["r7"]["last_reason"] == "invalid_record"
    error = rows["r7"]["error"]
    assert error.startswith(f"record 'r7': field '{named}") and what in error
    outcome = strategy.outcome_of("r7")
    assert outcome is not None and outcome.status == "skipped"


async def test_metadata_assigned_after_validation_is_checked_too(tmp_path: Path):
    bad = good(7)
    bad.metadata = {"when": {"a"}}  # pydantic does not validate assignment
    dialer, _, rows = await run_batch(tmp_path, [good(1), bad])
    assert dialled(dialer) == {"ok1"}
    assert "field 'metadata.when': not JSON-serialisable (set)" in rows["ok7"]["error"]


async def test_a_record_over_the_size_limit_alone_is_skipped_with_size_and_limit(
    tmp_path: Path,
):
    huge = Record(id="huge", phone="+15559990008", metadata={"notes": "x" * 70_000})
    near = Record(id="near", phone="+15559990009", greeting="y" * 60_000)
    dialer, _, rows = await run_batch(tmp_path, [good(1), huge, near, good(2)])
    assert dialled(dialer) == {"ok1", "ok2", "near"}
    row = rows["huge"]
    assert (row["status"], row["last_reason"]) == ("skipped", "record_too_large")
    assert "70,0" in row["error"] and "65,536" in row["error"]
    assert "x" * 100 not in str(row)  # the bulk is never stored


async def test_the_size_limit_is_configurable_and_counts_every_wire_field(tmp_path: Path):
    items = [Record(id="vars", phone="+15559990001", prompt_vars={"p": "z" * 900}),
             Record(id="cfg", phone="+15559990002", config={"c": "z" * 900}), good(1)]
    dialer, _, rows = await run_batch(tmp_path, items, max_record_bytes=512)
    assert dialled(dialer) == {"ok1"}
    assert {rows[r]["last_reason"] for r in ("vars", "cfg")} == {"record_too_large"}
    assert "the limit is 512 bytes" in rows["cfg"]["error"]


async def test_objects_that_are_not_records_are_rejected_one_by_one(tmp_path: Path):
    items: list[Any] = [good(1), 42, "a string", None, {"id": "d1", "phone": "+15550007777"},
                        good(2)]
    dialer, _, _ = await run_batch(tmp_path, items)
    assert dialled(dialer) == {"ok1", "ok2", "d1"}


def test_rejections_name_the_index_and_the_type():
    from dispatch.hub.ingest import admit

    admission = admit([good(1), 42, None], known=set(), default_region=None)
    assert [r.id for r in admission.new] == ["ok1"]
    assert admission.rejected == [
        "item 1 of the poll: int, expected a Record or a dict",
        "item 2 of the poll: NoneType, expected a Record or a dict",
    ]
