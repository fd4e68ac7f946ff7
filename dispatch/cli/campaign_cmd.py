"""``dispatch campaign list|show|pause|resume|cancel``: read and steer campaigns.

The state lives in the database (:mod:`dispatch.store.campaigns`), so these commands
never take the run lock: a pause must reach the process that is running the
campaign, which reads the state at least every half second and acknowledges what
it saw. ``pause``/``resume``/``cancel`` wait up to :data:`ACK_WAIT_S` for that
acknowledgement when the campaign's dispatcher is alive on this host, and say
whether it came. Unknown campaigns and illegal transitions are one line, exit 2.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from dispatch.cli.errors import EXIT_OK, EXIT_USAGE, CliError
from dispatch.cli.options import one_line_errors

__all__ = ["ACK_WAIT_S", "campaign_id", "register"]

#: how long pause/resume/cancel wait for a running dispatcher to acknowledge (real s)
ACK_WAIT_S = 5.0
_ACK_POLL_S = 0.1
_ACTION_HELP = {
    "pause": "stop new dials (live calls continue) until resumed",
    "resume": "let a paused campaign dial again",
    "cancel": "stop for good: live calls finish, records not yet dialled are closed",
}


def campaign_id(text: str) -> str:
    """argparse type for ``--campaign`` and ``NAME``."""
    from dispatch.hub.campaign_state import check_campaign_id

    try:
        return check_campaign_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: Any) -> None:
    """Add ``campaign`` and its subcommands (each with ``--db``)."""
    parser = subparsers.add_parser("campaign", help="list, show, pause, resume or cancel "
                                   "campaigns (no run lock: reaches a running campaign)")
    one_line_errors(parser)
    actions = parser.add_subparsers(dest="campaign_command", metavar="ACTION")
    actions.required = True
    for name, help_text in (("list", "every campaign with its state and counts"),
                            ("show", "one campaign: state, limits, counts, who changed it"),
                            *_ACTION_HELP.items()):
        sub = actions.add_parser(name, help=help_text)
        if name != "list":
            sub.add_argument("name", type=campaign_id, metavar="NAME", help="campaign id")
        sub.add_argument("--db", type=Path, default=Path("dispatch.db"), help="SQLite state file")
        if name in ("list", "show"):
            sub.add_argument("--json", action="store_true", help="print JSON")
        sub.set_defaults(func=_run, action=name)
        one_line_errors(sub)


def _run(args: argparse.Namespace) -> int:
    try:
        if not args.db.is_file():
            raise CliError(f"--db {args.db}: no database there", EXIT_USAGE)
        text: str = anyio.run(_dispatch, args)
    except CliError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(text)
    return EXIT_OK


async def _dispatch(args: argparse.Namespace) -> str:
    from dispatch.store import StoreError, open_store, schema
    from dispatch.store import campaigns as store_campaigns

    try:
        async with open_store(args.db, migrate=False) as store:
            await schema.check_readable(store.engine, str(args.db))
            if args.action == "list":
                return await _list(store.engine, args.json)
            if args.action == "show":
                return await _show(store.engine, args.name, args.json)
            row = await store_campaigns.transition(store.engine, args.name, args.action,
                                                   now=time.time(), by=_operator())
            return await _after(store.engine, row)
    except StoreError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _as_dict(row: Any, counts: dict[str, int]) -> dict[str, Any]:
    from dataclasses import asdict

    return {**asdict(row), "records": dict(sorted(counts.items()))}


async def _list(engine: Any, as_json: bool) -> str:
    from dispatch.store import campaigns as store_campaigns

    rows = await store_campaigns.list_all(engine)
    counts = await store_campaigns.record_counts(engine)
    if as_json:
        return json.dumps([_as_dict(r, counts.get(r.id, {})) for r in rows], sort_keys=True)
    if not rows:
        return "no campaign in this database yet"
    lines = [f"{'campaign':<24} {'state':<10} {'records':>8}  by status"]
    for row in rows:
        by_status = counts.get(row.id, {})
        text = ", ".join(f"{s} {n}" for s, n in sorted(by_status.items())) or "-"
        lines.append(f"{row.id:<24} {row.state:<10} {sum(by_status.values()):>8}  {text}")
    return "\n".join(lines)


async def _show(engine: Any, name: str, as_json: bool) -> str:
    from dispatch.store import campaigns as store_campaigns

    row = await store_campaigns.get(engine, name)
    if row is None:
        raise store_campaigns.UnknownCampaign(f"unknown campaign {name!r}")
    counts = (await store_campaigns.record_counts(engine)).get(name, {})
    if as_json:
        return json.dumps(_as_dict(row, counts), sort_keys=True)
    limits = (f"{row.max_per_minute or '-'}/min, {row.max_per_second or '-'}/s, "
              f"{row.max_concurrent or '-'} concurrent")
    acked = ("-" if row.acked_state is None else
             f"{row.acked_state} by {row.acked_by} at {_iso(row.acked_at)}")
    return "\n".join([
        f"campaign   {row.id}",
        f"state      {row.state} (by {row.state_changed_by} at {_iso(row.state_changed_at)})",
        f"seen by    {acked}",
        f"limits     {limits}",
        "records    " + (", ".join(f"{s} {n}" for s, n in sorted(counts.items())) or "none"),
    ])


def _iso(at: float | None) -> str:
    return "-" if at is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


_PID = re.compile(r"^dispatch pid (\d+)@(.+)$")


def _live_dispatcher(acked_by: str | None) -> int | None:
    """The pid of the dispatcher that last acknowledged, if it is alive on this host."""
    match = _PID.match(acked_by or "")
    if match is None or match.group(2) != socket.gethostname():
        return None
    pid = int(match.group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid  # alive, someone else's
    return pid


async def _after(engine: Any, row: Any) -> str:
    """Wait for a running dispatcher to acknowledge; say what happened, in one line."""
    from dispatch.store import campaigns as store_campaigns

    head = f"campaign {row.id!r} {row.state} (by {row.state_changed_by})"
    pid = _live_dispatcher(row.acked_by)
    if pid is None:
        tail = {"paused": "no dispatcher is running it; a run started on it waits",
                "running": "no dispatcher is running it; the next run dials",
                "cancelled": "no dispatcher is running it; the next run on it closes its "
                             "unfinished records and dials nobody"}
        return f"{head}; {tail.get(row.state, '')}"
    deadline = time.monotonic() + ACK_WAIT_S
    while time.monotonic() < deadline:
        seen = await store_campaigns.get(engine, row.id)
        if seen is not None and seen.acked_state == row.state:
            what = {"paused": "no new dials from now on; live calls continue",
                    "running": "dialling again",
                    "cancelled": "no new dials; live calls finish, then it closes the rest"}
            return f"{head}; acknowledged by dispatcher pid {pid}: {what.get(row.state, '')}"
        await anyio.sleep(_ACK_POLL_S)
    return f"{head}; dispatcher pid {pid} has not acknowledged it within {ACK_WAIT_S:g} s"
