"""``dispatch report`` and ``dispatch status``: read a campaign's database.

Both open the store without changing it; they can run while a campaign runs
(SQLite WAL lets readers in beside the writer).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import polars as pl
from rich.console import Console
from rich.table import Table

from dispatch.cli.errors import CliError

__all__ = ["register"]

_TIME_COLUMNS = ("next_attempt_at", "updated_at")


def register(subparsers: Any) -> None:
    report = subparsers.add_parser("report", help="one row per record")
    report.add_argument("--db", type=Path, default=Path("dispatch.db"))
    report.add_argument("--format", choices=("table", "csv", "json", "parquet"), default="table",
                        help="json is JSON lines (default %(default)s)")
    report.add_argument("--output", type=Path, help="write to this file instead of stdout")
    report.set_defaults(func=run_report)
    status = subparsers.add_parser("status", help="counts of records by status")
    status.add_argument("--db", type=Path, default=Path("dispatch.db"))
    status.add_argument("--json", action="store_true", help="print the counts as JSON")
    status.set_defaults(func=run_status)


def _require_db(path: Path) -> None:
    if not path.is_file():
        raise CliError(f"no database at {path} (run a campaign first, or pass --db)", 2)


def run_report(args: argparse.Namespace) -> int:
    try:
        _require_db(args.db)
        if args.format == "parquet" and args.output is None:
            raise CliError("--format parquet needs --output FILE", 2)
        rows = anyio.run(_report_rows, args.db)
    except CliError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    frame = _frame(rows)
    if args.format == "table":
        _print_table(frame, args.output)
    elif args.format == "csv":
        _write_text(frame.write_csv(), args.output)
    elif args.format == "json":
        _write_text(frame.write_ndjson(), args.output)
    else:
        frame.write_parquet(args.output)
    return 0


def run_status(args: argparse.Namespace) -> int:
    try:
        _require_db(args.db)
        counts = anyio.run(_counts, args.db)
    except CliError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(counts, sort_keys=True))
        return 0
    table = Table(title=f"{args.db}")
    table.add_column("status")
    table.add_column("records", justify="right")
    for status, n in sorted(counts.items()):
        table.add_row(status, str(n))
    table.add_row("total", str(sum(counts.values())))
    Console().print(table)
    return 0


async def _report_rows(db: Path) -> list[dict[str, Any]]:
    from dispatch.store import open_store

    async with open_store(db, read_only=True) as store:
        rows: list[dict[str, Any]] = await store.report_rows()
    return rows


async def _counts(db: Path) -> dict[str, int]:
    from dispatch.store import open_store

    async with open_store(db, read_only=True) as store:
        counts: dict[str, int] = await store.counts()
    return counts


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    return str(value)


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    from dispatch.store.queries import REPORT_COLUMNS  # lazy: keeps CLI start-up fast

    data: dict[str, list[Any]] = {c: [] for c in REPORT_COLUMNS}
    for row in rows:
        for column in REPORT_COLUMNS:
            value = row.get(column)
            if column in _TIME_COLUMNS:
                value = _iso(value)
            elif column == "attempts":
                value = int(value or 0)
            elif value is not None and not isinstance(value, str):
                value = str(value)
            data[column].append(value)
    schema = {c: (pl.Int64 if c == "attempts" else pl.String) for c in REPORT_COLUMNS}
    return pl.DataFrame(data, schema=schema)


def _write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _print_table(frame: pl.DataFrame, output: Path | None) -> None:
    table = Table(show_lines=False)
    shown = (
        "id", "phone", "status", "attempts", "last_reason", "disposition", "updated_at", "error"
    )
    for column in shown:
        table.add_column(column, overflow="fold", no_wrap=column in ("phone", "updated_at"))
    for row in frame.select(shown).iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    if output is None:
        # rich assumes 80 columns when piped; a report is wider than that
        Console(width=None if sys.stdout.isatty() else 160).print(table)
    else:
        with output.open("w", encoding="utf-8") as fh:
            Console(file=fh, width=160).print(table)
