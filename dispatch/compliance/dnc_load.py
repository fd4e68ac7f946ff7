"""Load suppression lists from files and SQL queries.

Every number is normalised to E.164; a line that is not a number is reported with
its line number in :attr:`LoadedList.problems` (never dropped silently); blank
lines and ``#`` comment lines of a plain list are not data. A file or query that
cannot be used at all raises :class:`DncSourceError` (one line, naming the list;
never the database URL, which may hold a password).

:func:`load_suppression_file` and :func:`load_suppression_sql` do blocking I/O: the
hub runs them in a worker thread (``anyio.to_thread.run_sync``) at campaign start.
:func:`load_suppression_sql_async` takes an ``AsyncEngine`` and runs on the loop.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.compliance.dnc import StaticSuppressionList
from dispatch.errors import PreflightError
from dispatch.phone import InvalidPhone, normalize_phone

__all__ = ["PHONE_COLUMNS", "DncSourceError", "LineProblem", "LoadedList",
           "load_suppression_file", "load_suppression_sql", "load_suppression_sql_async"]

#: header names taken as the phone column of a CSV (case-insensitive), in this order
PHONE_COLUMNS = ("phone", "phone_number", "number", "e164", "tel", "telephone", "mobile")


class DncSourceError(PreflightError):
    """A suppression source cannot be used at all (missing file, no phone column,
    a failing query). Dialling without the list would call suppressed people, so the
    campaign must not start."""


@dataclass(frozen=True, slots=True)
class LineProblem:
    """A line (file) or row (query, 1-based) that is not a number, and why."""

    line: int
    text: str
    why: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.why} ({self.text[:40]!r})"


@dataclass(frozen=True)
class LoadedList:
    """The list, and what could not be read (show these to the operator)."""

    suppression: StaticSuppressionList
    problems: tuple[LineProblem, ...]


def _collect(name: str, rows: Iterable[tuple[int, object]],
             default_region: str | None) -> LoadedList:
    phones, problems = set(), []
    for line, raw in rows:
        try:
            phone = normalize_phone(raw, default_region)
        except InvalidPhone as exc:
            problems.append(LineProblem(line, "" if raw is None else str(raw), exc.why))
            continue
        if phone.lower().startswith("sip:"):
            problems.append(LineProblem(line, phone, "a SIP URI is not a phone number"))
            continue
        phones.add(phone)
    return LoadedList(StaticSuppressionList(name, phones), tuple(problems))


def _read_text(path: Path, name: str) -> str:
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise DncSourceError(f"do-not-call list {name!r}: cannot read {path} "
                             f"({exc.strerror or exc})") from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise DncSourceError(f"do-not-call list {name!r}: {path} line {line}: not UTF-8 "
                             "text") from None


def load_suppression_file(path: Path, *, name: str | None = None,
                          default_region: str | None = None,
                          phone_column: str | None = None) -> LoadedList:
    """One number per line, or (``.csv`` suffix or ``phone_column`` given) a CSV
    whose header has a phone column (``phone_column``, else the first of
    :data:`PHONE_COLUMNS`). ``name`` defaults to the file name. Sync I/O."""
    list_name = name or path.name
    content = _read_text(path, list_name)
    if phone_column is None and path.suffix.lower() != ".csv":
        rows = ((number, line.strip()) for number, line in
                enumerate(content.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#"))
        return _collect(list_name, rows, default_region)
    return _collect(list_name, _csv_rows(content, list_name, phone_column), default_region)


def _csv_rows(content: str, name: str, phone_column: str | None) -> list[tuple[int, object]]:
    reader = csv.reader(io.StringIO(content, newline=""))
    header = next(reader, None)
    if header is None:
        raise DncSourceError(f"do-not-call list {name!r}: the CSV file is empty")
    lowered = [h.strip().lower() for h in header]
    wanted = [phone_column.strip().lower()] if phone_column else list(PHONE_COLUMNS)
    column = next((lowered.index(w) for w in wanted if w in lowered), None)
    if column is None:
        raise DncSourceError(f"do-not-call list {name!r}: no phone column (looked for "
                             f"{', '.join(wanted)}; the header has {', '.join(header)})")
    rows: list[tuple[int, object]] = []
    line = reader.line_num
    for row in reader:
        if any(cell.strip() for cell in row):
            rows.append((line + 1, row[column] if column < len(row) else None))
        line = reader.line_num
    return rows


def load_suppression_sql(source: str | Engine, query: str, *, name: str,
                         default_region: str | None = None) -> LoadedList:
    """The first column of every row of ``query`` (a sync SQLAlchemy URL or
    :class:`~sqlalchemy.Engine`; an engine built from a URL is disposed). Sync I/O."""
    engine = create_engine(source) if isinstance(source, str) else source
    try:
        with engine.connect() as connection:
            values = [row[0] for row in connection.execute(text(query))]
    except (SQLAlchemyError, IndexError) as exc:
        raise DncSourceError(f"do-not-call list {name!r}: the query failed "
                             f"({type(exc).__name__}: {_first_line(exc)})") from None
    finally:
        if isinstance(source, str):
            engine.dispose()
    return _collect(name, enumerate(values, start=1), default_region)


async def load_suppression_sql_async(engine: AsyncEngine, query: str, *, name: str,
                                     default_region: str | None = None) -> LoadedList:
    """:func:`load_suppression_sql` for an :class:`~sqlalchemy.ext.asyncio.AsyncEngine`."""
    try:
        async with engine.connect() as connection:
            result = await connection.execute(text(query))
            values: list[Any] = [row[0] for row in result]
    except (SQLAlchemyError, IndexError) as exc:
        raise DncSourceError(f"do-not-call list {name!r}: the query failed "
                             f"({type(exc).__name__}: {_first_line(exc)})") from None
    return _collect(name, enumerate(values, start=1), default_region)


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy's message carries the SQL and a link, never the URL; keep line one
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0][:200]
