"""Suppression lists: policy, internal list, file and SQL loaders, opt-out."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from dispatch.compliance import (
    DncPolicy,
    DncSourceError,
    MemorySuppressionList,
    StaticSuppressionList,
    Verdict,
    default_admission,
    is_opt_out,
    load_suppression_file,
    load_suppression_sql,
    load_suppression_sql_async,
    reasons,
)
from tests.compliance.helpers import at, ctx

PHONE = "+12125550100"


def test_dnc_policy_names_the_list() -> None:
    lists = [StaticSuppressionList("file.txt", ["+12125550199"]),
             StaticSuppressionList("crm", [PHONE])]
    decision = DncPolicy(lists).decide(ctx(0.0, PHONE))
    assert decision.verdict is Verdict.SKIP and decision.reason == reasons.DNC
    assert "'crm'" in decision.detail
    assert DncPolicy(lists).decide(ctx(0.0, "+12125550123")).allowed


def test_dnc_beats_calling_hours_in_the_default_order() -> None:
    internal = MemorySuppressionList()
    night = at("2026-06-01T03:00", "America/New_York")
    assert default_admission([internal]).decide(ctx(night, PHONE)).reason == \
        reasons.OUTSIDE_CALLING_HOURS
    internal.add(PHONE, "opt_out", "call c-1", at_s=1.0)
    decision = default_admission([internal]).decide(ctx(night, PHONE))
    assert decision.reason == reasons.DNC and decision.policy == "dnc"


def test_memory_list_keeps_the_audit_trail() -> None:
    internal = MemorySuppressionList()
    assert internal.add(PHONE, "opt_out", "call c-1", at_s=5.0)
    assert not internal.add(PHONE, "manual", "cli", at_s=9.0)
    entry = internal.get(PHONE)
    assert entry is not None and (entry.reason, entry.source, entry.added_s) == \
        ("opt_out", "call c-1", 5.0)
    internal.add("+12125550101", "manual", "cli", at_s=1.0)
    assert [e.phone for e in internal.entries()] == ["+12125550101", PHONE]
    assert internal.remove(PHONE) and not internal.remove(PHONE)
    assert not internal.contains(PHONE)


def test_plain_file_reports_bad_lines_with_numbers(tmp_path: Path) -> None:
    path = tmp_path / "dnc.txt"
    path.write_text("# our list\n+1 212 555 0100\n\n(212) 555-0101\nnot a number\n"
                    "+1212555\n+447911123456\n", "utf-8")
    loaded = load_suppression_file(path, default_region="US")
    assert loaded.suppression.name == "dnc.txt"
    assert len(loaded.suppression) == 3
    assert loaded.suppression.contains("+12125550101")
    assert [p.line for p in loaded.problems] == [5, 6]


def test_csv_file_with_a_phone_column(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text('name,Phone\n"Doe, J",+12125550100\nX,oops\n,\nY,+34912345678\n', "utf-8")
    loaded = load_suppression_file(path)
    assert loaded.suppression.contains(PHONE) and loaded.suppression.contains("+34912345678")
    assert [(p.line, p.text) for p in loaded.problems] == [(3, "oops")]


@pytest.mark.parametrize(("name", "content", "match"), [
    ("x.csv", "name,email\na,b\n", "no phone column"),
    ("x.csv", "", "empty"),
    ("x.txt", b"+12125550100\n\xff\xfe\n", "line 2: not UTF-8"),
    ("missing.txt", None, "cannot read"),
])
def test_unusable_files_raise_one_line(tmp_path: Path, name: str, content: str | bytes | None,
                                       match: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, "utf-8")
    with pytest.raises(DncSourceError, match=match):
        load_suppression_file(path)


def _database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("create table optouts (phone text, active int)"))
        connection.execute(text("insert into optouts values ('+12125550100', 1), "
                                "('garbage', 1), ('+12125550101', 0)"))
    engine.dispose()
    return url


def test_sql_loader(tmp_path: Path) -> None:
    url = _database(tmp_path)
    loaded = load_suppression_sql(url, "select phone from optouts where active = 1", name="crm")
    assert loaded.suppression.contains(PHONE)
    assert not loaded.suppression.contains("+12125550101")
    assert [(p.line, p.text) for p in loaded.problems] == [(2, "garbage")]
    with pytest.raises(DncSourceError, match="'crm': the query failed") as info:
        load_suppression_sql(url, "select nope from optouts", name="crm")
    assert str(tmp_path) not in str(info.value)


@pytest.mark.anyio
async def test_sql_loader_async(tmp_path: Path) -> None:
    url = _database(tmp_path).replace("sqlite://", "sqlite+aiosqlite://")
    engine = create_async_engine(url)
    try:
        loaded = await load_suppression_sql_async(engine, "select phone from optouts",
                                                  name="crm")
    finally:
        await engine.dispose()
    assert loaded.suppression.contains("+12125550101")


@pytest.mark.parametrize(("tool_results", "disposition", "expected"), [
    ([], "do_not_call", True),
    ([], "DO-NOT-CALL", True),
    ([], "Opt Out", True),
    ([], "unsubscribe", True),
    ([{"name": "opt_out", "result": {"ok": True}}], None, True),
    ([{"result": {"disposition": "DNC"}}], None, True),
    ([{"opt_out": True}], None, True),
    ([{"opt_out": False}], None, False),
    ([{"name": "book_appointment", "result": {"ok": True}}], "booked", False),
    ([{"result": "please stop calling me"}], None, False),
    ([], None, False),
    (["optout"], None, True),
])
def test_opt_out(tool_results: list[object], disposition: str | None, expected: bool) -> None:
    assert is_opt_out(tool_results, disposition) is expected
