"""``dispatch run`` options of the webhook intake and result webhooks.

Secrets and tokens are read from files (``--webhook-secret-file``,
``--webhook-token-file``, ``--result-webhook-secret-file``) or from the environment
(``DISPATCH_WEBHOOK_SECRET``, ``DISPATCH_WEBHOOK_TOKEN``,
``DISPATCH_RESULT_WEBHOOK_SECRET``), never from a command-line value; errors name
the option or variable, never the content. A secret file may hold several ``whsec_``
secrets, one a line (rotation).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dispatch.cli.errors import EXIT_USAGE, CliError

__all__ = ["add_arguments", "attach", "load"]

ENV_SECRET = "DISPATCH_WEBHOOK_SECRET"
ENV_TOKEN = "DISPATCH_WEBHOOK_TOKEN"
ENV_RESULT_SECRET = "DISPATCH_RESULT_WEBHOOK_SECRET"


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"must be HOST:PORT, e.g. 127.0.0.1:8080, got {text!r}")
    return host, int(port)


def add_arguments(group: Any) -> None:
    group.add_argument("--webhook-intake", metavar="HOST:PORT", type=host_port,
                       help="accept records pushed as JSON on http://HOST:PORT/v1/records "
                       "(implies --follow)")
    group.add_argument("--webhook-secret-file", type=Path, metavar="F",
                       help=f"whsec_ secrets of the intake, one a line (or ${ENV_SECRET})")
    group.add_argument("--webhook-token-file", type=Path, metavar="F",
                       help=f"bearer token of the intake (or ${ENV_TOKEN})")
    group.add_argument("--webhook-max-pending", type=int, default=10_000, metavar="N",
                       help="429 once this many pushed records wait (default %(default)s)")
    group.add_argument("--result-webhook", action="append", default=[], metavar="URL",
                       help="POST every outcome, signed, to URL (repeatable)")
    group.add_argument("--result-webhook-secret-file", type=Path, metavar="F",
                       help=f"whsec_ secret signing result webhooks (or ${ENV_RESULT_SECRET})")
    group.add_argument("--result-webhook-dispatched", action="store_true",
                       help="also POST a record.dispatched event when each dial leaves")


def _read(path: Path | None, env: str, option: str) -> str | None:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise CliError(f"cannot read {option} {path}: {why}", EXIT_USAGE,
                           option=option) from None
    return os.environ.get(env) or None


def _secrets(text: str, option: str) -> list[Any]:
    from dispatch.webhooks import parse_secret

    lines = [line.strip() for line in text.splitlines() if line.strip()]
    try:
        return [parse_secret(line) for line in lines]
    except ValueError as exc:
        raise CliError(f"{option}: {exc}", EXIT_USAGE, option=option) from None


def _intake(args: argparse.Namespace) -> Any:
    from dispatch.strategies import WebhookStrategy

    host, port = args.webhook_intake
    secret_text = _read(args.webhook_secret_file, ENV_SECRET, "--webhook-secret-file")
    token_text = _read(args.webhook_token_file, ENV_TOKEN, "--webhook-token-file")
    if (secret_text is None) == (token_text is None):
        raise CliError("--webhook-intake needs exactly one of --webhook-secret-file "
                       f"(${ENV_SECRET}) or --webhook-token-file (${ENV_TOKEN})",
                       EXIT_USAGE, option="--webhook-intake")
    secrets = _secrets(secret_text, "--webhook-secret-file") if secret_text else []
    try:
        return WebhookStrategy(host=host, port=port, secrets=secrets,
                               token=token_text.strip() if token_text else None,
                               max_pending=args.webhook_max_pending,
                               default_region=args.region)
    except ValueError as exc:
        raise CliError(f"--webhook-intake: {exc}", EXIT_USAGE,
                       option="--webhook-intake") from None


def _results(args: argparse.Namespace) -> Any:
    from dispatch.webhooks import Endpoint, ResultWebhooks

    text = _read(args.result_webhook_secret_file, ENV_RESULT_SECRET,
                 "--result-webhook-secret-file")
    if text is None:
        raise CliError(f"--result-webhook needs --result-webhook-secret-file "
                       f"(or ${ENV_RESULT_SECRET})", EXIT_USAGE, option="--result-webhook")
    secrets = _secrets(text, "--result-webhook-secret-file")
    if not secrets:
        raise CliError("--result-webhook-secret-file holds no secret", EXIT_USAGE,
                       option="--result-webhook-secret-file")
    try:
        return ResultWebhooks([Endpoint(url, secrets[0]) for url in args.result_webhook],
                              include_dispatched=args.result_webhook_dispatched)
    except ValueError as exc:
        raise CliError(f"--result-webhook: {exc}", EXIT_USAGE,
                       option="--result-webhook") from None


def load(args: argparse.Namespace) -> None:
    """Build the intake and result webhooks from ``args`` (before anything connects):
    ``args.webhook_strategy`` and ``args.result_webhooks_obj`` (``None`` when unused)."""
    args.webhook_strategy = _intake(args) if args.webhook_intake else None
    args.result_webhooks_obj = _results(args) if args.result_webhook else None
    if args.webhook_strategy is not None:
        args.follow = True  # a push source has no end


def attach(args: argparse.Namespace) -> dict[str, Any]:
    """What ``open_campaign`` adds to the hub: extra strategies and result webhooks."""
    intake = getattr(args, "webhook_strategy", None)
    return {"extra_strategies": [intake] if intake is not None else [],
            "result_webhooks": getattr(args, "result_webhooks_obj", None)}
