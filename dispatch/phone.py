"""E.164 normalisation, shared by the SDK (``dial`` validation), the hub
(``Record.phone``) and the sandbox (``call.error`` for a bad ``to``).
"""

from __future__ import annotations

import re

import phonenumbers

__all__ = [
    "E164_PATTERN",
    "InvalidPhone",
    "is_dialable",
    "is_e164",
    "normalize_phone",
    "phone_time_zones",
]

#: The shape the voice server accepts: ``+`` then 7 to 15 digits, no leading zero.
E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")


class InvalidPhone(ValueError):
    """The text is not a phone number that can be dialled. ``str()`` says why.

    ``no_country_code`` is true when the only problem is a national number without
    a default region (the campaign-wide ``--region`` hint is built on it).
    """

    def __init__(self, raw: object, why: str, *, no_country_code: bool = False) -> None:
        super().__init__(f"invalid phone number {raw!r}: {why}")
        self.raw = raw
        self.why = why
        self.no_country_code = no_country_code


def is_e164(value: str) -> bool:
    """True when ``value`` is already in E.164 shape (no parsing, cheap)."""
    return bool(E164_PATTERN.match(value))


def is_dialable(value: object) -> bool:
    """True for what the voice server accepts as a number: E.164 or a ``sip:`` URI."""
    return isinstance(value, str) and (is_e164(value) or value.lower().startswith("sip:"))


def normalize_phone(raw: object, default_region: str | None = None) -> str:
    """Return ``raw`` as an E.164 string, or raise :class:`InvalidPhone`.

    National numbers (no ``+``) need ``default_region`` (ISO 3166 alpha-2, e.g.
    ``"US"``). ``sip:`` URIs are returned unchanged. Numbers that parse but are not
    possible numbers for their region are refused.
    """
    if raw is None:
        raise InvalidPhone(raw, "missing")
    text = str(raw).strip()
    if not text:
        raise InvalidPhone(raw, "empty")
    if text.lower().startswith("sip:"):
        return text
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        if not text.startswith("+") and default_region is None:
            raise InvalidPhone(raw, "no country code and no default region",
                               no_country_code=True) from exc
        raise InvalidPhone(raw, str(exc)) from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhone(raw, "not a possible number (wrong length for its country)")
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not is_e164(formatted):
        raise InvalidPhone(raw, "not E.164 (+ and 7-15 digits)")
    return str(formatted)


def phone_time_zones(e164: str) -> tuple[str, ...]:
    """IANA time zones a number may be in (empty when unknown)."""
    from phonenumbers import timezone as pn_timezone

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = pn_timezone.time_zones_for_number(parsed)
    return tuple(z for z in zones if z != "Etc/Unknown")
