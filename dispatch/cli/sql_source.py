"""``dispatch run --sql URL --table T``: the run command's SQL lead source.

``--sql`` takes any SQLAlchemy async URL (``postgresql+asyncpg://...``,
``mysql+asyncmy://...``, ``sqlite+aiosqlite:///file.db``), or ``env:NAME`` to read
it from the environment variable ``NAME`` (so that a password is not visible in
the process list). The URL's password is never printed.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from dispatch.cli import options
from dispatch.cli.errors import EXIT_USAGE, CliError

__all__ = ["add_arguments", "check", "label", "sql_strategy"]


def add_arguments(group: Any) -> None:
    """The ``--sql*`` options of ``dispatch run``."""
    group.add_argument("--sql", metavar="URL",
                       help="read leads from a database (SQLAlchemy async URL, or env:VAR)")
    group.add_argument("--table", metavar="NAME", help="table of leads (schema.table allowed)")
    group.add_argument("--sql-query", metavar="SELECT",
                       help="a SELECT returning the lead columns (instead of --table)")
    group.add_argument("--sql-id-column", default="id", metavar="COLUMN",
                       help="record id column (default %(default)s)")
    group.add_argument("--sql-phone-column", default="phone", metavar="COLUMN",
                       help="phone column (default %(default)s)")
    group.add_argument("--sql-cursor", metavar="COLUMN",
                       help="column read incrementally, e.g. updated_at (default: the id)")
    group.add_argument("--sql-overlap", type=options.positive_float, metavar="SECONDS",
                       help="re-read rows this close to the newest cursor value, so rows "
                       "committed late are not missed")
    group.add_argument("--sql-not-before", metavar="COLUMN",
                       help="column with the earliest time to call")
    group.add_argument("--sql-timezone", metavar="COLUMN", help="column with an IANA zone")
    group.add_argument("--sql-writeback", metavar="FIELD[=COLUMN],...",
                       help="write outcomes back by id: fields status, reason, attempts, "
                       "call_id, disposition, updated_at (e.g. status,reason=call_reason)")
    group.add_argument("--sql-page-size", type=options.positive_int, default=1000,
                       metavar="N", help="most rows read per query (default %(default)s)")


def check(args: argparse.Namespace) -> None:
    """Refuse option combinations that cannot work (exit 2, naming the option)."""
    if args.file is not None:
        raise CliError("give either a CSV FILE or --sql, not both", EXIT_USAGE, option="--sql")
    if (args.table is None) == (args.sql_query is None):
        raise CliError("--sql needs exactly one of --table and --sql-query", EXIT_USAGE,
                       option="--table")
    if args.write_back:
        raise CliError("--write-back is for CSV files; use --sql-writeback", EXIT_USAGE,
                       option="--write-back")
    if args.campaign is None:  # the hub's default would be "sql" for every table
        from dispatch.cli.campaign_cmd import campaign_id

        args.campaign = campaign_id(args.table.split(".")[-1] if args.table else "sql-query")


def _url(text: str) -> str:
    if not text.startswith("env:"):
        return text
    value = os.environ.get(text[4:])
    if not value:
        raise CliError(f"--sql {text}: the environment variable {text[4:]!r} is not set",
                       EXIT_USAGE, option="--sql")
    return value


def sql_strategy(args: argparse.Namespace) -> Any:
    """A :class:`~strategies.SqlStrategy` from the ``--sql*`` options."""
    from dispatch.strategies import SqlStrategy

    try:
        return SqlStrategy(
            _url(args.sql), table=args.table, query=args.sql_query,
            id_column=args.sql_id_column, phone_column=args.sql_phone_column,
            greeting=args.greeting, cursor_column=args.sql_cursor,
            not_before_column=args.sql_not_before, timezone_column=args.sql_timezone,
            write_back=args.sql_writeback, default_region=args.region,
            page_size=args.sql_page_size, cursor_overlap=args.sql_overlap,
        )
    except ValueError as exc:  # messages never contain the URL's password
        raise CliError(f"--sql: {exc}", EXIT_USAGE, option="--sql") from None


def label(args: argparse.Namespace, strategy: Any) -> str:
    """What the title and the summary show as the source (the key has no password)."""
    return str(strategy.key) if getattr(args, "sql", None) else str(args.file)
