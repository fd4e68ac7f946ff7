"""The platform's own dial refusals, simulated: rate guards, quiet hours, DNC, consent, quota.

The Pinecall gateway refuses some dials before placing them (see
``/work/shared/design/compliance.md``); on the ``/client`` socket the refusal is a
``call.error`` (or, configurably, a generic ``error``) frame answering the dial::

    {"event": "call.error", "agent_id": "reminder", "to": "+1…", "metadata": {…},
     "code": "too_fast", "status": 429, "retry_after": 12.5,
     "error": "429 too_fast: over the per-minute dial guard (6 per 60 s)"}

``retry_after`` (seconds) is sent for the rate guards and quiet hours only when the
sandbox can tell; the platform documents no such field, so a client must cope
without it. Refused dials are logged (``outcome: rejected``, ``error_code``) and,
as on the platform, count against the per-minute and per-day guards.

Switches (:class:`RefusalSettings`; the ``[refusals]`` table of a scenario, the
``--refuse-*`` flags of ``dispatch sandbox``, or ``Sandbox(refusals=...)``)::

    [refusals]
    per_minute = 6            # 429 too_fast over N dials per `minute_s` (real seconds)
    minute_s = 60
    per_day = 200             # 429 too_many once N dials were received
    per_number = 3            # 429 too_often once a number was dialled N times
    storm = 0.5               # 429 too_fast for this share of dials (seeded) ...
    storm_dials = 40          # ... among the first N dials received (None: forever)
    storm_retry_after_s = 1   # the retry hint sent with them (left out: none)
    quiet_hours = ["+1555*"]  # 403 quiet_hours for these numbers (scenario patterns)
    quiet_retry_after_s = 30  # the retry hint sent with quiet_hours (left out: none)
    do_not_call = ["+1666*"]  # 403 do_not_call
    no_consent = ["+1777*"]   # 403 no_consent
    stranger = ["+1888*"]     # 403 stranger
    quota_after = 10          # 429 <quota> for every dial once N dials were placed
    quota = "minutes"         # or "concurrent_calls"
    frame = "call.error"      # or "error" (the generic frame; protocol: unverified)
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PlatformGuard", "Refusal", "RefusalSettings"]

Patterns = list[str]


class RefusalSettings(BaseModel):
    """Which refusals the simulated platform gives (every switch off by default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_minute: int | None = Field(default=None, ge=1)
    minute_s: float = Field(default=60.0, gt=0)
    per_day: int | None = Field(default=None, ge=1)
    per_number: int | None = Field(default=None, ge=1)
    day_retry_after_s: float = Field(default=3600.0, ge=0)
    storm: float = Field(default=0.0, ge=0.0, le=1.0)
    storm_dials: int | None = Field(default=None, ge=1)
    storm_retry_after_s: float | None = Field(default=None, ge=0)
    quiet_hours: Patterns = Field(default_factory=list)
    quiet_retry_after_s: float | None = Field(default=None, ge=0)
    do_not_call: Patterns = Field(default_factory=list)
    no_consent: Patterns = Field(default_factory=list)
    stranger: Patterns = Field(default_factory=list)
    quota_after: int | None = Field(default=None, ge=0)
    quota: Literal["minutes", "concurrent_calls"] = "minutes"
    frame: Literal["call.error", "error"] = "call.error"

    @field_validator("quiet_hours", "do_not_call", "no_consent", "stranger")
    @classmethod
    def _patterns_compile(cls, value: Patterns) -> Patterns:
        from dispatch.sandbox.scenario import compile_pattern

        for pattern in value:
            compile_pattern(pattern)
        return value

    @property
    def armed(self) -> bool:
        """True when any switch is on."""
        return self != RefusalSettings()


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refusal, as the wire carries it."""

    code: str
    status: int
    text: str
    retry_after_s: float | None = None

    def frame(self, event: str, base: dict[str, Any]) -> dict[str, Any]:
        """The refusal frame (``call.error`` or ``error``) over ``base`` (agent, to, metadata)."""
        frame: dict[str, Any] = {"event": event, **base, "code": self.code,
                                 "status": self.status, "error": f"{self.status} {self.code}: "
                                 f"{self.text}"}
        if self.retry_after_s is not None:
            frame["retry_after"] = round(self.retry_after_s, 3)
        if event == "error":
            frame["command"] = "call.dial"
        return frame


def _matcher(patterns: Patterns) -> Callable[[str], bool]:
    from dispatch.sandbox.scenario import compile_pattern

    compiled = [compile_pattern(p) for p in patterns]
    return lambda number: any(match(number) for match in compiled)


class PlatformGuard:
    """The simulated platform's decision for each ``call.dial`` (one per sandbox).

    :meth:`check` is called for every well-formed dial, in receipt order; it returns
    the :class:`Refusal` to send, or None (the dial is placed, then :meth:`placed`).
    ``clock`` is real monotonic seconds (the guards are real-time, like the platform's).
    """

    def __init__(self, settings: RefusalSettings | None = None, *, seed: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or RefusalSettings()
        self._clock = clock
        self._rng = random.Random(f"refusals:{seed}")
        self._recent: deque[float] = deque()
        self._received = 0
        self._placed = 0
        self._by_number: dict[str, int] = {}
        s = self.settings
        self._lists = [(_matcher(s.do_not_call), "do_not_call", "number is on the "
                        "organisation's do-not-call list"),
                       (_matcher(s.no_consent), "no_consent", "no recorded consent for "
                        "this +1 number"),
                       (_matcher(s.stranger), "stranger", "number never in contact with "
                        "the organisation")]
        self._quiet = _matcher(s.quiet_hours)
        #: refusals sent, by code (for tests and statistics)
        self.refused: dict[str, int] = {}

    def check(self, to: str) -> Refusal | None:
        """Decide one dial to ``to``; counts it against the guards (refusals count)."""
        now = self._clock()
        refusal = self._decide(to, now)
        self._received += 1
        self._recent.append(now)
        if refusal is not None:
            self.refused[refusal.code] = self.refused.get(refusal.code, 0) + 1
        return refusal

    def placed(self, to: str) -> None:
        """The dial was placed (a call exists)."""
        self._placed += 1
        self._by_number[to] = self._by_number.get(to, 0) + 1

    def _decide(self, to: str, now: float) -> Refusal | None:
        s = self.settings
        if s.quota_after is not None and self._placed >= s.quota_after:
            return Refusal(s.quota, 429, f"plan quota spent ({s.quota}: "
                           f"{self._placed} of {s.quota_after})")
        for matches, code, text in self._lists:
            if matches(to):
                return Refusal(code, 403, text)
        if self._quiet(to):
            return Refusal("quiet_hours", 403, "outside the callee's calling hours",
                           s.quiet_retry_after_s)
        if s.per_number is not None and self._by_number.get(to, 0) >= s.per_number:
            return Refusal("too_often", 429, f"this number was called too often today "
                           f"({s.per_number} per day)", s.day_retry_after_s)
        if s.per_day is not None and self._received >= s.per_day:
            return Refusal("too_many", 429, f"over the per-day dial guard ({s.per_day} per "
                           "day)", s.day_retry_after_s)
        return self._rate(now)

    def _rate(self, now: float) -> Refusal | None:
        s = self.settings
        while self._recent and self._recent[0] <= now - s.minute_s:
            self._recent.popleft()
        if s.per_minute is not None and len(self._recent) >= s.per_minute:
            wait_s = self._recent[-s.per_minute] + s.minute_s - now
            return Refusal("too_fast", 429, f"over the per-minute dial guard "
                           f"({s.per_minute} per {s.minute_s:g} s)", max(wait_s, 0.0))
        in_storm = s.storm_dials is None or self._received < s.storm_dials
        if s.storm > 0 and in_storm and self._rng.random() < s.storm:
            return Refusal("too_fast", 429, "over the per-minute dial guard (storm)",
                           s.storm_retry_after_s)
        return None
