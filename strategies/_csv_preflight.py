"""The CSV checks made once before anyone is dialled (``CsvStrategy.preflight``).

Reads the header and a sample (the first :data:`SAMPLE_ROWS` rows, at most
:data:`SAMPLE_BYTES` bytes) and raises, with one line naming the file:

* :class:`~dispatch.errors.SourceUnusable` -- the file is missing, unreadable,
  empty, not text, has no header row or no phone column;
* :class:`~dispatch.errors.PreflightError` (``option="--greeting"``) -- the
  greeting template is invalid or names a column the file lacks;
* :class:`~dispatch.errors.PreflightError` (``option="--region"``) -- no default
  region, and most sampled phones fail only for lack of a country code.

Blocking: call from a worker thread.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from dispatch.errors import PreflightError, SourceUnusable
from dispatch.phone import check_region_sample
from dispatch.strategies._csv_mapping import (
    PHONE_COLUMN_NAMES,
    find_phone_column,
    greeting_problem,
    missing_phone_message,
)
from dispatch.strategies._csv_parse import header_columns, parse_block
from dispatch.strategies._csv_text import CsvFormat, detect_format, sniff, to_parseable

__all__ = ["SAMPLE_BYTES", "SAMPLE_ROWS", "CsvChecks", "run_checks"]

SAMPLE_ROWS = 1000
SAMPLE_BYTES = 512 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class CsvChecks:
    """What to check: the strategy's settings that depend on the file."""

    path: Path
    encoding: str
    delimiter: str | None
    greeting: str | None
    phone_column: str | None
    needs_phone_column: bool
    default_region: str | None


def _unusable(checks: CsvChecks, text: str) -> SourceUnusable:
    return SourceUnusable(text, source=str(checks.path))


def _read_head(checks: CsvChecks) -> tuple[bytes, bool]:
    """The first bytes of the file and whether they are the whole file."""
    try:
        with open(checks.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(SAMPLE_BYTES)
    except FileNotFoundError:
        raise _unusable(checks, f"file not found: {checks.path}") from None
    except OSError as exc:
        raise _unusable(checks, f"cannot read {checks.path}: {exc.strerror or exc}") from None
    return head, len(head) >= size


def _format(checks: CsvChecks, head: bytes, whole: bool) -> tuple[bytes, CsvFormat]:
    expected = f"expected a header line naming a phone column ({', '.join(PHONE_COLUMN_NAMES)})"
    if not head.strip():
        raise _unusable(checks, f"{checks.path} is empty: {expected}")
    sniffed = sniff(head)
    if sniffed.binary:
        raise _unusable(checks, f"{checks.path} is not a text CSV file ({sniffed.binary}); "
                        f"{expected}")
    data = to_parseable(head, sniffed)
    if not whole:  # a sample: stop at the last complete line
        data = data[: data.rfind(b"\n") + 1]
    encoding = "utf-8" if sniffed.utf16 else checks.encoding
    fmt = detect_format(data, encoding=encoding, delimiter=checks.delimiter, at_eof=True,
                        cr_only=sniffed.cr_only)
    if fmt is None:
        raise _unusable(checks, f"{checks.path} has no complete header line: {expected}")
    return data, fmt



def run_checks(checks: CsvChecks) -> None:
    """Raise the first problem found (see the module docstring); return when usable."""
    head, whole = _read_head(checks)
    data, fmt = _format(checks, head, whole)
    columns = header_columns(fmt)
    phone = find_phone_column(columns, checks.phone_column)
    if checks.needs_phone_column and phone is None:
        raise _unusable(checks, missing_phone_message(str(checks.path), columns,
                                                      checks.phone_column))
    if checks.greeting is not None:
        problem = greeting_problem(checks.greeting, columns, str(checks.path))
        if problem:
            raise PreflightError(problem, option="--greeting")
    if phone is None or checks.default_region:
        return
    first_line = 1 + fmt.header.count(b"\n")
    block = parse_block(data, fmt, columns, first_line, final=True, start=fmt.header_end)
    sample = block.frame.head(SAMPLE_ROWS).get_column(phone).drop_nulls()
    phones = [p for p in sample.str.strip_chars().to_list() if p]
    check_region_sample(phones, str(checks.path))

