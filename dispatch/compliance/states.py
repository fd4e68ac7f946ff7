"""US state rules stricter than the default, from a shipped, editable TOML table.

The state of a callee comes from the record's ``state`` field and from the number's
area code (``us_area_codes.toml``); when both are known and differ, the rules of
**both** apply (either may be where the callee is: fail closed). Only +1 numbers
of the United States are looked up.

:func:`load_state_rules` reads files and is sync: the hub calls it once at campaign
start, in a worker thread (``anyio.to_thread.run_sync``). Everything else is pure.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from dispatch.compliance.usstates import US_STATES, state_code
from dispatch.compliance.window import CallingHours, WindowConfigError, parse_ranges

__all__ = ["StateRule", "StateRules", "load_state_rules"]


@dataclass(frozen=True)
class StateRule:
    """One state's extra limits: a narrower window and/or a per-phone cap."""

    state: str
    hours: CallingHours | None
    max_calls_per_24h: int | None
    source: str


@dataclass(frozen=True)
class StateRules:
    """Rules by state code, and area code → state code."""

    rules: Mapping[str, StateRule]
    area_codes: Mapping[str, str]

    def states_for(self, phone: str, record_state: str | None) -> tuple[str, ...]:
        """The state codes whose rules apply to ``phone`` (E.164), sorted.

        ``record_state`` is the record's already validated code (see
        :func:`~dispatch.compliance.usstates.state_code`)."""
        found = {record_state} if record_state else set()
        if phone.startswith("+1") and len(phone) == 12:
            by_area = self.area_codes.get(phone[2:5])
            if by_area is not None:
                found.add(by_area)
        return tuple(sorted(found))

    def rules_for(self, states: tuple[str, ...]) -> tuple[StateRule, ...]:
        return tuple(self.rules[s] for s in states if s in self.rules)


def load_state_rules(rules_path: Path | None = None,
                     area_codes_path: Path | None = None) -> StateRules:
    """Load the shipped tables, or the operator's copies. Sync file I/O (run it in a
    worker thread). Raises :class:`WindowConfigError` naming the file and state."""
    package = resources.files("dispatch.compliance")
    rules_text = (rules_path.read_text("utf-8") if rules_path is not None
                  else (package / "us_states.toml").read_text("utf-8"))
    codes_text = (area_codes_path.read_text("utf-8") if area_codes_path is not None
                  else (package / "us_area_codes.toml").read_text("utf-8"))
    where = str(rules_path or "us_states.toml")
    return StateRules(rules=parse_state_rules(rules_text, where),
                      area_codes=parse_area_codes(codes_text, str(area_codes_path or
                                                                  "us_area_codes.toml")))


def parse_state_rules(text: str, where: str) -> dict[str, StateRule]:
    """Parse the TOML table (see ``us_states.toml`` for the shape)."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WindowConfigError(f"{where}: not valid TOML ({exc})") from None
    rules = {}
    for code, entry in table.items():
        if code not in US_STATES or not isinstance(entry, dict):
            raise WindowConfigError(f"{where}: [{code}] is not a US state postal code table")
        unknown = set(entry) - {"hours", "max_calls_per_24h", "source"}
        if unknown:
            raise WindowConfigError(f"{where}: [{code}] unknown key(s) {sorted(unknown)}")
        rules[code] = StateRule(code, _hours(entry.get("hours"), f"{where}: [{code}].hours"),
                                _cap(entry.get("max_calls_per_24h"), f"{where}: [{code}]"),
                                str(entry.get("source", "")))
    return rules


def _hours(spec: object, where: str) -> CallingHours | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        return CallingHours.from_mapping(spec, where).require_opens(where)
    return CallingHours.every_day(parse_ranges(spec, where)).require_opens(where)


def _cap(value: object, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WindowConfigError(f"{where}.max_calls_per_24h: expected a whole number >= 1, "
                                f"got {value!r}")
    return value


def parse_area_codes(text: str, where: str) -> dict[str, str]:
    """The ``[area_codes]`` TOML table (``"305" = "FL"``) → dict."""
    try:
        table = tomllib.loads(text).get("area_codes", {})
    except tomllib.TOMLDecodeError as exc:
        raise WindowConfigError(f"{where}: not valid TOML ({exc})") from None
    codes = {}
    for npa, state in dict(table).items():
        if len(npa) != 3 or not npa.isdigit() or not isinstance(state, str) \
                or state_code(state) != state:
            raise WindowConfigError(f"{where}: [area_codes] expected \"NNN\" = \"XX\" (a state "
                                    f"code), got {npa!r} = {state!r}")
        codes[npa] = state
    return codes
