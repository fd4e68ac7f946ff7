"""``dispatch run FILE.csv``: run a campaign from a CSV of leads.

Before anyone is dialled: option values are checked by their argparse types
(:mod:`dispatch.cli.options`), then the target (a remote voice server needs
``--from``), then ``strategy.preflight()`` (template fields, phone column, region).
Exit codes are listed in :mod:`dispatch.cli.errors`; what goes to which stream in
:mod:`dispatch.cli.output`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import anyio

from dispatch.cli import backend, options, progress, sql_source, webhook_options
from dispatch.cli.campaign_cmd import campaign_id
from dispatch.cli.compliance_opts import add_compliance_arguments
from dispatch.cli.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    translate,
)
from dispatch.cli.output import Output, Summary
from dispatch.errors import PreflightError, SourceUnusable
from dispatch.log import configure_logging, get_logger
from dispatch.runtime import tune_gc
from dispatch.strategy import Strategy

__all__ = ["add_run_arguments", "register"]

log = get_logger("dispatch.cli")


def register(subparsers: Any) -> None:
    """Add the ``run`` subcommand; bad values are one line naming the option (exit 2)."""
    p = subparsers.add_parser(
        "run",
        help="run a campaign from a CSV file",
        description="Dial every lead in a CSV file. Without PINECALL_API_KEY (or with "
        "--sandbox) an embedded sandbox voice server is used and no real call is placed.",
    )
    p.add_argument("file", type=Path, nargs="?",
                   help="CSV file of leads (hot-reloaded); or use --sql")
    add_run_arguments(p)
    sql_source.add_arguments(p.add_argument_group("sql source"))
    webhook_options.add_arguments(p.add_argument_group("webhooks"))
    p.set_defaults(func=run, make_strategy=_make_strategy)
    options.one_line_errors(p)


def add_run_arguments(p: Any) -> None:
    """Every ``run`` option but the sources (``dispatch check`` takes the same ones)."""
    _agent_arguments(p.add_argument_group("agent"))
    _pace_arguments(p.add_argument_group("pace"))
    _where_arguments(p.add_argument_group("where"))
    add_compliance_arguments(p)


def _agent_arguments(agent: Any) -> None:
    agent.add_argument("--agent", default="dispatch-agent", help="agent id (default %(default)s)")
    agent.add_argument("--from", dest="from_", metavar="E164", type=options.caller_id,
                       help="caller id number, e.g. +14155550000")
    agent.add_argument("--greeting", help='greeting template, e.g. "Hi {name}, ..." (CSV columns)')
    agent.add_argument("--prompt", help="system prompt of the agent")
    agent.add_argument("--prompt-file", type=Path, help="read the system prompt from a file")
    agent.add_argument("--voice", help='TTS voice, e.g. "elevenlabs/sarah"')
    agent.add_argument("--llm", help='server-side LLM, e.g. "openai/gpt-4.1-mini"')
    agent.add_argument("--stt", help='speech-to-text, e.g. "deepgram:nova-3"')
    agent.add_argument("--language", help='language, e.g. "en"')


def _pace_arguments(pace: Any) -> None:
    pace.add_argument("--rate", type=options.positive_int, metavar="N",
                      help="max calls per minute (counted when each dial leaves)")
    pace.add_argument("--cps", type=options.positive_int, metavar="N",
                      help="max calls per second (carriers count CPS; Twilio's default is 1)")
    pace.add_argument("--concurrency", type=options.positive_int, default=5, metavar="N",
                      help="max simultaneous calls (default %(default)s)")
    pace.add_argument("--retries", type=options.non_negative_int, default=0, metavar="N",
                      help="extra attempts for busy/no-answer/failed (default %(default)s)")
    pace.add_argument("--retry-delay", type=options.positive_float, metavar="SECONDS",
                      help="wait before every retry (default: busy 2 min, no answer 10 min, "
                      "failed 15 min)")
    pace.add_argument("--poll", type=options.positive_float, default=5.0, metavar="SECONDS",
                      help="how often the CSV is checked (default %(default)s)")
    pace.add_argument("--follow", action="store_true",
                      help="keep polling after every row is done (like tail -f)")
    pace.add_argument("--region", metavar="CC", type=options.region,
                      help="default country for national numbers (US)")


def _where_arguments(where: Any) -> None:
    where.add_argument("--db", type=_db_arg, default=Path("dispatch.db"),
                       help="SQLite state file, or a postgresql+asyncpg:// URL (cluster mode)")
    where.add_argument("--campaign", metavar="NAME", type=campaign_id,
                       help="campaign id (default: the CSV file's stem); see `dispatch campaign`")
    where.add_argument("--url", type=options.voice_url,
                       help="voice server URL (default wss://voice.pinecall.io)")
    where.add_argument("--sandbox", action="store_true", help="force the embedded sandbox")
    where.add_argument("--scenario", type=Path, help="sandbox scenario file (TOML)")
    where.add_argument("--sandbox-speed", type=options.speed, default=4.0, metavar="X",
                       help="sandbox time acceleration (default %(default)s)")
    where.add_argument("--encoding", default="utf-8", choices=("utf-8", "latin-1"),
                       help="CSV text encoding (default %(default)s; a BOM is always handled)")
    where.add_argument("--delimiter", choices=(",", ";", "tab"),
                       help="CSV delimiter (default: detected from the header line)")
    where.add_argument("--write-back", action="store_true",
                       help="write each outcome to the CSV's status column")
    where.add_argument("--json-logs", action="store_true",
                       help="JSON log lines on stderr, JSON summary on stdout")


def run(args: argparse.Namespace) -> int:
    """Run the campaign; return the exit code (see :mod:`dispatch.cli.errors`)."""
    interactive = sys.stderr.isatty() and not args.json_logs
    output = Output(json_logs=args.json_logs, interactive=interactive)
    configure_logging(json=args.json_logs, level="warning" if interactive else "info")
    output.route_stdlib_logging()
    try:
        _check_inputs(args)
        args.config = _config(args)  # the flags as the one config model
        code: int = anyio.run(_run, args, output)
        return code
    except KeyboardInterrupt:
        return output.error("interrupted", EXIT_INTERRUPTED)
    except (Exception, BaseExceptionGroup) as exc:
        error = translate(exc)
        if error is None:
            if not args.json_logs:
                raise
            # a bug: keep its traceback, as one JSON line (inside "exception")
            log.exception("unexpected error", exit_code=EXIT_ERROR)
            return EXIT_ERROR
        extra = {"option": error.option} if error.option else {}
        return output.error(str(error), error.exit_code, **extra)


def _make_strategy(args: argparse.Namespace) -> Any:
    return sql_source.sql_strategy(args) if args.sql else backend.csv_strategy(args)


def _check_inputs(args: argparse.Namespace) -> None:
    webhook_options.load(args)  # intake / result webhooks (may imply --follow)
    if args.sql:
        sql_source.check(args)
    elif args.file is None:
        raise CliError("give a CSV FILE or --sql URL", EXIT_USAGE)
    else:
        _check_file(args.file, args)
    _check_prompt_and_scenario(args)


def _check_file(path: Path, args: argparse.Namespace) -> None:
    if not path.exists():
        if args.follow:
            return  # --follow waits for the file to appear (the strategy says so)
        raise CliError(f"cannot read {path}: no such file", EXIT_USAGE)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise CliError(f"cannot read {path}: not a readable file", EXIT_USAGE)


def _check_prompt_and_scenario(args: argparse.Namespace) -> None:
    if args.prompt and args.prompt_file:
        raise CliError("--prompt and --prompt-file are mutually exclusive", EXIT_USAGE)
    if args.prompt_file:
        try:
            args.prompt = args.prompt_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"cannot read --prompt-file {args.prompt_file}: {exc.strerror}",
                           EXIT_USAGE, option="--prompt-file") from exc
    if args.scenario and not args.scenario.is_file():
        raise CliError(f"cannot read --scenario {args.scenario}: no such file", EXIT_USAGE,
                       option="--scenario")


def _config(args: argparse.Namespace) -> Any:
    """The flags mapped onto :class:`dispatch.config.DispatchConfig` (bad value: exit 2)."""
    from pydantic import ValidationError

    from dispatch.config.from_args import config_from_run_args

    try:
        return config_from_run_args(args)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CliError(f"{where}: {first['msg']}", EXIT_USAGE) from None


async def _preflight(strategy: Strategy, args: argparse.Namespace, output: Output) -> None:
    """Campaign-wide mistakes, found before connecting anywhere or dialling anyone."""
    backend.check_target(args, os.environ.get("PINECALL_API_KEY") or None)
    try:
        await strategy.preflight()
    except SourceUnusable as exc:
        if not args.follow:
            raise CliError(str(exc), EXIT_USAGE, option=exc.option) from exc
        output.notice("source unusable", f"{exc}; waiting for it (--follow)", source=exc.source)
    except PreflightError as exc:
        raise CliError(str(exc), EXIT_USAGE, option=exc.option) from exc


async def _run(args: argparse.Namespace, output: Output) -> int:
    strategy = args.make_strategy(args)
    async with contextlib.AsyncExitStack() as stack:
        if isinstance(strategy, contextlib.AbstractAsyncContextManager):
            await stack.enter_async_context(strategy)  # its background tasks (write-back)
        return await _run_with(strategy, args, output)


async def _run_with(strategy: Strategy, args: argparse.Namespace, output: Output) -> int:
    started_s = time.monotonic()
    try:
        await _preflight(strategy, args, output)
        async with backend.open_campaign(args, output, strategy) as campaign:
            tune_gc()  # start-up done (store, SDK, sources): see dispatch.runtime
            stop = _StopState()
            async with anyio.create_task_group() as tg:
                tg.start_soon(_on_signals, campaign.hub, output, stop)
                tg.start_soon(progress_loop, campaign.hub, output, campaign.title, stop)
                await campaign.hub.run(until_idle=not args.follow)
                tg.cancel_scope.cancel()
            counts, reasons = await campaign.summary()
    finally:
        with anyio.CancelScope(shield=True):
            await strategy.aclose()
    unfinished = sum(n for s, n in counts.items() if s not in ("completed", "failed", "skipped"))
    code = EXIT_OK if not unfinished else EXIT_INTERRUPTED if stop.interrupted else EXIT_ERROR
    output.summary(Summary(file=sql_source.label(args, strategy), db=_db_shown(args.db),
                           duration_s=time.monotonic() - started_s, counts=counts,
                           reasons=reasons, exit_code=code))
    return code


@dataclasses.dataclass
class _StopState:
    """What the signal handler did, for the live panel and the exit code."""

    interrupted: bool = False
    signal_name: str = "SIGINT"


async def _on_signals(hub: Any, output: Output, stop: _StopState) -> None:
    """First SIGINT/SIGTERM drains (no new dials), the second hangs up on live calls."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            name = signal.Signals(signum).name
            live = int(hub.statistics().live_calls)
            if not stop.interrupted:
                stop.interrupted, stop.signal_name = True, name
                text = progress.drain_message(name, live, hub.options.drain_timeout_s)
                output.notice("stopping: draining live calls (signal again to stop now)", text,
                              signal=name, live_calls=live)
                hub.request_stop(drain=True)
            else:
                output.notice("stopping now", f"Stopping now: hanging up on {live} live "
                              "call(s).", style="bold red", signal=name, live_calls=live)
                hub.request_stop(drain=False)


async def progress_loop(hub: Any, output: Output, title: str, stop: _StopState) -> None:
    """Refresh the live panel (terminal) or log a progress line every 10 s (elsewhere)."""
    if output.interactive:
        await _live_panel(hub, output, title, stop)
    while True:
        await anyio.sleep(10.0)
        fields = progress.stats_fields(hub.statistics())
        seconds = progress.campaign_eta(fields)
        fields.pop("campaign_eta_s", None)
        log.info("progress", eta_s=None if seconds is None else round(seconds), **fields)


async def _live_panel(hub: Any, output: Output, title: str, stop: _StopState) -> NoReturn:
    from rich.live import Live

    with Live(console=output.console, refresh_per_second=4, transient=False) as live:
        while True:
            fields = progress.stats_fields(hub.statistics())
            footer = progress.drain_footer(stop.signal_name, fields) if stop.interrupted else None
            live.update(progress.render_panel(fields, progress.campaign_eta(fields),
                                              title=title, footer=footer))
            await anyio.sleep(0.25)


def _db_arg(text: str) -> Path | str:
    """A path, or a database URL kept as given (``Path`` would fold its ``//``)."""
    return text if "://" in text else Path(text)


def _db_shown(db: Path | str) -> str:
    """The database for the summary, a URL's password masked."""
    if isinstance(db, Path):
        return str(db)
    from sqlalchemy.engine import make_url

    return make_url(db).render_as_string(hide_password=True)
