"""CsvStrategy.preflight: campaign-wide mistakes refused before anyone is dialled."""

from __future__ import annotations

from pathlib import Path

import pytest
from csv_helpers import drain, write

from dispatch.errors import PreflightError, SourceUnusable
from dispatch.strategies import CsvStrategy

pytestmark = pytest.mark.anyio

LEADS = "id,name,phone\n1,Ana,+14155550001\n2,Bo,+14155550002\n"


async def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(SourceUnusable) as info:
        await CsvStrategy(path).preflight()
    assert str(info.value) == f"file not found: {path}"
    assert info.value.source == str(path)


async def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "dir.csv"
    path.mkdir()
    with pytest.raises(SourceUnusable, match=r"^cannot read .*dir\.csv: "):
        await CsvStrategy(path).preflight()


async def test_greeting_field_missing_from_header(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, LEADS)
    with pytest.raises(PreflightError) as info:
        await CsvStrategy(path, greeting="Hi {first_name}").preflight()
    assert info.value.option == "--greeting"
    assert not isinstance(info.value, SourceUnusable)
    assert str(info.value) == (
        f"--greeting uses {{first_name}} but {path} has no column 'first_name' "
        "(columns: id, name, phone)"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hi {name", "--greeting template is not valid: "),
        ("Hi {0}", "--greeting field {0} must name a column"),
        ("Hi {}", "--greeting field {} must name a column"),
        ("Hi {name.upper}", "--greeting field {name.upper} must name a column"),
        ("Hi {name:%%}", "--greeting template cannot be rendered: "),
    ],
)
async def test_greeting_template_errors(tmp_path: Path, template: str, expected: str) -> None:
    path = tmp_path / "leads.csv"
    write(path, LEADS)
    with pytest.raises(PreflightError) as info:
        await CsvStrategy(path, greeting=template).preflight()
    assert info.value.option == "--greeting"
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)


async def test_good_greeting_passes_and_nothing_is_consumed(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, LEADS)
    strategy = CsvStrategy(path, greeting="Hi {name}, {{literal}}")
    await strategy.preflight()
    records = await drain(strategy)
    assert [r.greeting for r in records] == ["Hi Ana, {literal}", "Hi Bo, {literal}"]


async def test_braces_in_data_are_never_expanded(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, 'name,phone,city\n{phone},+14155550001,{city}\n"{0}{name!r}",+14155550002,x\n')
    strategy = CsvStrategy(path, greeting="Hi {name} from {city}")
    await strategy.preflight()
    records = await drain(strategy)
    assert [r.greeting for r in records] == ["Hi {phone} from {city}", "Hi {0}{name!r} from x"]


async def test_national_numbers_without_region(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone\n415 555 0001\n(415) 555-0002\n\n+14155550003\n4155550004\n")
    with pytest.raises(PreflightError) as info:
        await CsvStrategy(path).preflight()
    assert info.value.option == "--region"
    message = str(info.value)
    assert message.startswith(f"3 of 4 sampled phone numbers in {path} have no country code")
    assert message.endswith("pass --region US (or the country of these numbers)")
    await CsvStrategy(path, default_region="US").preflight()


async def test_a_few_national_numbers_are_record_level(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "phone\n415 555 0001\n+14155550002\n+14155550003\n")
    await CsvStrategy(path).preflight()  # one bad row: skipped invalid_phone, not a refusal


async def test_map_row_needs_no_phone_column(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "who,cell\nAna,+14155550001\n")
    await CsvStrategy(path, map_row=lambda row: None).preflight()
    with pytest.raises(SourceUnusable, match=r"has no phone column: .* found columns: who, cell$"):
        await CsvStrategy(path).preflight()


async def test_explicit_phone_column_named_in_refusal(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    write(path, "who,phone\nAna,+14155550001\n")
    with pytest.raises(SourceUnusable, match="expected one of cell; found columns: who, phone"):
        await CsvStrategy(path, phone_column="cell").preflight()
