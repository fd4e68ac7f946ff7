"""SqlStrategy reads on SQLite, PostgreSQL and MariaDB: mapping, query mode, cursors, bad rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sql_helpers import BACKENDS, T0, Db, lead, open_db

from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.strategies import SqlStrategy

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    async for opened in open_db(request.param, tmp_path):
        yield opened


async def drain(strategy: SqlStrategy) -> list[list[Record]]:
    """Poll until the strategy says no more rows are ready; the pages it returned."""
    pages = [await strategy.poll()]
    while strategy.has_more:
        pages.append(await strategy.poll())
    return pages


def ids(pages: list[list[Record]]) -> list[str]:
    return [r.id for page in pages for r in page]


async def test_table_mapping_fills_every_record_field(db: Db) -> None:
    table = await db.create(db.leads_table(), [
        lead(1, tz="America/Chicago", not_before=dt.datetime(2026, 3, 1, 15, 30)),
        lead(2, name="Ana"),
    ])
    sql = SqlStrategy(db.url, table=db.name(table.name), greeting="Hi {name}, about {service}",
                      metadata_columns=["name", "service"], timezone_column="tz",
                      not_before_column="not_before")
    try:
        await sql.preflight()
        (page,) = await drain(sql)
    finally:
        await sql.aclose()
    first, second = page
    assert (first.id, first.phone) == ("1", "+14155553001")
    assert first.greeting == "Hi Person 1, about Eye Exam"
    assert first.metadata == {"name": "Person 1", "service": "Eye Exam",
                              "timezone": "America/Chicago"}
    assert first.prompt_vars == {"name": "Person 1", "service": "Eye Exam"}
    assert first.not_before == dt.datetime(2026, 3, 1, 15, 30, tzinfo=dt.UTC)
    assert second.greeting == "Hi Ana, about Eye Exam" and second.not_before is None
    assert first.invalid_detail is None and second.invalid_detail is None
    assert sql.key.startswith("sql:") and sql.key.endswith(f"#{db.name('leads')}")


async def test_query_mode_reads_what_the_select_returns(db: Db) -> None:
    table = await db.create(db.leads_table(), [
        lead(1), lead(2, service="Dental"), lead(3), lead(4, service="Dental")])
    query = (f"SELECT id, phone, name AS who FROM {db.name(table.name)} "
             "WHERE service = 'Dental'")
    sql = SqlStrategy(db.url, query=query, greeting="Hello {who}")
    try:
        await sql.preflight()
        pages = await drain(sql)
    finally:
        await sql.aclose()
    assert ids(pages) == ["2", "4"]
    assert [r.greeting for r in pages[0]] == ["Hello Person 2", "Hello Person 4"]
    assert sql.key.startswith("sql:") and "#query:" in sql.key
    other = SqlStrategy(db.url, query=query + " AND id > 2")
    assert other.key != sql.key
    await other.aclose()


async def test_id_cursor_pages_then_reads_only_new_rows(db: Db) -> None:
    table = await db.create(db.leads_table(), [lead(i) for i in range(1, 11)])
    sql = SqlStrategy(db.url, table=db.name(table.name), page_size=3)
    try:
        pages = await drain(sql)
        assert [len(p) for p in pages] == [3, 3, 3, 1]
        assert ids(pages) == [str(i) for i in range(1, 11)]
        assert await sql.poll() == [] and not sql.has_more
        await db.insert(table, [lead(11), lead(12)])
        assert ids(await drain(sql)) == ["11", "12"]
        stats = sql.statistics()
        assert stats.rows_read == 12, "no row is read twice with an id cursor"
    finally:
        await sql.aclose()


async def test_updated_at_cursor_never_skips_equal_timestamps_and_rereads_changes(
    db: Db,
) -> None:
    # seven rows share one timestamp and pages hold three: the tie-breaker (id) must
    # carry each page on inside the group
    table = await db.create(db.leads_table(), [lead(i) for i in (5, 1, 7, 3, 2, 6, 4)])
    sql = SqlStrategy(db.url, table=db.name(table.name), cursor_column="updated_at",
                      page_size=3)
    try:
        first = ids(await drain(sql))
        assert first == [str(i) for i in range(1, 8)]
        assert await sql.poll() == []
        # a row changed by the application after we read it, and a new row stamped
        # with the very timestamp the cursor stands on (but a larger id)
        later = T0 + dt.timedelta(minutes=5)
        await db.execute(sa.update(table).where(table.c.id == 2)
                         .values(updated_at=later, name="Changed"))
        await db.insert(table, [lead(9, updated_at=T0)])
        again = await drain(sql)
        assert ids(again) == ["9", "2"]
        assert again[0][1].metadata["name"] == "Changed"
        # rows stamped earlier than the cursor are not re-read: the cursor moved on
        assert await sql.poll() == []
    finally:
        await sql.aclose()


async def test_cursor_overlap_catches_a_row_committed_late(db: Db) -> None:
    table = await db.create(db.leads_table(), [
        lead(i, updated_at=T0 + dt.timedelta(seconds=10 * i)) for i in range(1, 5)])
    name = db.name(table.name)
    plain = SqlStrategy(db.url, table=name, cursor_column="updated_at", page_size=2)
    lagged = SqlStrategy(db.url, table=name, cursor_column="updated_at", page_size=2,
                         cursor_overlap=60)
    try:
        assert ids(await drain(plain)) == ["1", "2", "3", "4"]
        assert ids(await drain(lagged)) == ["1", "2", "3", "4"]
        assert await lagged.poll() == [], "rows re-read in the overlap are not handed out again"
        # a transaction that stamped its row 15 s before the newest row commits now
        await db.insert(table, [lead(8, updated_at=T0 + dt.timedelta(seconds=25))])
        assert ids(await drain(lagged)) == ["8"]
        assert ids(await drain(plain)) == [], "without an overlap the late row is missed"
        # a row changed within the overlap is read again (its cursor value changed)
        await db.execute(sa.update(table).where(table.c.id == 3)
                         .values(updated_at=T0 + dt.timedelta(seconds=35)))
        assert ids(await drain(lagged)) == ["3"]
        assert await lagged.poll() == []
    finally:
        await plain.aclose()
        await lagged.aclose()


async def test_bad_rows_become_records_that_name_the_field(db: Db) -> None:
    contacts = sa.Table(
        "contacts", sa.MetaData(),
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("mobile", sa.String(40)),
        sa.Column("first", sa.String(40)),
        schema=db.schema,
    )
    await db.create(contacts, [
        {"code": "a1", "mobile": "+14155553101", "first": "Ann"},
        {"code": "   ", "mobile": "+14155553102", "first": "Blank id"},
        {"code": "c3", "mobile": None, "first": "No phone"},
        {"code": "d4", "mobile": "+14155553104", "first": ""},
    ])
    sql = SqlStrategy(db.url, table=db.name("contacts"), id_column="code",
                      phone_column="mobile", greeting="Hi {first}")
    try:
        records = {r.metadata["first"]: r for page in await drain(sql) for r in page}
    finally:
        await sql.aclose()
    assert records["Ann"].invalid_detail is None
    blank = records["Blank id"]
    assert blank.id.startswith("row:") and blank.invalid_reason is Reason.INVALID_ROW
    assert "field 'id' (column 'code') is empty" in (blank.invalid_detail or "")
    nophone = records["No phone"]
    assert nophone.id == "c3" and nophone.invalid_reason is Reason.INVALID_RECORD
    assert "field 'phone' (column 'mobile') is empty" in (nophone.invalid_detail or "")
    assert "greeting field 'first' is empty" in (records[""].invalid_detail or "")


async def test_rows_with_a_status_are_not_handed_out(db: Db) -> None:
    table = await db.create(db.leads_table(), [
        lead(1), lead(2, status="completed"), lead(3, status=""), lead(4)])
    sql = SqlStrategy(db.url, table=db.name(table.name), write_back="status,reason")
    try:
        got = ids(await drain(sql))
    finally:
        await sql.aclose()
    assert got == ["1", "3", "4"]
    assert sql.statistics().rows_skipped_by_status == 1


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[Db]:
    async for opened in open_db("postgresql", tmp_path):
        yield opened


async def test_reads_and_write_backs_leave_no_lock_behind_on_postgres(pg: Db) -> None:
    """After a poll and after a write-back, the application can take the strongest table
    lock at once (NOWAIT): we hold no open transaction, not even a read's share lock."""
    from dispatch.strategy import Outcome

    table = await pg.create(pg.leads_table(), [lead(i) for i in range(1, 6)])
    name = pg.name(table.name)
    sql = SqlStrategy(pg.url, table=name, write_back="status,reason", page_size=2)

    async def app_takes_exclusive_lock() -> None:
        async with pg.engine.begin() as conn:
            await conn.execute(sa.text(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE NOWAIT"))

    try:
        async with sql:
            records = await sql.poll()
            assert sql.has_more and len(records) == 2, "a page is open mid-table"
            await app_takes_exclusive_lock()
            await sql.record_outcome(Outcome(records[0], "completed", Reason.HANGUP, 1))
            await sql.aclose()  # flushes the write-back
            await app_takes_exclusive_lock()
        # positive control: a reader that keeps its transaction open does block the lock
        async with pg.engine.connect() as reader:
            await reader.execute(sa.select(table.c.id).limit(1))
            with pytest.raises(sa.exc.DBAPIError, match="lock"):
                await app_takes_exclusive_lock()
    finally:
        await sql.aclose()
    rows = await pg.rows(table)
    assert (rows[0]["status"], rows[0]["reason"]) == ("completed", "hangup")
