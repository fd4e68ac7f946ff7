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

from dispatch.cli import options
from dispatch.log import configure_logging
from dispatch.sandbox import Faults, Sandbox, ScenarioError

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
    p.add_argument("--log-json", action="store_true", help="JSON log lines on stderr")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=run)
    options.one_line_errors(p)


def run(args: argparse.Namespace) -> int:
    """Run the sandbox in the foreground; see the module docstring for exit codes."""
    configure_logging(json=args.log_json, level=args.log_level)
    try:
        sandbox = Sandbox(
            host=args.host,
            port=args.port,
            scenario=args.scenario,
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
            print(f"sandbox listening on {sandbox.url}", flush=True)
            async for _ in signals:
                break
