"""Apply the alembic migrations shipped in the top-level ``migrations`` package.

Alembic is configured in code (``script_location`` found through
``migrations.__file__``), so this works from a non-editable install without an
``alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch import migrations
from dispatch.store.errors import StoreError

__all__ = [
    "alembic_config",
    "current_revision",
    "head_revision",
    "migrations_dir",
    "upgrade",
]


def migrations_dir() -> Path:
    """The directory of the shipped ``migrations`` package.

    Uses ``migrations.__file__``; falls back to ``__path__`` when the package is seen
    as a namespace package (a stale editable install).
    """
    file = getattr(migrations, "__file__", None)
    if file:
        return Path(file).resolve().parent
    for entry in getattr(migrations, "__path__", []):
        candidate = Path(entry)
        if (candidate / "env.py").is_file():
            return candidate.resolve()
    raise StoreError("cannot locate the dispatch migrations directory")


def alembic_config(url: str | None = None) -> Config:
    """An alembic :class:`Config` pointing at the shipped migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    """The newest revision shipped with this version of dispatch."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade_sync(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to ``revision``. Idempotent. Raises :class:`StoreError`."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_sync, revision)
    except (SQLAlchemyError, OSError, CommandError) as exc:
        raise StoreError(f"database migration to {revision!r} failed: {exc}") from exc


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_sync)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot read the database revision: {exc}") from exc
