"""``dispatch run FILE.csv``: run a campaign from a CSV of leads.

Exit codes: 0 every record is terminal; 1 unexpected error; 2 bad option or
unreadable file; 3 the voice server refused us (bad key, registration);
130 interrupted before every record was terminal (run the command again to go on).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console

from dispatch.cli import backend, progress
from dispatch.cli.errors import CliError
from dispatch.log import configure_logging, get_logger

__all__ = ["register"]

log = get_logger("dispatch.cli")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a campaign from a CSV file",
        description="Dial every lead in a CSV file. Without PINECALL_API_KEY (or with "
        "--sandbox) an embedded sandbox voice server is used and no real call is placed.",
    )
    p.add_argument("file", type=Path, help="CSV file of leads (hot-reloaded)")
    agent = p.add_argument_group("agent")
    agent.add_argument("--agent", default="dispatch-agent", help="agent id (default %(default)s)")
    agent.add_argument("--from", dest="from_", metavar="E164", help="caller id number")
    agent.add_argument("--greeting", help='greeting template, e.g. "Hi {name}, ..." (CSV columns)')
    agent.add_argument("--prompt", help="system prompt of the agent")
    agent.add_argument("--prompt-file", type=Path, help="read the system prompt from a file")
    agent.add_argument("--voice", help='TTS voice, e.g. "elevenlabs/sarah"')
    agent.add_argument("--llm", help='server-side LLM, e.g. "openai/gpt-4.1-mini"')
    agent.add_argument("--stt", help='speech-to-text, e.g. "deepgram:nova-3"')
    agent.add_argument("--language", help='language, e.g. "en"')
    pace = p.add_argument_group("pace")
    pace.add_argument("--rate", type=_positive_int, metavar="N", help="max calls per minute")
    pace.add_argument("--concurrency", type=_positive_int, default=5, metavar="N",
                      help="max simultaneous calls (default %(default)s)")
    pace.add_argument("--retries", type=_non_negative_int, default=0, metavar="N",
                      help="extra attempts for busy/no-answer/failed (default %(default)s)")
    pace.add_argument("--retry-delay", type=_positive_float, metavar="SECONDS",
                      help="wait before every retry (default: busy 2 min, no answer 10 min, "
                      "failed 15 min)")
    pace.add_argument("--poll", type=_positive_float, default=5.0, metavar="SECONDS",
                      help="how often the CSV is checked (default %(default)s)")
    pace.add_argument("--follow", action="store_true",
                      help="keep polling after every row is done (like tail -f)")
    pace.add_argument("--region", metavar="CC", help="default country for national numbers (US)")
    where = p.add_argument_group("where")
    where.add_argument("--db", type=Path, default=Path("dispatch.db"), help="SQLite state file")
    where.add_argument("--url", help="voice server URL (default wss://voice.pinecall.io)")
    where.add_argument("--sandbox", action="store_true", help="force the embedded sandbox")
    where.add_argument("--scenario", type=Path, help="sandbox scenario file (TOML)")
    where.add_argument("--sandbox-speed", type=_positive_float, default=4.0, metavar="X",
                       help="sandbox time acceleration (default %(default)s)")
    where.add_argument("--encoding", default="utf-8", choices=("utf-8", "latin-1"),
                       help="CSV text encoding (default %(default)s; a BOM is always handled)")
    where.add_argument("--delimiter", choices=(",", ";", "tab"),
                       help="CSV delimiter (default: detected from the header line)")
    where.add_argument("--write-back", action="store_true",
                       help="write each outcome to the CSV's status column")
    where.add_argument("--json-logs", action="store_true", help="JSON log lines")
    p.set_defaults(func=run)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    interactive = sys.stderr.isatty() and not args.json_logs
    console = Console(stderr=True)
    configure_logging(json=args.json_logs, level="warning" if interactive else "info")
    try:
        _check_inputs(args)
        return anyio.run(_run, args, console, interactive)
    except BaseExceptionGroup as group:
        # a database taken by another run between our check and the hub's own lock
        from dispatch.store import StoreLocked

        locked, rest = group.split(StoreLocked)
        if locked is None or rest is not None:
            raise
        print(f"dispatch: error: {_first_leaf(locked)}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        # one plain line, never wrapped, so scripts and systemd journals can read it
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _check_inputs(args: argparse.Namespace) -> None:
    path: Path = args.file
    if not path.exists():
        raise CliError(f"cannot read {path}: no such file", EXIT_USAGE)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise CliError(f"cannot read {path}: not a readable file", EXIT_USAGE)
    if args.prompt and args.prompt_file:
        raise CliError("--prompt and --prompt-file are mutually exclusive", EXIT_USAGE)
    if args.prompt_file:
        try:
            args.prompt = args.prompt_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read --prompt-file {args.prompt_file}: {exc.strerror}",
                           EXIT_USAGE) from exc
    if args.scenario and not args.scenario.is_file():
        raise CliError(f"cannot read --scenario {args.scenario}: no such file", EXIT_USAGE)


async def _run(args: argparse.Namespace, console: Console, interactive: bool) -> int:
    async with backend.open_campaign(args, console) as campaign:
        hub = campaign.hub
        interrupted = False
        async with anyio.create_task_group() as tg:

            async def on_signals() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        if not interrupted:
                            interrupted = True
                            log.warning("stopping: draining live calls (signal again to stop now)",
                                        signal=signal.Signals(signum).name)
                            tg.start_soon(hub.stop, True)
                        else:
                            log.warning("stopping now", signal=signal.Signals(signum).name)
                            await hub.stop(False)

            tg.start_soon(on_signals)
            tg.start_soon(progress_loop, hub, console, interactive, campaign.title)
            await hub.run(until_idle=not args.follow)
            tg.cancel_scope.cancel()
        counts, reasons = await campaign.summary()
    progress.render_summary(counts, reasons, console)
    open_count = sum(n for s, n in counts.items() if s not in ("completed", "failed", "skipped"))
    if open_count:
        console.print(
            f"{open_count} record(s) not finished; run the same command again to go on.",
            soft_wrap=True,
        )
        return EXIT_INTERRUPTED if interrupted else EXIT_ERROR
    return EXIT_OK


async def progress_loop(hub: Any, console: Console, interactive: bool, title: str) -> None:
    """Refresh the live panel (terminal) or log a progress line (elsewhere)."""
    eta = progress.EtaEstimator()
    if interactive:
        from rich.live import Live

        with Live(console=console, refresh_per_second=4, transient=False) as live:
            while True:
                fields = progress.stats_fields(hub.statistics())
                seconds = eta.update(progress.done_count(fields), progress.remaining_count(fields))
                live.update(progress.render_panel(fields, seconds, title=title))
                await anyio.sleep(0.25)
    else:
        while True:
            await anyio.sleep(10.0)
            fields = progress.stats_fields(hub.statistics())
            seconds = eta.update(progress.done_count(fields), progress.remaining_count(fields))
            log.info("progress", eta_s=None if seconds is None else round(seconds), **fields)
