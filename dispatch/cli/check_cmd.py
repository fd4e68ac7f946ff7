"""``dispatch check FILE [--at ISO] [run options]``: what the admission step would say
about every row of a file, without dialling (issue 9).

Counts: dialled now; deferred, by reason and callee zone, with the first wake-up;
skipped, by reason (bad rows included); a few examples of each. The internal
do-not-call list and the recent attempts come from ``--db`` when it exists (read
only). ``--at`` is the instant to decide at (default: now, real time).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from dispatch.cli import backend, options
from dispatch.cli.errors import EXIT_OK, EXIT_USAGE, CliError, translate
from dispatch.cli.run_cmd import add_run_arguments

__all__ = ["register"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check", help="what the calling-hours/DNC/cap checks say about a file (no dialling)",
        description="Decide every record of FILE as the admission step would before a dial, "
        "without dialling: how many would be dialled now, deferred (until when, by zone) and "
        "skipped (by reason), with examples.")
    p.add_argument("file", type=Path, help="CSV file of leads")
    p.add_argument("--at", type=options.instant, metavar="ISO",
                   help="decide at this instant, e.g. 2026-03-10T20:55:00-05:00 (default now)")
    add_run_arguments(p)
    p.set_defaults(func=run_check)
    options.one_line_errors(p)


def run_check(args: argparse.Namespace) -> int:
    try:
        result: dict[str, Any] = anyio.run(_check, args)
    except (Exception, BaseExceptionGroup) as exc:
        error = translate(exc)
        if error is None:
            raise
        _fail(args, str(error))
        return error.exit_code
    if args.json_logs:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"dispatch check {args.file} at {result['at']}")
        for line in result["lines"]:
            print(line)
    return EXIT_OK


def _fail(args: argparse.Namespace, text: str) -> None:
    if args.json_logs:
        print(json.dumps({"event": "error", "message": text}), file=sys.stderr)
    else:
        print(f"dispatch check: error: {text}", file=sys.stderr)


async def _check(args: argparse.Namespace) -> dict[str, Any]:
    from dispatch.cli.compliance_opts import build_compliance
    from dispatch.compliance import Decision
    from dispatch.errors import PreflightError
    from dispatch.hub import campaign_state
    from dispatch.hub.admission import HubCompliance, NoAttempts, preview_records
    from dispatch.hub.ingest import recheck
    from dispatch.records import DEFAULT_MAX_RECORD_BYTES

    if not await anyio.Path(args.file).is_file():
        raise CliError(f"cannot read {args.file}: no such file", EXIT_USAGE)
    now_s = time.time() if args.at is None else args.at
    config = build_compliance(args, embedded=True, now_s=now_s)
    strategy = backend.csv_strategy(args)
    try:
        try:
            await strategy.preflight()
        except PreflightError as exc:
            raise CliError(str(exc), EXIT_USAGE, option=exc.option) from exc
        records = await strategy.poll()
    finally:
        await strategy.aclose()
    campaign = args.campaign or campaign_state.derive_campaign_id([strategy])
    compliance = HubCompliance(config, campaign)
    good, skips = [], []
    for record in records:
        skip = recheck(record, args.region, DEFAULT_MAX_RECORD_BYTES)
        if skip is None:
            good.append(record)
        else:
            skips.append(skip)
    attempts = await _open_and_read(args.db, compliance, [r.phone for r in good], now_s)
    summary = preview_records(compliance, ((r.id, r.phone, r.metadata) for r in good), now_s,
                              attempts or NoAttempts())
    for skip in skips:
        summary.add(skip.record.id, Decision.skip("input", skip.reason.value, skip.error))
    return {
        "event": "check", "file": str(args.file), "campaign": campaign,
        "at": dt.datetime.fromtimestamp(now_s, dt.UTC).isoformat(),
        "total": len(records), "dial_now": summary.dial_now,
        "deferred": dict(summary.deferred), "skipped": dict(summary.skipped),
        "first_wake": {group: dt.datetime.fromtimestamp(t, dt.UTC).isoformat()
                       for group, t in summary.earliest_wake_s.items()},
        "examples": summary.examples, "lines": summary.lines(),
    }


async def _open_and_read(db: Path, compliance: Any, phones: list[str], now_s: float) -> Any:
    """The internal list and recent attempts from ``db`` (read-only), when it exists."""
    from dispatch.clock import SystemClock
    from dispatch.compliance.context import DAY_S
    from dispatch.store import StoreError, open_store
    from dispatch.store import compliance as store_compliance

    if not await anyio.Path(db).exists():
        await compliance.open(None, SystemClock(), None)
        return None
    try:
        async with open_store(db, read_only=True) as store:
            await compliance.open(store, SystemClock(), None)
            settings = compliance.settings
            window_s = max(DAY_S, settings.phone_cap_window_s, settings.campaign_cap_window_s)
            campaign = compliance.campaign if settings.campaign_cap is not None else None
            # stored attempt times are the real clock's: decide at --at against them
            return await store_compliance.attempt_window(
                store.engine, phones, campaign, now_s - window_s,
                tail=max(64, settings.campaign_cap or 0),
                campaign_since_s=now_s - settings.campaign_cap_window_s)
    except StoreError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
