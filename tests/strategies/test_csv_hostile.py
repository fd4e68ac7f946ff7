"""The hostile corpus (csv_corpus.SHAPES): no good row is ever lost, every bad
row is a skipped record with its line and reason, an unusable file is refused
with one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from csv_corpus import SHAPES, Collect, Shape, phone_for
from csv_helpers import age, drain
from structlog.testing import capture_logs

from dispatch.errors import SourceUnusable
from dispatch.records import Record
from dispatch.strategies import CsvStrategy

pytestmark = pytest.mark.anyio


def line_of(record: Record) -> int:
    match = re.match(r"line (\d+): ", str(record.metadata["_invalid"]))
    assert match, record.metadata
    return int(match.group(1))


async def _refused(path: Path, shape: Shape) -> None:
    assert shape.unusable is not None
    strategy = CsvStrategy(path, **shape.options)
    with pytest.raises(SourceUnusable) as info:
        await strategy.preflight()
    message = str(info.value)
    assert shape.unusable in message and str(path) in message, message
    assert "\n" not in message and info.value.source == str(path)
    with capture_logs() as logs:
        for _ in range(3):
            assert await strategy.poll() == []
    assert len(logs) == 1 and logs[0]["log_level"] in {"warning", "error"}, logs


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_hostile_shape(tmp_path: Path, shape: Shape) -> None:
    path = tmp_path / "leads.csv"
    path.write_bytes(shape.data)
    age(path)  # settled: an unterminated last line is final
    if shape.unusable:
        await _refused(path, shape)
        return
    if isinstance(shape.options.get("map_row"), Collect):
        shape.options["map_row"].phones.clear()
    strategy = CsvStrategy(path, **shape.options)
    await strategy.preflight()
    records = await drain(strategy)
    good = [r for r in records if r.invalid_detail is None]
    bad = [r for r in records if r.invalid_detail is not None]
    phones: list[str]
    collected = shape.options.get("map_row")
    phones = collected.phones if isinstance(collected, Collect) else [r.phone for r in good]
    assert phones == [phone_for(n) for n in shape.good]
    assert sorted((line_of(r), r.metadata["_invalid_reason"]) for r in bad) == shape.bad
    for record in bad:
        text = str(record.metadata["_invalid"])
        assert "\n" not in text and len(text) < 300, text
        if record.metadata["_invalid_reason"] == "invalid_encoding":
            assert "--encoding latin-1" in text
    assert len({r.id for r in records}) == len(records)
    if shape.check is not None:
        shape.check(good)


def test_corpus_is_big_enough() -> None:
    assert len(SHAPES) >= 40
