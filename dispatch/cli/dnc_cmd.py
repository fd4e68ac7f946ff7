"""``dispatch dnc add|remove|list|import``: the internal do-not-call list (issue 9).

The list lives in the campaign database (``dnc_entries``); every entry keeps its
reason, source (``cli login@host``, the imported file, an opt-out during a call) and
time. A running campaign re-reads it before every claim batch, so ``dnc add`` takes
effect on the next dial without a restart. ``--campaign C`` scopes an entry to one
campaign (default: every campaign).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from dispatch.cli import options
from dispatch.cli.errors import EXIT_OK, EXIT_USAGE, CliError

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("dnc", help="the internal do-not-call list")
    sub = p.add_subparsers(dest="dnc_command", metavar="add|remove|list|import")
    sub.required = True
    add = sub.add_parser("add", help="suppress numbers")
    add.add_argument("phones", nargs="+", metavar="PHONE")
    add.add_argument("--reason", default="requested", help="why (default %(default)s)")
    remove = sub.add_parser("remove", help="lift suppressions")
    remove.add_argument("phones", nargs="+", metavar="PHONE")
    listing = sub.add_parser("list", help="every entry, oldest first")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    imp = sub.add_parser("import", help="suppress every number of a file (one per line, or "
                         "a CSV with a phone column)")
    imp.add_argument("input", type=Path, metavar="FILE")
    imp.add_argument("--reason", default="imported", help="why (default %(default)s)")
    for parser in (add, remove, listing, imp):
        parser.add_argument("--db", type=Path, default=Path("dispatch.db"))
        parser.add_argument("--campaign", metavar="NAME",
                            help="only this campaign (default: every campaign)")
        parser.add_argument("--region", type=options.region, metavar="CC",
                            help="country for national numbers (US)")
        parser.set_defaults(func=run_dnc)
        options.one_line_errors(parser)
    options.one_line_errors(p)


def run_dnc(args: argparse.Namespace) -> int:
    try:
        code: int = anyio.run(_dispatch, args)
        return code
    except CliError as exc:
        print(f"dispatch dnc: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _phone(text: str, region: str | None) -> str:
    from dispatch.phone import InvalidPhone, normalize_phone

    try:
        return normalize_phone(text, region)
    except InvalidPhone as exc:
        raise CliError(f"{text!r} is not a phone number: {exc.why}", EXIT_USAGE) from exc


async def _dispatch(args: argparse.Namespace) -> int:
    from dispatch.store import StoreError, open_store
    from dispatch.store.compliance import GLOBAL_SCOPE

    scope = args.campaign or GLOBAL_SCOPE
    if args.dnc_command == "list" and not await anyio.Path(args.db).exists():
        raise CliError(f"database {str(args.db)!r} does not exist", EXIT_USAGE)
    phones = [_phone(p, args.region) for p in getattr(args, "phones", ())]
    try:
        async with open_store(args.db, read_only=args.dnc_command == "list") as store:
            if args.dnc_command == "add":
                return await _add(store.engine, phones, scope, args.reason, _who())
            if args.dnc_command == "remove":
                return await _remove(store.engine, phones, args.campaign)
            if args.dnc_command == "import":
                return await _import(store.engine, args, scope)
            return await _list(store.engine, args.json)
    except StoreError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


async def _add(engine: Any, phones: list[str], scope: str, reason: str, source: str) -> int:
    from dispatch.store.compliance import dnc_add

    added = 0
    for phone in phones:
        if await dnc_add(engine, phone, scope=scope, reason=reason, source=source,
                         at_s=time.time()):
            added += 1
        else:
            print(f"{phone}: already on the list")
    print(f"added {added} number(s) to the do-not-call list ({_scope(scope)})")
    return EXIT_OK


async def _remove(engine: Any, phones: list[str], campaign: str | None) -> int:
    from dispatch.store.compliance import dnc_remove

    removed = 0
    for phone in phones:
        n = await dnc_remove(engine, phone, scope=campaign)
        if not n:
            print(f"{phone}: not on the list")
        removed += n
    print(f"removed {removed} entr{'y' if removed == 1 else 'ies'}")
    return EXIT_OK


async def _import(engine: Any, args: argparse.Namespace, scope: str) -> int:
    import functools

    from dispatch.compliance import DncSourceError, load_suppression_file

    try:
        loaded = await anyio.to_thread.run_sync(functools.partial(
            load_suppression_file, args.input, default_region=args.region))
    except DncSourceError as exc:
        raise CliError(str(exc), EXIT_USAGE, option="FILE") from exc
    for problem in loaded.problems:
        print(f"{args.input}: {problem} (not imported)")
    phones = sorted(loaded.suppression.phones())
    return await _add(engine, phones, scope, args.reason, f"import {args.input.name}")


async def _list(engine: Any, as_json: bool) -> int:
    from dispatch.store.compliance import dnc_entries

    for entry in await dnc_entries(engine):
        added = dt.datetime.fromtimestamp(entry.added_at, dt.UTC).isoformat(timespec="seconds")
        if as_json:
            print(json.dumps({"phone": entry.phone, "scope": entry.scope,
                              "reason": entry.reason, "source": entry.source,
                              "record_id": entry.record_id, "added_at": added}))
        else:
            record = f" record {entry.record_id}" if entry.record_id else ""
            print(f"{entry.phone}  {_scope(entry.scope)}  {entry.reason}  {entry.source}"
                  f"{record}  {added}")
    return EXIT_OK


def _scope(scope: str) -> str:
    return "every campaign" if scope == "*" else f"campaign {scope}"


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli {user}@{socket.gethostname()}"
