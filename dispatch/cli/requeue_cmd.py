"""``dispatch requeue``: put finished records back to ``pending``.

For recovering from a campaign-wide mistake (a bad greeting, a missing
``--region``, a refused caller id) without losing duplicate-call protection: ids
stay known, attempt history stays, records being dialled are never touched, and
each requeue is audited (who, when, which filter, each record's previous state).
At least one filter is required (``--all`` to take every finished record).
Refused (one line, exit 2) while a campaign process holds the database's run lock.
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
import time
from typing import Any

import anyio

from dispatch.cli.errors import CliError

__all__ = ["register"]

EXIT_USAGE = 2
_TERMINAL = ("completed", "failed", "skipped")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "requeue", help="put finished records back to pending (audited)",
        description="Put finished records (completed, failed, skipped) back to pending. "
        "Filters of different kinds must all match; values of one kind are alternatives.",
    )
    parser.add_argument("--db", default="dispatch.db", help="database path or URL (dispatch.db)")
    parser.add_argument("--status", action="extend", nargs="+", default=[], metavar="S",
                        help="completed, failed or skipped")
    parser.add_argument("--reason", action="extend", nargs="+", default=[], metavar="R",
                        help="last reason, e.g. no_answer, invalid_phone")
    parser.add_argument("--id", action="extend", nargs="+", default=[], metavar="ID",
                        dest="ids", help="record ids (in every source, unless --source)")
    parser.add_argument("--source", action="extend", nargs="+", default=[], metavar="KEY",
                        dest="sources",
                        help="only records of these sources (the report's source column)")
    parser.add_argument("--all", action="store_true", dest="everything",
                        help="every finished record (instead of filters)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print what would change and change nothing")
    parser.set_defaults(func=run_requeue)


def run_requeue(args: argparse.Namespace) -> int:
    try:
        selection = _selection(args)
        _require_db(str(args.db))
        result = anyio.run(_requeue, str(args.db), selection, bool(args.dry_run))
    except CliError as exc:
        print(f"dispatch requeue: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(_summary(result))
    return 0


def _selection(args: argparse.Namespace) -> Any:
    from dispatch.reasons import Reason
    from dispatch.store import RequeueFilter

    for status in args.status:
        if status not in _TERMINAL:
            raise CliError(f"--status {status!r}: only finished records can be requeued "
                           f"({', '.join(_TERMINAL)})", EXIT_USAGE)
    known = {reason.value for reason in Reason}
    for reason in args.reason:
        if reason not in known:
            raise CliError(f"--reason {reason!r}: not a reason ({', '.join(sorted(known))})",
                           EXIT_USAGE)
    has_filter = bool(args.status or args.reason or args.ids or args.sources)
    if args.everything and has_filter:
        raise CliError("--all takes no --status/--reason/--id/--source (it means every "
                       "finished record)", EXIT_USAGE)
    if not args.everything and not has_filter:
        raise CliError("give at least one filter (--status, --reason, --id, --source), "
                       "or --all for every finished record", EXIT_USAGE)
    return RequeueFilter(statuses=tuple(args.status), reasons=tuple(args.reason),
                         ids=tuple(args.ids), everything=bool(args.everything),
                         sources=tuple(args.sources))


def _require_db(db: str) -> None:
    if "://" not in db and not os.path.isfile(db):
        raise CliError(f"--db {db}: no database there", EXIT_USAGE)


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (e.g. a container without passwd entry)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


async def _requeue(db: str, selection: Any, dry_run: bool) -> Any:
    from dispatch.store import RunLock, StoreError, open_store

    try:
        # open first: a migration takes (and releases) the run lock by itself
        async with open_store(db) as store:
            lock = RunLock(store.url)
            lock.acquire()  # StoreLocked (a campaign runs): refuse, naming its pid
            try:
                return await store.requeue(selection, now=time.time(), user=_operator(),
                                           pid=os.getpid(), dry_run=dry_run)
            finally:
                lock.release()
    except StoreError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _summary(result: Any) -> str:
    if result.count == 0:
        return "no finished record matches; nothing changed"
    parts = ", ".join(
        f"{status}/{reason or '-'}: {n}"
        for (status, reason), n in sorted(result.by_status_reason.items(),
                                          key=lambda item: (item[0][0], item[0][1] or ""))
    )
    ids = ", ".join(result.first_ids) + (" ..." if result.count > len(result.first_ids) else "")
    verb = "would requeue" if result.dry_run else "requeued"
    tail = " (dry run: nothing changed)" if result.dry_run else f" (audit #{result.requeue_id})"
    return f"{verb} {result.count} record(s) to pending: {parts}; first ids: {ids}{tail}"
