"""Typed option values for the CLI: each bad value is one line that names the option.

The functions here are argparse ``type=`` callables: they raise
``argparse.ArgumentTypeError`` with a message that says what was expected and what
was given; :func:`one_line_errors` makes a parser print that message on one line
(``dispatch run: error: argument --rate: ...``) instead of the full usage block,
and exit 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import sys
from typing import NoReturn

__all__ = [
    "caller_id",
    "calling_hours",
    "holiday",
    "instant",
    "non_negative_int",
    "one_line_errors",
    "port",
    "positive_float",
    "positive_int",
    "region",
    "sandbox_time",
    "speed",
    "time_zone",
    "voice_url",
]


def positive_int(text: str) -> int:
    """A whole number > 0 (``--rate``, ``--concurrency``)."""
    value = _int(text, "> 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (``--retries``)."""
    value = _int(text, ">= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number of seconds > 0 (``--poll``, ``--retry-delay``)."""
    value = _float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (0: the system picks a free one)."""
    value = _int(text, "from 0 to 65535")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to 65535, got {text!r}")
    return value


def speed(text: str) -> float:
    """A time acceleration > 0; ``inf`` means instant calls (``--sandbox-speed``)."""
    value = _float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number > 0 (or inf), got {text!r}")
    return value


def caller_id(text: str) -> str:
    """``--from``: normalised to E.164 (``"+1 415 555 0000"`` -> ``+14155550000``)."""
    from dispatch.phone import InvalidPhone, normalize_phone

    try:
        return normalize_phone(text)
    except InvalidPhone as exc:
        raise argparse.ArgumentTypeError(
            f"not a caller id: {exc.why} (expected an international number such as "
            f"+14155550000), got {text!r}"
        ) from exc


def region(text: str) -> str:
    """``--region``: an ISO 3166 two-letter country that phonenumbers knows, upper-cased."""
    import phonenumbers

    code = text.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise argparse.ArgumentTypeError(
            f"unknown region {text!r} (expected a two-letter country code such as US, GB, ES)"
        )
    return code


def voice_url(text: str) -> str:
    """``--url``: a ``ws://`` or ``wss://`` URL."""
    if not text.lower().startswith(("ws://", "wss://")) or len(text.split("://", 1)[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"must be a ws:// or wss:// URL such as wss://voice.pinecall.io, got {text!r}"
        )
    return text


# -- compliance options -----------------------------------------------------------

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def calling_hours(text: str) -> tuple[tuple[str, ...] | None, str]:
    """``--calling-hours``: ``08:00-21:00`` (every day), ``mon-fri=09:00-12:00,14:00-20:00``,
    ``sat=10:00-14:00`` or ``sun=closed``. Returns (weekdays or None for every day, ranges)."""
    from dispatch.compliance.window import WindowConfigError, parse_ranges

    days_text, _, ranges = text.rpartition("=")
    days: tuple[str, ...] | None = None
    if days_text:
        first, _, last = days_text.strip().lower().partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise argparse.ArgumentTypeError(
                f"expected a weekday or a span such as mon-fri before '=', got {days_text!r}")
        days = _DAYS[_DAYS.index(first):_DAYS.index(last or first) + 1]
        if not days:
            raise argparse.ArgumentTypeError(f"the weekday span {days_text!r} is empty")
    ranges = "" if ranges.strip().lower() == "closed" else ranges
    try:
        parse_ranges(ranges, "--calling-hours")
    except WindowConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
    return days, ranges


def holiday(text: str) -> tuple[str, str]:
    """``--holiday``: ``2026-12-25`` (no calls) or ``2026-12-24=09:00-13:00``."""
    from dispatch.compliance.window import WindowConfigError, parse_ranges

    day, _, ranges = text.partition("=")
    try:
        dt.date.fromisoformat(day.strip())
        parse_ranges(ranges, "--holiday")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD[=HH:MM-HH:MM], got {text!r}") \
            from None
    except WindowConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None
    return day.strip(), ranges


def time_zone(text: str) -> str:
    """``--fallback-zone``: an IANA zone name this machine knows."""
    from dispatch.compliance.zones import InvalidZone, zone

    try:
        return zone(text).key
    except InvalidZone as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def instant(text: str) -> float:
    """An ISO 8601 date-time (``2026-03-10T20:55-05:00``; no offset: UTC) as epoch seconds."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-03-10T20:55:00-05:00, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def sandbox_time(text: str) -> float | str:
    """``--sandbox-time``: ``"real"`` or an ISO 8601 instant (epoch seconds)."""
    return "real" if text.strip().lower() == "real" else instant(text)


def one_line_errors(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` report a usage error as one line on stderr and exit 2.

    (argparse prints the whole usage block first, which for ``run`` is a dozen lines
    that bury the one that matters.)
    """

    def error(message: str) -> NoReturn:
        if "--json-logs" in sys.argv[1:]:  # parsing failed: the namespace is not there
            sys.stderr.write(_json_error(message) + "\n")
        else:
            sys.stderr.write(f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")
        sys.exit(2)

    # argparse offers no hook for this besides subclassing, and the subparser class is
    # chosen by the top-level parser; an instance attribute is the narrow override
    parser.error = error  # type: ignore[method-assign]


_ARGUMENT = re.compile(r"^argument (?P<option>[^:/ ]+)(?:/\S+)?: ")


def _json_error(message: str) -> str:
    """A usage error as the JSON line ``--json-logs`` promises (the logger is not set up)."""
    match = _ARGUMENT.match(message)
    line = {
        "event": "error",
        "level": "error",
        "component": "dispatch.cli",
        "message": message,
        "exit_code": 2,
        "timestamp": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
    }
    if match:
        line["option"] = match["option"]
    return json.dumps(line)


def _int(text: str, bound: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number {bound}, got {text!r}"
        ) from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
