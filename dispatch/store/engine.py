"""Engine creation: URL resolution and SQLite pragmas (WAL, busy timeout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

__all__ = ["BUSY_TIMEOUT_MS", "create_engine", "resolve_url", "sync_url"]

BUSY_TIMEOUT_MS = 10_000


def resolve_url(db: str | os.PathLike[str]) -> str:
    """Turn a path, ``:memory:`` or a URL into an async SQLAlchemy URL.

    ``sqlite://`` URLs without a driver get ``+aiosqlite``; other URLs are taken as
    given (e.g. ``postgresql+asyncpg://...``).
    """
    text = os.fspath(db)
    if text == ":memory:":
        return "sqlite+aiosqlite://"
    if "://" not in text:
        return f"sqlite+aiosqlite:///{Path(text).expanduser().resolve()}"
    url = make_url(text)
    if url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    return url.render_as_string(hide_password=False)


def sqlite_file(url: str) -> str | None:
    """The file path behind a SQLite URL, or ``None`` (in-memory, or not SQLite)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return str(parsed.database)


def sync_url(async_url: str) -> str:
    """The synchronous twin of an async URL (for command-line alembic)."""
    url = make_url(async_url)
    driver = {"sqlite+aiosqlite": "sqlite", "postgresql+asyncpg": "postgresql"}.get(
        url.drivername, url.drivername
    )
    return url.set(drivername=driver).render_as_string(hide_password=False)


def _sqlite_pragmas(read_only: bool) -> Any:
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if read_only:
                cursor.execute("PRAGMA query_only=ON")
            else:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return on_connect


def create_engine(url: str, *, read_only: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets WAL, ``synchronous=NORMAL`` and a busy timeout.

    An in-memory SQLite database uses a single shared connection (``StaticPool``),
    otherwise each connection would see its own empty database.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database in (None, "", ":memory:"):
        kwargs["poolclass"] = StaticPool
    engine = create_async_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(read_only))
    return engine
