"""Opening safely: the file is a SQLite database, its schema is one we know, and
migrations run under the run lock.

- a non-empty file that does not start with the SQLite header is refused
  (:class:`NotADatabase`): ``--db leads.csv`` must never turn a CSV into a database;
- a revision this release does not ship means a newer dispatch wrote the database
  (:class:`SchemaTooNew`, one line, nothing touched);
- migrating takes the run lock (:mod:`dispatch.store.lock`) for its duration, so two
  processes never migrate at once and nobody migrates under a running campaign. The
  lock is released before :meth:`Store.open` returns, so the hub can take it next.
"""

from __future__ import annotations

import anyio
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.store.errors import NotADatabase, SchemaTooNew, SchemaTooOld
from dispatch.store.lock import RunLock, StoreLocked
from dispatch.store.migrate import alembic_config, current_revision, upgrade

__all__ = [
    "SQLITE_MAGIC",
    "check_readable",
    "check_sqlite_file",
    "display_name",
    "known_revisions",
    "migrate_locked",
]

SQLITE_MAGIC = b"SQLite format 3\x00"
#: how long :func:`migrate_locked` waits for a lock held by another migration
LOCK_POLL_S = 0.05


def _header(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise NotADatabase(f"database {path!r} is a directory, not a SQLite file") from None


async def check_sqlite_file(path: str) -> None:
    """Raise :class:`NotADatabase` unless ``path`` is missing, empty or SQLite."""
    head = await anyio.to_thread.run_sync(_header, path)
    if head and head != SQLITE_MAGIC:
        raise NotADatabase(
            f"{path!r} is not a SQLite database (it does not start with the SQLite header); "
            "refusing to use it as --db"
        )


def display_name(url: str) -> str:
    """How messages name a database: its file path, else the URL without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def known_revisions() -> set[str]:
    """Every revision this release ships."""
    script = ScriptDirectory.from_config(alembic_config())
    return {rev.revision for rev in script.walk_revisions()}


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _too_new(db: str, revision: str) -> SchemaTooNew:
    return SchemaTooNew(
        f"{db} was written by a newer dispatch (schema {revision}); upgrade dispatch"
    )


async def check_readable(engine: AsyncEngine, db: str) -> None:
    """For read-only opens: the schema must be exactly this release's head."""
    revision = await current_revision(engine)
    if revision is None:
        raise NotADatabase(f"{db} is not a dispatch database (no schema)")
    if revision not in known_revisions():
        raise _too_new(db, revision)
    if revision != head():
        raise SchemaTooOld(
            f"{db} has schema {revision}, older than this dispatch ({head()}); "
            f"run: dispatch db upgrade --db {db}"
        )


async def migrate_locked(
    engine: AsyncEngine, url: str, db: str, *, revision: str = "head", wait_s: float = 0.0,
    always_lock: bool = False,
) -> str | None:
    """Migrate to ``revision`` holding the run lock; return the revision reached.

    Nothing is locked when the schema is already at head (unless ``always_lock``).
    Waits up to ``wait_s`` real seconds for the lock, then raises :class:`StoreLocked`
    naming the holder's pid; raises :class:`SchemaTooNew` for an unknown revision.
    """
    current = await current_revision(engine)
    if current is not None and current not in known_revisions():
        raise _too_new(db, current)
    if current == head() and revision == "head" and not always_lock:
        return current
    lock = RunLock(url)
    await _acquire_within(lock, wait_s)
    try:
        current = await current_revision(engine)  # another process may have migrated
        if current is not None and current not in known_revisions():
            raise _too_new(db, current)
        await upgrade(engine, revision)
        return await current_revision(engine)
    finally:
        lock.release()


async def _acquire_within(lock: RunLock, wait_s: float) -> None:
    deadline = anyio.current_time() + wait_s
    while True:
        try:
            lock.acquire()
            return
        except StoreLocked:
            if anyio.current_time() >= deadline:
                raise
        await anyio.sleep(LOCK_POLL_S)
