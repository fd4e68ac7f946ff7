"""Which IANA zones a callee may be in: the record's ``timezone`` field, else the
number's zones (``phonenumbers.timezone``), else the campaign fallback, else none.

Pure and cached (the lookups are the dial path's hot spot)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatch.phone import phone_time_zones

__all__ = ["InvalidZone", "ZoneChoice", "resolve_zones", "zone"]


class InvalidZone(ValueError):
    """The text is not an IANA zone name known to this machine's tz database."""


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    """The zones to check (all must be open) and where they came from:
    ``"record"``, ``"number"``, ``"fallback"``, or ``"none"`` (empty ``zones``)."""

    zones: tuple[ZoneInfo, ...]
    source: str

    @property
    def names(self) -> str:
        return ", ".join(z.key for z in self.zones)


@functools.lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """``ZoneInfo(name)``, raising :class:`InvalidZone` with a one-line message."""
    cleaned = name.strip()
    try:
        if not cleaned or cleaned.startswith(("/", ".")) or ".." in cleaned:
            raise ValueError(cleaned)
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidZone(f"{name!r} is not an IANA time zone (e.g. 'America/New_York')") \
            from None


@functools.lru_cache(maxsize=65_536)
def _number_zones(phone: str) -> tuple[ZoneInfo, ...]:
    return tuple(zone(name) for name in phone_time_zones(phone))


def resolve_zones(phone: str, record_zone: str | None, fallback: ZoneInfo | None) -> ZoneChoice:
    """The callee's zones. A record ``timezone`` wins (raises :class:`InvalidZone`
    when it is not a zone); then the number's zones; then ``fallback``."""
    if record_zone is not None and record_zone.strip():
        return ZoneChoice((zone(record_zone),), "record")
    by_number = _number_zones(phone)
    if by_number:
        return ZoneChoice(by_number, "number")
    if fallback is not None:
        return ZoneChoice((fallback,), "fallback")
    return ZoneChoice((), "none")
