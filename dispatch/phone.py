"""E.164 normalisation, shared by the SDK (``dial`` validation), the hub
(``Record.phone``) and the sandbox (``call.error`` for a bad ``to``).
"""

from __future__ import annotations

import re

import phonenumbers

__all__ = [
    "E164_PATTERN",
    "InvalidPhone",
    "check_region_sample",
    "is_dialable",
    "is_e164",
    "normalize_phone",
    "phone_time_zones",
]

#: The shape the voice server accepts: ``+`` then 7 to 15 digits, no leading zero.
E164_PATTERN = re.compile(r"^\+[1-9]\d{6,14}$")

#: an extension at the end of a number: ``x123``, ``ext. 5``, ``extension 5``, ``#123``,
#: ``;ext=5`` (RFC 3966); phonenumbers would parse it and E.164 would silently drop it
_EXTENSION = re.compile(r"(;\s*ext\s*=|\bext(?:ension)?\.?|x|#)\s*(\d+)\s*$", re.IGNORECASE)


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
    ``"US"``). ``sip:`` URIs are returned unchanged; ``tel:`` URIs (RFC 3966, visual
    separators allowed) are normalised like a bare number. Refused: any letter (no
    keypad mapping: ``1-800-FLOWERS`` is not dialled), an extension (``x123``,
    ``ext. 5``, ``#123``, ``;ext=5``: it cannot be dialled), ``tel:`` parameters, and
    numbers that parse but are not possible numbers for their region.
    """
    if raw is None:
        raise InvalidPhone(raw, "missing")
    text = str(raw).strip()
    if not text:
        raise InvalidPhone(raw, "empty")
    if text.lower().startswith("sip:"):
        return text
    if text.lower().startswith("tel:"):
        text = text[4:].strip()
    _refuse_extension_or_letters(raw, text)
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        if not text.startswith("+") and default_region is None:
            raise InvalidPhone(raw, "no country code and no default region",
                               no_country_code=True) from exc
        raise InvalidPhone(raw, str(exc)) from exc
    if parsed.extension:
        raise InvalidPhone(raw, f"has an extension ({parsed.extension}): extensions cannot be "
                                "dialled")
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidPhone(raw, "not a possible number (wrong length for its country)")
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if not is_e164(formatted):
        raise InvalidPhone(raw, "not E.164 (+ and 7-15 digits)")
    return str(formatted)


def _refuse_extension_or_letters(raw: object, text: str) -> None:
    """Refuse what phonenumbers would quietly turn into some other number.

    It maps letters to keypad digits (``+1555ABC1234`` becomes ``+15552221234``: a
    stranger's phone) and drops extensions from the E.164 form.
    """
    extension = _EXTENSION.search(text)
    if extension is not None and any(ch.isdigit() for ch in text[: extension.start()]):
        raise InvalidPhone(raw, f"has an extension ({extension.group(0).strip()}): extensions "
                                "cannot be dialled")
    if ";" in text:
        raise InvalidPhone(raw, "tel: parameters are not supported (only a bare number)")
    letters = "".join(ch for ch in text if ch.isalpha())
    if letters:
        raise InvalidPhone(raw, f"contains letters ({letters[:10]!r}); only digits, '+' and "
                                "separators are allowed")

def phone_time_zones(e164: str) -> tuple[str, ...]:
    """IANA time zones a number may be in (empty when unknown)."""
    from phonenumbers import timezone as pn_timezone

    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = pn_timezone.time_zones_for_number(parsed)
    return tuple(z for z in zones if z != "Etc/Unknown")


def check_region_sample(phones: list[str], where: str) -> None:
    """Refuse a source most of whose sampled ``phones`` lack a country code while no
    default region is set: the same mistake for every record, found before any dial
    (:class:`~dispatch.errors.PreflightError` naming ``--region``)."""
    from dispatch.errors import PreflightError

    missing: list[str] = []
    for raw in phones:
        try:
            normalize_phone(raw, None)
        except InvalidPhone as exc:
            if exc.no_country_code:
                missing.append(raw)
    if missing and len(missing) * 2 >= len(phones):
        raise PreflightError(
            f"{len(missing)} of {len(phones)} sampled phone numbers in {where} have no "
            f"country code (e.g. {missing[0]!r}) and no default region is set: "
            "pass --region US (or the country of these numbers)", option="--region")
