"""SqlStrategy source benchmark: a 1,000,000-row PostgreSQL table.

The table is generated server-side with ``generate_series`` in a schema of its
own (dropped afterwards), with an index on ``(updated_at, id)`` as an application
that wants incremental reads would have. Figures, for each cursor (the id, and
``updated_at`` with 1,000 rows sharing each timestamp):

* first load: every row read page by page (``page_size`` rows per query) and
  mapped to a Record, until ``has_more`` is false -- total seconds and rows/s;
* incremental poll, nothing changed: one ``poll()`` (median of 20);
* incremental poll after 1,000 rows were inserted (and, for ``updated_at``, after
  1,000 existing rows were updated): the polls that pick them up, total.

Usage: ``python benchmarks/sql_source.py [--rows N] [--page-size N] [--url URL]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path

import anyio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # a script run: make ``strategies`` importable
    sys.path.insert(0, str(_ROOT))

from dispatch.strategies import SqlStrategy  # noqa: E402

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def _generate(engine: AsyncEngine, schema: str, rows: int) -> float:
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        await conn.execute(sa.text(f"""
            CREATE TABLE {schema}.leads (
              id bigint PRIMARY KEY, phone text, name text, service text,
              updated_at timestamp NOT NULL, status text, reason text)"""))
        await conn.execute(sa.text(f"""
            INSERT INTO {schema}.leads (id, phone, name, service, updated_at)
            SELECT g, '+1415' || lpad((g % 10000000)::text, 7, '0'), 'Person ' || g,
                   'Eye Exam', timestamp '2026-01-01' + (g / 1000) * interval '1 second'
            FROM generate_series(1, CAST(:n AS bigint)) AS g"""), {"n": rows})
        await conn.execute(sa.text(f"CREATE INDEX ON {schema}.leads (updated_at, id)"))
        await conn.execute(sa.text(f"ANALYZE {schema}.leads"))
    return time.perf_counter() - started


async def _drain(sql: SqlStrategy) -> tuple[int, int]:
    records = len(await sql.poll())
    polls = 1
    while sql.has_more:
        records += len(await sql.poll())
        polls += 1
    return records, polls


async def _measure(url: str, schema: str, rows: int, page_size: int, cursor: str | None,
                   engine: AsyncEngine, next_id: int) -> int:
    label = cursor or "id"
    sql = SqlStrategy(url, table=f"{schema}.leads", cursor_column=cursor, page_size=page_size,
                      greeting="Hi {name}, about your {service}")
    try:
        await sql.preflight()
        started = time.perf_counter()
        records, polls = await _drain(sql)
        load_s = time.perf_counter() - started
        stats = sql.statistics()
        print(f"[{label}] first load: {records:,} records in {polls:,} polls, {load_s:.2f} s "
              f"({records / load_s:,.0f} rows/s); of which page queries {stats.read_s:.2f} s, "
              f"building Records {stats.map_s:.2f} s")
        idle = []
        for _ in range(20):
            t0 = time.perf_counter()
            assert await sql.poll() == []
            idle.append(time.perf_counter() - t0)
        print(f"[{label}] incremental poll, nothing new: median "
              f"{statistics.median(idle) * 1000:.2f} ms, max {max(idle) * 1000:.2f} ms")
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"""
                INSERT INTO {schema}.leads (id, phone, name, service, updated_at)
                SELECT g, '+1628' || lpad(g::text, 7, '0'), 'New ' || g, 'Eye Exam',
                       timestamp '2027-01-01' + g * interval '1 millisecond'
                FROM generate_series(CAST(:a AS bigint), CAST(:b AS bigint)) AS g"""),
                {"a": next_id, "b": next_id + 999})
        t0 = time.perf_counter()
        got, polls = await _drain(sql)
        print(f"[{label}] 1,000 inserted rows picked up: {got:,} records in {polls} poll(s), "
              f"{(time.perf_counter() - t0) * 1000:.1f} ms")
        if cursor == "updated_at":
            async with engine.begin() as conn:
                await conn.execute(sa.text(f"""
                    UPDATE {schema}.leads SET updated_at = timestamp '2028-01-01', name = 'Moved'
                    WHERE id BETWEEN :a AND :a + 999"""), {"a": rows // 2})
            t0 = time.perf_counter()
            got, polls = await _drain(sql)
            print(f"[{label}] 1,000 updated rows re-read: {got:,} records in {polls} poll(s), "
                  f"{(time.perf_counter() - t0) * 1000:.1f} ms")
    finally:
        await sql.aclose()
    return next_id + 1000


async def main(url: str, rows: int, page_size: int) -> None:
    schema = f"dsql_bench_{uuid.uuid4().hex[:8]}"
    engine = create_async_engine(url)
    try:
        gen_s = await _generate(engine, schema, rows)
        print(f"generated {rows:,} rows on {engine.url.render_as_string(hide_password=True)} "
              f"in {gen_s:.1f} s (page size {page_size:,})")
        next_id = await _measure(url, schema, rows, page_size, None, engine, rows + 1)
        await _measure(url, schema, rows, page_size, "updated_at", engine, next_id)
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--page-size", type=int, default=5000)
    parser.add_argument("--url", default=DEFAULT_URL)
    ns = parser.parse_args()
    anyio.run(main, ns.url, ns.rows, ns.page_size)
