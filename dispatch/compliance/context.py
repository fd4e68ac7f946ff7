"""What the policies need to decide about one dial: :class:`DialContext`, the
campaign's :class:`ComplianceSettings`, and the :class:`AttemptLog` supplier.

The hub builds one context per record about to be dialled (and per pending record
in ``preview``). Derived facts (zones, states, the effective window) are computed
once per context and shared by the policies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, overload
from zoneinfo import ZoneInfo

from dispatch.compliance.states import StateRules, load_state_rules
from dispatch.compliance.usstates import state_code
from dispatch.compliance.window import CallingHours, WindowConfigError, parse_ranges
from dispatch.compliance.zones import InvalidZone, ZoneChoice, resolve_zones, zone

__all__ = ["FIELD_CALLING_HOURS", "FIELD_STATE", "FIELD_TIMEZONE", "AttemptLog",
           "ComplianceSettings", "DialContext", "RecordFieldError", "shipped_state_rules"]

#: record fields (``Record.metadata`` keys, i.e. CSV columns) the policies read
FIELD_TIMEZONE = "timezone"
FIELD_STATE = "state"
FIELD_CALLING_HOURS = "calling_hours"
DAY_S = 86_400.0


class RecordFieldError(ValueError):
    """A record field the policies read is malformed; ``field`` names it."""

    def __init__(self, field_name: str, why: str) -> None:
        super().__init__(f"field {field_name!r}: {why}")
        self.field = field_name


class AttemptLog(Protocol):
    """Recent dial attempts (the store implements it with an index on
    ``(phone, started_at)`` and ``(campaign, started_at)``). Both return epoch
    seconds in ascending order, counting attempts across all records and campaigns
    of the database for a phone; deferrals are not attempts and are not listed."""

    def phone_attempts_since(self, phone: str, since_s: float) -> Sequence[float]: ...

    def campaign_attempts_since(self, campaign: str, since_s: float) -> Sequence[float]: ...


_T = TypeVar("_T")


class _cached(Generic[_T]):
    """``functools.cached_property`` without its per-access lock (Python 3.11 takes an
    RLock on every first read): a context is built and read by one task, per dial."""

    def __init__(self, fn: Callable[[Any], _T]) -> None:
        self.fn = fn
        self.name = fn.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _cached[_T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> _T | _cached[_T]:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


@functools.cache
def shipped_state_rules() -> StateRules:
    """The package's state tables, loaded once (sync file I/O on first call)."""
    return load_state_rules()


@dataclass(frozen=True)
class ComplianceSettings:
    """One campaign's compliance configuration. Conservative defaults; validated at
    construction (a window that never opens, a bad fallback zone or cap raises
    :class:`WindowConfigError` before anyone is dialled)."""

    campaign: str = "default"
    calling_hours: CallingHours = field(default_factory=CallingHours)
    #: IANA zone for numbers with no known zone; None: skip them ``unknown_timezone``
    fallback_zone: str | None = None
    #: None: no state rules (e.g. a campaign that calls no +1 numbers)
    state_rules: StateRules | None = field(default_factory=shipped_state_rules)
    phone_cap: int | None = 3
    phone_cap_window_s: float = DAY_S
    campaign_cap: int | None = None
    campaign_cap_window_s: float = DAY_S

    def __post_init__(self) -> None:
        self.calling_hours.require_opens("calling_hours")
        if self.fallback_zone is not None:
            try:
                zone(self.fallback_zone)
            except InvalidZone as exc:
                raise WindowConfigError(f"fallback_zone: {exc}", option="fallback_zone") \
                    from None
        for name in ("phone_cap", "campaign_cap"):
            cap = getattr(self, name)
            if cap is not None and cap < 1:
                raise WindowConfigError(f"{name}: must be >= 1 (None: no cap), got {cap}",
                                        option=name)

    @property
    def fallback(self) -> ZoneInfo | None:
        return None if self.fallback_zone is None else zone(self.fallback_zone)


@dataclass
class DialContext:
    """One record about to be dialled at ``now_s`` (epoch seconds).

    ``phone`` is E.164 (the hub only asks about dialable records); ``fields`` is the
    record's metadata (CSV columns); ``attempts`` answers the caps' questions.
    The derived properties raise :class:`RecordFieldError` for a malformed field.
    """

    now_s: float
    phone: str
    record_id: str
    settings: ComplianceSettings
    attempts: AttemptLog
    fields: Mapping[str, Any] = field(default_factory=dict)

    def _text(self, name: str) -> str | None:
        value = self.fields.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            raise RecordFieldError(name, f"expected text, got {type(value).__name__}")
        return value

    @_cached
    def zones(self) -> ZoneChoice:
        try:
            return resolve_zones(self.phone, self._text(FIELD_TIMEZONE), self.settings.fallback)
        except InvalidZone as exc:
            raise RecordFieldError(FIELD_TIMEZONE, str(exc)) from None

    @_cached
    def states(self) -> tuple[str, ...]:
        """US state codes whose rules apply (record ``state`` and/or area code)."""
        rules = self.settings.state_rules
        if rules is None or not self.phone.startswith("+1"):
            return ()
        text = self._text(FIELD_STATE)
        code = None if text is None else state_code(text)
        if text is not None and code is None:
            raise RecordFieldError(FIELD_STATE, f"{text!r} is not a US state (e.g. 'FL' or "
                                                "'Florida')")
        return rules.states_for(self.phone, code)

    @_cached
    def record_hours(self) -> CallingHours | None:
        """The record's own narrowing (``calling_hours`` field, every day), or None."""
        text = self._text(FIELD_CALLING_HOURS)
        if text is None:
            return None
        try:
            return _every_day(text)
        except WindowConfigError as exc:
            raise RecordFieldError(FIELD_CALLING_HOURS, str(exc).split(": ", 1)[-1]) from None


@functools.lru_cache(maxsize=4096)
def _every_day(text: str) -> CallingHours:
    return CallingHours.every_day(parse_ranges(text, FIELD_CALLING_HOURS))
