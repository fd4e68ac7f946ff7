"""``dispatch ctl status|pause|resume|cancel|requeue CAMPAIGN``: the control plane's client.

Talks HTTP to a running ``dispatch serve`` (default ``http://127.0.0.1:8765``). The
token, when the server needs one, is read from ``--token-file`` (never a flag: a
command line is visible to every user of the host) or ``$DISPATCH_CONTROL_TOKEN``.
Exit codes: 0 done, 2 refused (bad arguments, unknown campaign, illegal
transition, bad token), 3 the server cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from dispatch.cli.errors import EXIT_OK, EXIT_USAGE, CliError
from dispatch.cli.options import one_line_errors

__all__ = ["DEFAULT_URL", "register"]

DEFAULT_URL = "http://127.0.0.1:8765"
TOKEN_ENV = "DISPATCH_CONTROL_TOKEN"
EXIT_UNREACHABLE = 3
_TIMEOUT_S = 10.0


def register(subparsers: Any) -> None:
    from dispatch.cli.campaign_cmd import campaign_id

    parser = subparsers.add_parser("ctl", help="steer a running `dispatch serve` over HTTP")
    one_line_errors(parser)
    actions = parser.add_subparsers(dest="ctl_command", metavar="ACTION")
    actions.required = True
    for name, help_text in (("status", "state, limits, counters, next dial"),
                            ("pause", "no new dials; live calls continue"),
                            ("resume", "dial again"),
                            ("cancel", "no new dials; live calls finish; the rest cancelled"),
                            ("requeue", "put finished records back to pending")):
        sub = actions.add_parser(name, help=help_text)
        sub.add_argument("campaign", type=campaign_id, metavar="CAMPAIGN")
        sub.add_argument("--url", default=DEFAULT_URL, help=f"control plane ({DEFAULT_URL})")
        sub.add_argument("--token-file", type=Path, metavar="F",
                         help=f"file holding the bearer token (else ${TOKEN_ENV})")
        sub.add_argument("--json", action="store_true", help="print the server's JSON")
        if name == "requeue":
            _requeue_options(sub)
        sub.set_defaults(func=_run, action=name)
        one_line_errors(sub)


def _requeue_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--status", action="extend", nargs="+", default=[], metavar="S")
    sub.add_argument("--reason", action="extend", nargs="+", default=[], metavar="R")
    sub.add_argument("--id", action="extend", nargs="+", default=[], metavar="ID", dest="ids")
    sub.add_argument("--source", action="extend", nargs="+", default=[], metavar="KEY",
                     dest="sources")
    sub.add_argument("--all", action="store_true", dest="everything")
    sub.add_argument("--dry-run", action="store_true")


def _token(args: argparse.Namespace) -> str | None:
    if args.token_file is not None:
        try:
            token: str = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"--token-file {args.token_file}: {exc.strerror or exc}",
                           EXIT_USAGE) from None
        if not token:
            raise CliError(f"--token-file {args.token_file}: empty", EXIT_USAGE)
        return token
    env: str | None = os.environ.get(TOKEN_ENV) or None
    return env


def _request(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    path = "/v1/campaigns/" + _quote(args.campaign)
    if args.action == "status":
        return "GET", path, None
    if args.action == "requeue":
        body: dict[str, Any] = {"status": args.status, "reason": args.reason, "ids": args.ids,
                                "source": args.sources, "dry_run": args.dry_run}
        if args.everything:
            body = {"all": True, "dry_run": args.dry_run}
        return "POST", path + "/requeue", body
    return "POST", f"{path}/{args.action}", None


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _call(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    method, path, body = _request(args)
    token = _token(args)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=args.url, timeout=_TIMEOUT_S) as client:
            response = client.request(method, path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the control plane at {args.url}: {exc}",
                       EXIT_UNREACHABLE) from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code >= 400:
        detail = data.get("detail") if isinstance(data, dict) else None
        raise CliError(f"{response.status_code}: {detail or response.reason_phrase}",
                       EXIT_USAGE if response.status_code < 500 else EXIT_UNREACHABLE)
    if not isinstance(data, dict):
        raise CliError(f"unexpected answer from {args.url}", EXIT_UNREACHABLE)
    return data


def _limits_text(limits: dict[str, Any]) -> str:
    return (f"{limits.get('max_per_minute') or '-'}/min, {limits.get('max_per_second') or '-'}/s,"
            f" {limits.get('max_concurrent') or '-'} concurrent")


def _status_text(view: dict[str, Any]) -> str:
    records = ", ".join(f"{k} {v}" for k, v in view.get("records", {}).items()) or "none"
    live = view.get("live")
    lines = [f"campaign   {view['id']}",
             f"state      {view['state']} (by {view.get('state_changed_by')})",
             f"limits     {_limits_text(view.get('limits', {}))}",
             f"records    {records}"]
    if live is None:
        lines.append("live       no dispatcher in the serving process")
    else:
        eta = live.get("next_dial_in_s")
        waiting = view.get("waiting_on")
        lines.append(f"live       {live['live_calls']} call(s), {live['dials_last_60s']} dial(s) "
                     f"in the last 60 s, next dial {'-' if eta is None else f'in {eta:.1f} s'}"
                     + ("" if not waiting else f" (waiting on {waiting})"))
    return "\n".join(lines)


def _text(args: argparse.Namespace, data: dict[str, Any]) -> str:
    if args.action == "status":
        return _status_text(data)
    if args.action == "requeue":
        verb = "would requeue" if data.get("dry_run") else "requeued"
        return f"{verb} {data.get('count', 0)} record(s) of campaign {args.campaign!r}"
    return f"campaign {data['id']!r} {data['state']} (by {data.get('state_changed_by')})"


def _run(args: argparse.Namespace) -> int:
    try:
        data = _call(args)
    except CliError as exc:
        print(f"dispatch ctl: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(data, sort_keys=True) if args.json else _text(args, data))
    return EXIT_OK
