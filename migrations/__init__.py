"""Alembic migrations for the dispatch database.

Shipped as a package so that it is found when dispatch is installed
non-editable; :func:`dispatch.store.migrate.upgrade` configures alembic
programmatically from this directory (no ``alembic.ini`` needed at runtime).
"""
