"""``dispatch serve --config F`` and ``dispatch config check F``.

An invalid file is refused with one line per error, each naming the key path and
the bad value (never a secret), exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

EXIT_CONFIG = 2


def register(subparsers: Any) -> None:
    from dispatch.cli import options

    serve = subparsers.add_parser(
        "serve", help="run the campaigns of a config file as a daemon (systemd Type=notify)",
        description="Run every campaign of a TOML config file. SIGHUP reloads it, SIGTERM "
        "drains (no new dials, live calls finish) and exits 0.")
    serve.add_argument("--config", type=Path, default=_default_config(), metavar="FILE",
                       help="config file (default: $DISPATCH_CONFIG or ./dispatch.toml)")
    serve.set_defaults(func=serve_main)
    options.one_line_errors(serve)
    config = subparsers.add_parser("config", help="check a config file")
    sub = config.add_subparsers(dest="config_command", metavar="ACTION")
    sub.required = True
    check = sub.add_parser("check", help="validate a config file (errors name the key path)")
    check.add_argument("file", type=Path)
    check.set_defaults(func=check_main)
    options.one_line_errors(config)
    options.one_line_errors(check)


def _default_config() -> Path:
    return Path(os.environ.get("DISPATCH_CONFIG") or "dispatch.toml")


def _load(path: Path) -> Any:
    from dispatch.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for line in exc.errors:
            sys.stderr.write(f"{exc.source}: {line}\n")
        return None


def check_main(args: argparse.Namespace) -> int:
    config = _load(args.file)
    if config is None:
        return EXIT_CONFIG
    names = ", ".join(c.name for c in config.campaigns)
    sys.stdout.write(f"{args.file}: ok ({len(config.campaigns)} campaign(s): {names})\n")
    return 0


def serve_main(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return EXIT_CONFIG
    import anyio

    from dispatch.daemon import Daemon
    from dispatch.log import configure_logging

    configure_logging(json=config.log_format == "json", level="info")
    daemon = Daemon(config, config_path=args.config, tune_gc=True)
    code: int = anyio.run(daemon.run)
    return code
