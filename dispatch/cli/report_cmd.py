"""``dispatch report`` and ``dispatch status``: read a campaign's database.

Both open the store read-only; they can run while a campaign runs (SQLite WAL
lets readers in beside the writer). ``report`` gives one row per record in the
source's row order, with the lead's own columns (the record's metadata, e.g. the
CSV's other columns) beside the outcome and the newest call; ``report
--attempts`` gives one row per dial. CSV output is spreadsheet-safe (every text
cell and header through :func:`dispatch.csvsafe.neutralize_cell`).
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
from dispatch.csvsafe import neutralize_cell

__all__ = ["FORMATS", "register"]

FORMATS = ("table", "csv", "json", "parquet")
_TIME_COLUMNS = frozenset({
    "next_attempt_at", "updated_at", "last_answered_at",
    "claimed_at", "dialed_at", "answered_at", "ended_at",
    "decision_until",
})
_INT_COLUMNS = frozenset({"attempts", "requeue_count", "attempt_no", "requeue_round"})
_FLOAT_COLUMNS = frozenset({"last_duration_s", "duration_s"})
#: record columns the table format shows after id, phone and the lead's columns
_TABLE_TAIL = ("status", "attempts", "last_reason", "last_duration_s", "disposition",
               "updated_at", "error")


def register(subparsers: Any) -> None:
    report = subparsers.add_parser("report", help="one row per record (or per attempt)")
    report.add_argument("--db", type=Path, default=Path("dispatch.db"))
    report.add_argument("--format", default="table", metavar="{" + ",".join(FORMATS) + "}",
                        help="json is JSON lines (default %(default)s)")
    report.add_argument("--output", type=Path, help="write to this file instead of stdout")
    report.add_argument("--attempts", action="store_true",
                        help="one row per attempt (times, reason, duration, call id)")
    report.set_defaults(func=run_report)
    status = subparsers.add_parser("status", help="counts of records by status")
    status.add_argument("--db", type=Path, default=Path("dispatch.db"))
    status.add_argument("--json", action="store_true", help="print the counts as JSON")
    status.set_defaults(func=run_status)


def _require_db(path: Path) -> None:
    if not path.is_file():
        raise CliError(f"--db {path}: no database there (run a campaign first, or pass --db)", 2)


def run_report(args: argparse.Namespace) -> int:
    try:
        if args.format not in FORMATS:
            raise CliError(f"--format {args.format!r}: choose one of {', '.join(FORMATS)}", 2)
        if args.format == "parquet" and args.output is None:
            raise CliError("--format parquet needs --output FILE", 2)
        _require_db(args.db)
        frame = anyio.run(_load, args.db, args.attempts)
        _emit(frame, args.format, args.output)
    except CliError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def run_status(args: argparse.Namespace) -> int:
    try:
        _require_db(args.db)
        counts, by_campaign, deferred, webhooks = anyio.run(_counts, args.db)
    except CliError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(counts, sort_keys=True))
        return 0
    campaigns = ", ".join(f"{name} ({state})" for name, state in by_campaign) or "-"
    table = Table(title=f"{args.db}", caption=f"campaigns: {campaigns}")
    table.add_column("status")
    table.add_column("records", justify="right")
    for status, n in sorted(counts.items()):
        table.add_row(status, str(n))
    table.add_row("total", str(sum(counts.values())))
    for reason, n, until in deferred:  # deferrals are not attempts
        table.add_row(f"  deferred {reason}", f"{n} (first wakes {_iso(until)})")
    Console().print(table)
    if webhooks is not None:  # result-webhook deliveries
        print(webhooks)
    return 0


async def _load(db: Path, attempts: bool) -> pl.DataFrame:
    from dispatch.store import ATTEMPT_REPORT_COLUMNS, StoreError, open_store

    try:
        async with open_store(db, read_only=True) as store:
            if attempts:
                return _frame(await store.attempt_report_rows(), ATTEMPT_REPORT_COLUMNS)
            return _record_frame(await store.report_rows())
    except StoreError as exc:
        raise CliError(str(exc), 2) from exc


async def _counts(db: Path) -> tuple[dict[str, int], list[tuple[str, str]],
                                    list[tuple[str, int, float | None]], str | None]:
    from dispatch.store import StoreError, campaigns, open_store
    from dispatch.store.compliance import deferrals
    from dispatch.webhooks.outbox import status_line

    try:
        async with open_store(db, read_only=True) as store:
            counts: dict[str, int] = await store.counts()
            rows = await campaigns.list_all(store.engine)
            deferred = await deferrals(store.engine)
            webhooks = await status_line(store.engine)
    except StoreError as exc:
        raise CliError(str(exc), 2) from exc
    return counts, [(row.id, row.state) for row in rows], deferred, webhooks


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat(timespec="seconds")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="seconds")
    return str(value)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _lead_names(rows: list[dict[str, Any]], taken: set[str]) -> dict[str, str]:
    """Lead keys in first-seen order -> their column names (``lead_`` + key on a clash)."""
    names: dict[str, str] = {}
    for row in rows:
        for key in row["lead"]:
            if key not in names:
                name = key
                while name in taken:
                    name = f"lead_{name}"
                taken.add(name)
                names[key] = name
    return names


def _record_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    from dispatch.store import REPORT_COLUMNS  # lazy: keeps CLI start-up fast

    lead = _lead_names(rows, set(REPORT_COLUMNS))
    flat = [
        {**{k: v for k, v in row.items() if k != "lead"},
         **{lead[key]: _text(value) for key, value in row["lead"].items()}}
        for row in rows
    ]
    columns = (REPORT_COLUMNS[:2], tuple(lead.values()), REPORT_COLUMNS[2:])
    return _frame(flat, tuple(c for part in columns for c in part))


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pl.DataFrame:
    data: dict[str, list[Any]] = {c: [] for c in columns}
    schema: dict[str, Any] = {}
    for column in columns:
        if column in _INT_COLUMNS:
            schema[column] = pl.Int64
            data[column] = [int(row.get(column) or 0) for row in rows]
        elif column in _FLOAT_COLUMNS:
            schema[column] = pl.Float64
            data[column] = [row.get(column) for row in rows]
        else:
            schema[column] = pl.String
            convert = _iso if column in _TIME_COLUMNS else _text
            data[column] = [convert(row.get(column)) for row in rows]
    return pl.DataFrame(data, schema=schema)


def _spreadsheet_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text cell and header neutralised (a lead's own cells may hold formulas)."""
    data = {
        neutralize_cell(name): (
            [None if v is None else neutralize_cell(v) for v in frame[name].to_list()]
            if frame.schema[name] == pl.String else frame[name].to_list()
        )
        for name in frame.columns
    }
    schema = {neutralize_cell(name): dtype for name, dtype in frame.schema.items()}
    return pl.DataFrame(data, schema=schema)


def _emit(frame: pl.DataFrame, fmt: str, output: Path | None) -> None:
    try:
        if fmt == "table":
            _print_table(frame, output)
        elif fmt == "csv":
            _write_text(_spreadsheet_safe(frame).write_csv(), output)
        elif fmt == "json":
            _write_text(frame.write_ndjson(), output)
        else:
            frame.write_parquet(output)  # type: ignore[arg-type]  # checked: parquet needs it
    except OSError as exc:
        raise CliError(f"--output {output}: cannot write: {exc.strerror or exc}", 2) from exc


def _write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def _print_table(frame: pl.DataFrame, output: Path | None) -> None:
    if "record_id" in frame.columns:
        shown = tuple(frame.columns)
    else:
        hidden = _HIDDEN_IN_TABLE
        if "source" in frame.columns and frame["source"].n_unique() <= 1:
            hidden = hidden | {"source"}  # one source: the column says nothing
        head = tuple(c for c in frame.columns if c not in _TABLE_TAIL)
        lead = head[:2] + tuple(c for c in head[2:] if c not in hidden)
        shown = lead + _TABLE_TAIL
    campaigns = sorted(set(frame["campaign_id"].to_list())) if "campaign_id" in frame else []
    table = Table(show_lines=False, title=("campaign: " + ", ".join(campaigns)) if campaigns
                  else None)
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


#: record columns left out of the table format (all formats but table carry them)
_HIDDEN_IN_TABLE = frozenset({
    "last_raw_reason", "last_call_id", "last_answered_at", "next_attempt_at", "strategy",
    "requeue_count", "campaign_id",
    "decision", "decision_reason", "decision_until",  # csv/json/parquet carry them
})
