"""``dispatch db upgrade [--db PATH]``: apply the schema migrations.

The hub migrates automatically at start; this command is for deployments that
migrate ahead of time (and for checking which revision a database is at).
``upgrade`` holds the run lock while it migrates, so it refuses while a campaign
runs on the database; it refuses a file that is not a SQLite database (a CSV given
as ``--db`` is never turned into one) and a database written by a newer dispatch.
Every refusal is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio

__all__ = ["register"]

DEFAULT_DB = "dispatch.db"
EXIT_USAGE = 2


def register(subparsers: Any) -> None:
    """Add ``db`` with its ``upgrade`` and ``current`` subcommands."""
    db = subparsers.add_parser("db", help="database maintenance (migrations)")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION")
    actions.required = True
    upgrade = actions.add_parser("upgrade", help="apply migrations up to the newest schema")
    upgrade.add_argument("--db", default=DEFAULT_DB, help=f"database path or URL ({DEFAULT_DB})")
    upgrade.add_argument("--revision", default="head", help="target revision (head)")
    upgrade.set_defaults(func=_upgrade)
    current = actions.add_parser("current", help="print the database's schema revision")
    current.add_argument("--db", default=DEFAULT_DB, help=f"database path or URL ({DEFAULT_DB})")
    current.set_defaults(func=_current)


def _upgrade(args: argparse.Namespace) -> int:
    from dispatch.store import StoreError

    try:
        revision = anyio.run(_do_upgrade, str(args.db), str(args.revision))
    except StoreError as exc:
        print(f"dispatch db upgrade: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{args.db}: at revision {revision}")
    return 0


async def _do_upgrade(db: str, revision: str) -> str | None:
    from dispatch.store import Store
    from dispatch.store.schema import display_name, migrate_locked

    store = await Store.open(db, migrate=False)
    try:
        return await migrate_locked(store.engine, store.url, display_name(store.url),
                                    revision=revision, always_lock=True)
    finally:
        await store.close()


def _current(args: argparse.Namespace) -> int:
    from dispatch.store import StoreError

    try:
        revision = anyio.run(_do_current, str(args.db))
    except StoreError as exc:
        print(f"dispatch db current: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(revision or "(empty database)")
    return 0


async def _do_current(db: str) -> str | None:
    from dispatch.store import Store, current_revision

    store = await Store.open(db, migrate=False)
    try:
        return await current_revision(store.engine)
    finally:
        await store.close()
