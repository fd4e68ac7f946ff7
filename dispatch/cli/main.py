"""``python -m dispatch`` / ``dispatch``: the command-line entry point.

Each subcommand lives in its own module exposing ``register(subparsers)``, which
adds a parser and sets ``func`` (a callable taking the parsed namespace and
returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

_COMMAND_MODULES = (
    "dispatch.cli.run_cmd",
    "dispatch.cli.report_cmd",
    "dispatch.cli.sandbox_cmd",
    "dispatch.cli.db_cmd",
    "dispatch.cli.requeue_cmd",
    "dispatch.cli.campaign_cmd",
    "dispatch.cli.serve_cmd",  # serve, config check
    "dispatch.cli.ctl_cmd",
    "dispatch.cli.check_cmd",
    "dispatch.cli.dnc_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dispatch",
        description="Outbound call campaigns for Pinecall voice agents.",
    )
    from dispatch.cli.options import one_line_errors

    one_line_errors(parser)  # `dispatch run x.csv --bogus` is reported here: one line too
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
