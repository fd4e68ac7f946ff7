"""``dispatch sandbox``: run the sandbox voice server until SIGINT/SIGTERM.

Prints one line, ``sandbox listening on ws://HOST:PORT``, once it accepts
connections (scripts wait for it; with ``--port 0`` it tells the chosen port).
Exit codes: 0 after a signal, 2 for a bad option or scenario, 1 if it cannot listen.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from typing import Any

import anyio
from pydantic import ValidationError

from dispatch.cli import options
from dispatch.log import configure_logging
from dispatch.runtime import tune_gc
from dispatch.sandbox import Faults, RefusalSettings, Sandbox, Scenario, ScenarioError

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``sandbox`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "sandbox",
        help="run the local sandbox voice server",
        description="A fake Pinecall /client server that simulates callees "
        "(last two digits of the number, or a TOML scenario).",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=options.port, default=8765, help="0 picks a free port")
    p.add_argument("--scenario", metavar="FILE", help="TOML scenario file")
    p.add_argument(
        "--speed",
        type=options.speed,
        default=1.0,
        help="simulated seconds per real second (inf: instant calls)",
    )
    p.add_argument("--instant", action="store_true", help="zero ring/talk time (speed=inf)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--api-key", metavar="KEY", help="require this key (others get INVALID_KEY + close 1008)"
    )
    p.add_argument("--dial-log", metavar="FILE", help="append every call.dial as JSON lines")
    p.add_argument(
        "--compound-agent-ids", action="store_true", help="echo agent ids as org_sandbox:<slug>"
    )
    p.add_argument(
        "--ping-interval", type=options.positive_float, metavar="S",
        help="send server pings every S seconds"
    )
    _refusal_options(p)
    p.add_argument("--log-json", action="store_true", help="JSON log lines on stderr")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=run)
    options.one_line_errors(p)


#: --refuse-* flag -> RefusalSettings field (a scenario's [refusals] table, overridden)
_REFUSE_FLAGS: dict[str, tuple[str, Any, str]] = {
    "per-minute": ("per_minute", int, "429 too_fast over N dials per minute"),
    "minute-s": ("minute_s", float, "length in real seconds of that minute (tests)"),
    "per-day": ("per_day", int, "429 too_many once N dials were received"),
    "per-number": ("per_number", int, "429 too_often once a number was dialled N times"),
    "storm": ("storm", float, "429 too_fast for this share (0-1) of dials"),
    "storm-dials": ("storm_dials", int, "... among the first N dials only"),
    "storm-retry-after": ("storm_retry_after_s", float, "retry hint (s) sent with them"),
    "quiet-hours": ("quiet_hours", str, "403 quiet_hours for numbers matching PATTERN"),
    "dnc": ("do_not_call", str, "403 do_not_call for numbers matching PATTERN"),
    "no-consent": ("no_consent", str, "403 no_consent for numbers matching PATTERN"),
    "stranger": ("stranger", str, "403 stranger for numbers matching PATTERN"),
    "quota-after": ("quota_after", int, "429 quota for every dial after N placed"),
    "quota": ("quota", str, "the quota code: minutes or concurrent_calls"),
    "as": ("frame", str, "refusal frame: call.error (default) or error"),
}
_LISTS = frozenset({"quiet_hours", "do_not_call", "no_consent", "stranger"})


def _refusal_options(p: argparse.ArgumentParser) -> None:
    group = p.add_argument_group("platform refusals (see dispatch.sandbox.refusals)")
    for flag, (field, kind, text) in _REFUSE_FLAGS.items():
        many = field in _LISTS
        group.add_argument(f"--refuse-{flag}", dest=f"refuse_{field}", type=kind, help=text,
                           metavar="PATTERN" if many else "N" if kind is not str else "CODE",
                           action="append" if many else "store")


def _refusals(args: argparse.Namespace, scenario: Scenario) -> RefusalSettings:
    given = {field: getattr(args, f"refuse_{field}") for field, _, _ in _REFUSE_FLAGS.values()}
    given = {k: v for k, v in given.items() if v is not None}
    base = scenario.model.refusals.model_dump()
    for field in _LISTS & given.keys():
        given[field] = [*base[field], *given[field]]
    try:
        return RefusalSettings.model_validate({**base, **given})
    except ValidationError as exc:
        flags = {field: flag for flag, (field, _, _) in _REFUSE_FLAGS.items()}
        problems = [f"--refuse-{flags.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}"
                    for e in exc.errors()]
        raise ScenarioError("; ".join(problems)) from exc


def run(args: argparse.Namespace) -> int:
    """Run the sandbox in the foreground; see the module docstring for exit codes."""
    configure_logging(json=args.log_json, level=args.log_level)
    try:
        scenario = Scenario.from_file(args.scenario) if args.scenario else Scenario()
        sandbox = Sandbox(
            host=args.host,
            port=args.port,
            scenario=scenario,
            refusals=_refusals(args, scenario),
            speed=math.inf if args.instant else args.speed,
            seed=args.seed,
            api_key=args.api_key,
            faults=Faults(),
            dial_log=args.dial_log,
            compound_agent_ids=args.compound_agent_ids,
            ping_interval_s=args.ping_interval,
        )
    except (ScenarioError, ValueError) as exc:
        print(f"dispatch sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        anyio.run(_serve, sandbox)
    except OSError as exc:
        print(f"dispatch sandbox: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(sandbox: Sandbox) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with sandbox:
            tune_gc()
            print(f"sandbox listening on {sandbox.url}", flush=True)
            async for _ in signals:
                break
