"""SqlStrategy.preflight refuses campaign-wide mistakes; passwords never leak."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sql_helpers import BACKENDS, MARIA_ADMIN, PG_ADMIN, Db, lead, open_db
from structlog.testing import capture_logs

from dispatch.errors import PreflightError, SourceUnusable
from dispatch.strategies import SqlStrategy
from dispatch.strategies.sql import SqlSourceError

pytestmark = pytest.mark.anyio

SECRET = "Sup3r-s3cret-pw"


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    async for opened in open_db(request.param, tmp_path):
        yield opened


async def _refusal(sql: SqlStrategy) -> PreflightError:
    try:
        with pytest.raises(PreflightError) as info:
            await sql.preflight()
    finally:
        await sql.aclose()
    return info.value


async def test_missing_table_is_unusable(db: Db) -> None:
    error = await _refusal(SqlStrategy(db.url, table=db.name("nowhere")))
    assert isinstance(error, SourceUnusable) and error.option == "--table"
    assert "table" in str(error) and "nowhere" in str(error)


async def test_missing_mapped_columns_are_named(db: Db) -> None:
    await db.create(db.leads_table(), [lead(1)])
    error = await _refusal(SqlStrategy(db.url, table=db.name("leads"), phone_column="mobile"))
    assert isinstance(error, SourceUnusable) and error.option == "--sql-phone-column"
    assert "no column 'mobile'" in str(error) and "phone, name" in str(error)
    error = await _refusal(SqlStrategy(db.url, table=db.name("leads"), cursor_column="changed"))
    assert error.option == "--sql-cursor" and "'changed'" in str(error)


async def test_greeting_field_the_source_lacks(db: Db) -> None:
    await db.create(db.leads_table(), [lead(1)])
    error = await _refusal(SqlStrategy(db.url, table=db.name("leads"),
                                       greeting="Hi {first_name}"))
    assert not isinstance(error, SourceUnusable) and error.option == "--greeting"
    assert "first_name" in str(error)


async def test_query_that_fails_or_lacks_a_column(db: Db) -> None:
    await db.create(db.leads_table(), [lead(1)])
    error = await _refusal(SqlStrategy(db.url, query="SELECT id, phone FROM no_such_table"))
    assert isinstance(error, SourceUnusable) and error.option == "--sql-query"
    assert "cannot be run" in str(error)
    error = await _refusal(SqlStrategy(
        db.url, query=f"SELECT id, name FROM {db.name('leads')}"))
    assert isinstance(error, SourceUnusable) and "no column 'phone'" in str(error)


async def test_write_back_column_that_does_not_exist(db: Db) -> None:
    await db.create(db.leads_table(), [lead(1)])
    error = await _refusal(SqlStrategy(db.url, table=db.name("leads"),
                                       write_back="status,disposition=call_result"))
    assert error.option == "--sql-writeback" and "'call_result'" in str(error)
    error = await _refusal(SqlStrategy(
        db.url, query=f"SELECT id, phone FROM {db.name('leads')}", write_back="status"))
    assert error.option == "--sql-writeback" and "needs a table" in str(error)


async def test_national_numbers_without_a_region(db: Db) -> None:
    await db.create(db.leads_table(), [lead(i, phone=f"415555{3000 + i:04d}")
                                       for i in range(1, 6)])
    error = await _refusal(SqlStrategy(db.url, table=db.name("leads")))
    assert error.option == "--region"
    ok = SqlStrategy(db.url, table=db.name("leads"), default_region="US")
    try:
        await ok.preflight()
        phones = [r.phone for r in await ok.poll()]
        assert phones[0] == "+14155553001"
    finally:
        await ok.aclose()


def test_bad_settings_are_refused_at_construction() -> None:
    url = "sqlite+aiosqlite:///x.db"
    with pytest.raises(ValueError, match="exactly one of table= and query="):
        SqlStrategy(url)
    with pytest.raises(ValueError, match="write_back field 'outcome'"):
        SqlStrategy(url, table="leads", write_back={"outcome": "status"})
    with pytest.raises(ValueError, match="table 'a;drop'"):
        SqlStrategy(url, table="a;drop")
    with pytest.raises(ValueError, match="not a SQLAlchemy database URL"):
        SqlStrategy("nonsense", table="leads")


async def test_key_names_the_source_without_password_and_picks_an_async_driver() -> None:
    sql = SqlStrategy(f"postgresql://app:{SECRET}@db.example:5432/crm", table="public.leads")
    assert sql.key == "sql:postgresql+asyncpg://app:***@db.example:5432/crm#public.leads"
    await sql.aclose()
    sql = SqlStrategy(f"mysql://app:{SECRET}@db.example/crm", query="SELECT id, phone FROM t")
    assert sql.key.startswith("sql:mysql+asyncmy://app:***@db.example/crm#query:")
    assert SECRET not in repr(sql.url) and SECRET not in sql.key
    await sql.aclose()


def _leaks(text: str) -> bool:
    return SECRET in text


async def _unreachable_with_password(url: str) -> None:
    sql = SqlStrategy(url, table="leads")
    assert not _leaks(sql.key) and "***" in sql.key
    with capture_logs() as logs:
        try:
            with pytest.raises(SourceUnusable) as info:
                await sql.preflight()
            with pytest.raises(SqlSourceError) as polled:
                await sql.poll()
        finally:
            await sql.aclose()
    for text in (str(info.value), repr(info.value), str(polled.value), info.value.source):
        assert not _leaks(text), text
    # the driver's exception is not chained for display (raise ... from None)
    assert info.value.__suppress_context__ and not _leaks(repr(info.value.__context__))
    assert not _leaks(json.dumps(logs, default=str))
    assert "***" in str(info.value)


async def test_postgres_password_never_in_key_errors_or_logs() -> None:
    admin = sa.make_url(PG_ADMIN)
    # trust auth accepts any password: a database that does not exist makes it fail
    url = admin.set(password=SECRET, database="no_such_db_for_dispatch")
    try:
        await _unreachable_with_password(url.render_as_string(hide_password=False))
    except OSError:
        pytest.skip("no PostgreSQL server answers at 127.0.0.1:5432")


async def test_mariadb_password_never_in_key_errors_or_logs() -> None:
    url = sa.make_url(MARIA_ADMIN).set(username="dispatch_nobody", password=SECRET)
    await _unreachable_with_password(url.render_as_string(hide_password=False))


async def test_sqlite_poll_error_is_one_clean_line(tmp_path: Path) -> None:
    sql = SqlStrategy(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", table="leads")
    try:
        with pytest.raises(SqlSourceError, match=r"cannot read .*no such table"):
            await sql.poll()
    finally:
        await sql.aclose()
