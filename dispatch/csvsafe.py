"""CSV cells that a spreadsheet will not execute.

A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
read by Excel, LibreOffice and Google Sheets as a formula (``=HYPERLINK(...)``,
``=2+3``, DDE payloads). Every CSV we write (reports, write-back) passes its text
cells through :func:`neutralize_cell`, which prefixes such a cell with a single
quote, the convention OWASP recommends and spreadsheets display as text.

Plain numbers and phone numbers (``+14155550100``, ``-12.5``, ``+1 (415) 555-0100``:
digits, spaces, parentheses, dots and hyphens after one leading sign) carry no
formula and are left alone, so phone columns round-trip unchanged.
"""

from __future__ import annotations

import re

__all__ = ["FORMULA_PREFIXES", "neutralize_cell"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 ().\-]*")


def neutralize_cell(value: str) -> str:
    """Return ``value`` made inert for spreadsheets (unchanged when already safe)."""
    if value and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value
