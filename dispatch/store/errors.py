"""Errors raised by :mod:`dispatch.store`.

SQLAlchemy, aiosqlite and alembic exceptions never leave this package; they are
translated here and chained with ``from``::

    StoreError              any database failure (open, migrate, read, write)
    ├── StoreClosed         a write was submitted after the writer stopped
    └── StoreLocked         another process runs a campaign on this database (lock.py)
"""

from __future__ import annotations

__all__ = ["StoreClosed", "StoreError"]


class StoreError(Exception):
    """A database operation failed. ``str()`` says which and why."""


class StoreClosed(StoreError):
    """The store's writer is not running (not started yet, or already closed)."""
