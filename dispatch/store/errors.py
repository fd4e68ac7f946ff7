"""Errors raised by :mod:`dispatch.store`.

SQLAlchemy, aiosqlite and alembic exceptions never leave this package; they are
translated here and chained with ``from``::

    StoreError              any database failure (open, migrate, read, write)
    ├── StoreClosed         a write was submitted after the writer stopped
    ├── StoreLocked         another process runs a campaign on this database (lock.py)
    ├── NotADatabase        the path is a file, but not a SQLite database (or no schema)
    ├── SchemaTooNew        written by a newer dispatch (a revision this code lacks)
    └── SchemaTooOld        a read-only open of a database not yet upgraded
"""

from __future__ import annotations

__all__ = ["NotADatabase", "SchemaTooNew", "SchemaTooOld", "StoreClosed", "StoreError"]


class StoreError(Exception):
    """A database operation failed. ``str()`` says which and why."""


class StoreClosed(StoreError):
    """The store's writer is not running (not started yet, or already closed)."""


class NotADatabase(StoreError):
    """The file exists but is not a dispatch database (e.g. a CSV given as ``--db``)."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer release; this one must not touch it."""


class SchemaTooOld(StoreError):
    """A read-only open of a database whose schema has not been upgraded yet."""
