"""Issue 9: the compliance options shared by ``run`` and ``check``, and the
:class:`~dispatch.hub.admission.Compliance` they build.

Calling hours are on by default (08:00-21:00 in the callee's zone, every day; 3
dials per phone per rolling 24 h; the shipped US state table). On the embedded
sandbox, compliance follows a *simulated* time (``--sandbox-time``, default today
18:00 UTC, i.e. 10:00 in California) that skips waits only deferrals impose, so the
demo finishes at any hour. With a key or ``--url`` the real clock is always used.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from dispatch.cli import options
from dispatch.cli.errors import EXIT_USAGE, CliError
from dispatch.hub.admission import default_sandbox_time

__all__ = ["add_compliance_arguments", "build_compliance", "default_sandbox_time"]


def add_compliance_arguments(parser: Any) -> None:
    group = parser.add_argument_group("compliance (calling hours in the callee's zone, "
                                      "do-not-call lists, caps)")
    group.add_argument("--calling-hours", action="append", type=options.calling_hours,
                       metavar="[DAYS=]HH:MM-HH:MM[,...]",
                       help="callee-local window (default 08:00-21:00 every day); repeat per "
                       "weekday span, e.g. mon-fri=09:00-20:00 sun=closed")
    group.add_argument("--holiday", action="append", type=options.holiday,
                       metavar="YYYY-MM-DD[=HH:MM-HH:MM]",
                       help="a date with no calls (or its own window); repeatable")
    group.add_argument("--fallback-zone", type=options.time_zone, metavar="ZONE",
                       help="IANA zone for numbers with no known zone (default: skip them "
                       "unknown_timezone)")
    group.add_argument("--max-per-phone-24h", type=options.positive_int, default=3,
                       metavar="N", help="dials per phone in any rolling 24 h, all campaigns "
                       "(default %(default)s)")
    group.add_argument("--campaign-daily-cap", type=options.positive_int, metavar="N",
                       help="dials by this campaign in any rolling 24 h")
    group.add_argument("--dnc-file", action="append", type=Path, default=[], metavar="FILE",
                       help="do-not-call list: one number per line, or a CSV with a phone "
                       "column; repeatable")
    group.add_argument("--dnc-sql", action="append", nargs=2, default=[],
                       metavar=("URL", "QUERY"),
                       help="do-not-call list from a query (first column); URL env:NAME "
                       "reads it from $NAME (keeps a password out of ps)")
    group.add_argument("--no-state-rules", action="store_true",
                       help="ignore the shipped US state table (stricter state windows/caps)")
    group.add_argument("--no-compliance", action="store_true",
                       help="dial with no admission step at all (no calling hours, do-not-call "
                       "lists or caps): the operator answers for it; said at start")
    group.add_argument("--sandbox-time", type=options.sandbox_time, default=None,
                       metavar="ISO|real",
                       help="embedded sandbox only: the simulated time compliance starts at "
                       "(default today 18:00 UTC); 'real' uses the real clock")


def _calling_hours(args: argparse.Namespace) -> Any:
    from dispatch.compliance import CallingHours

    config: dict[str, Any] = {}
    for days, ranges in args.calling_hours or ():
        for day in days or ("default",):
            config[day] = ranges
    holidays = dict(args.holiday or ())
    if holidays:
        config["holidays"] = holidays
    return CallingHours.from_mapping(config, "--calling-hours")


def _sql_sources(args: argparse.Namespace) -> list[tuple[str, str]]:
    sources = []
    for url, query in args.dnc_sql:
        if url.startswith("env:"):
            name = url[4:]
            value = os.environ.get(name)
            if not value:
                raise CliError(f"--dnc-sql: environment variable {name} is not set",
                               EXIT_USAGE, option="--dnc-sql")
            url = value
        sources.append((url, query))
    return sources


def build_compliance(args: argparse.Namespace, *, embedded: bool, now_s: float) -> Any:
    """The run's :class:`~dispatch.hub.admission.Compliance`; a bad setting is one
    line naming the option (exit 2)."""
    from dispatch.compliance import ComplianceSettings, WindowConfigError
    from dispatch.hub.admission import Compliance

    for path in args.dnc_file:
        if not path.is_file():
            raise CliError(f"cannot read --dnc-file {path}: no such file", EXIT_USAGE,
                           option="--dnc-file")
    sandbox_time = getattr(args, "sandbox_time", None)
    if not embedded and sandbox_time is not None:
        raise CliError("--sandbox-time applies to the embedded sandbox only: a real campaign "
                       "follows the real clock", EXIT_USAGE, option="--sandbox-time")
    try:
        settings = ComplianceSettings(
            calling_hours=_calling_hours(args).require_opens("--calling-hours"),
            fallback_zone=args.fallback_zone,
            phone_cap=args.max_per_phone_24h, campaign_cap=args.campaign_daily_cap)
        if args.no_state_rules:
            settings = dataclasses.replace(settings, state_rules=None)
    except WindowConfigError as exc:
        raise CliError(str(exc), EXIT_USAGE, option=exc.option or "--calling-hours") from exc
    origin: float | None = None
    if embedded and sandbox_time != "real":
        origin = default_sandbox_time(now_s) if sandbox_time is None else float(sandbox_time)
    return Compliance(settings=settings, dnc_files=list(args.dnc_file),
                      dnc_sql=_sql_sources(args), dnc_region=args.region,
                      sandbox_time_s=origin)

