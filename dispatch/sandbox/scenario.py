"""What each simulated callee does: the digit rule and TOML scenario files.

Without a scenario (or when no rule matches, or a rule leaves ``outcome`` out)
the callee is chosen by the **last two digits** of the dialled number:

==========  ==============================================================
``00-59``   answers, hears the greeting, says one line, hangs up (``hangup``)
``60-74``   rings out (``no-answer``)
``75-84``   ``busy``
``85-89``   ``failed``
``90-94``   answers, then the line drops (``disconnected``)
``95-99``   answers and never hangs up (``no-hangup``: ends by session limit or
            client ``call.hangup``)
==========  ==============================================================

Scenario TOML schema (every key optional; times are *simulated* seconds, divided
by the sandbox ``speed``; a time is a number or a ``[min, max]`` range drawn
uniformly from the call's seeded random generator)::

    [defaults]
    ring_s = [2, 8]              # ring time before an answer
    no_answer_ring_s = [20, 30]  # ring time before "no-answer"
    busy_ring_s = [1, 3]
    failed_ring_s = [0.5, 2]
    talk_s = [5, 20]             # callee's share of an answered call, spread over its turns
    tool_timeout_s = 30          # REAL seconds (not scaled) to wait for llm.tool_result;
                                 # then the result is {"error": "tool timeout"}

    [[rules]]                    # first matching rule wins
    match = "+15550001*"         # exact E.164, a glob (* ? [..]), "re:<regex>" (full match),
                                 # or a list of those
    outcome = "hangup"           # hangup | no-answer | busy | failed | disconnected | no-hangup
                                 # (left out: the digit rule decides)
    ring_s = 3                   # overrides the default for this rule's outcome
    talk_s = [5, 10]
    say = ["Hello?", "Bye."]     # shorthand for turns that only speak

    [[rules.turns]]              # what the callee says, in order (replaces ``say``)
    say = "Yes, I'll be there."  # sent as user.message
    tool = "confirm_appointment" # then llm.tool_call {name, arguments as a JSON string};
    arguments = { status = "confirmed" }  # the call waits for llm.tool_result
    reply = "Great, see you then. Goodbye!"  # then the bot speaks this line
    pause_s = 2                  # silence before this turn (default: talk_s / (turns + 1))

    [refusals]                   # the platform's own refusals: see dispatch.sandbox.refusals
    per_minute = 6               # e.g. 429 too_fast over 6 dials a minute

:meth:`Scenario.from_file` / :meth:`Scenario.from_toml` raise :class:`ScenarioError`
naming the file and the offending key (``rules[1].outcome: ...``).
"""

from __future__ import annotations

import fnmatch
import random
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dispatch.sandbox.refusals import RefusalSettings

__all__ = ["CallPlan", "PlannedTurn", "Scenario", "ScenarioError", "compile_pattern",
           "digit_outcome"]

Outcome = Literal["hangup", "no-answer", "busy", "failed", "disconnected", "no-hangup"]
#: Outcomes in which the callee answers.
ANSWERED: frozenset[str] = frozenset({"hangup", "disconnected", "no-hangup"})
TimeSpec = float | tuple[float, float]

_DEFAULT_LINES = (
    "Hello? Yes, speaking.",
    "Oh, hi. Okay, thanks for letting me know.",
    "Sure, that works for me. Bye!",
    "Sorry, who is this? Ah, okay. Thank you.",
)


class ScenarioError(ValueError):
    """A scenario file or text is invalid; the message names the source and key."""


def _check_time(value: TimeSpec) -> TimeSpec:
    low, high = (value, value) if isinstance(value, float | int) else value
    if low < 0 or high < low:
        raise ValueError("must be >= 0, and a [min, max] range needs min <= max")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TurnSpec(_Model):
    """One thing the callee says, optionally followed by a tool call and a bot reply."""

    say: str
    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)
    reply: str | None = None
    pause_s: TimeSpec | None = None

    @field_validator("pause_s")
    @classmethod
    def _pause_valid(cls, value: TimeSpec | None) -> TimeSpec | None:
        return None if value is None else _check_time(value)


class Defaults(_Model):
    """Times used when a rule does not set its own."""

    ring_s: TimeSpec = (2.0, 8.0)
    no_answer_ring_s: TimeSpec = (20.0, 30.0)
    busy_ring_s: TimeSpec = (1.0, 3.0)
    failed_ring_s: TimeSpec = (0.5, 2.0)
    talk_s: TimeSpec = (5.0, 20.0)
    tool_timeout_s: float = Field(default=30.0, ge=0)

    @field_validator("ring_s", "no_answer_ring_s", "busy_ring_s", "failed_ring_s", "talk_s")
    @classmethod
    def _times_valid(cls, value: TimeSpec) -> TimeSpec:
        return _check_time(value)

    def ring_for(self, outcome: str) -> TimeSpec:
        """The default ring time of ``outcome``."""
        return {
            "no-answer": self.no_answer_ring_s,
            "busy": self.busy_ring_s,
            "failed": self.failed_ring_s,
        }.get(outcome, self.ring_s)


class Rule(_Model):
    """Numbers matching ``match`` get this callee."""

    match: str | list[str]
    outcome: Outcome | None = None
    ring_s: TimeSpec | None = None
    talk_s: TimeSpec | None = None
    say: list[str] | None = None
    turns: list[TurnSpec] | None = None

    @field_validator("match")
    @classmethod
    def _patterns_compile(cls, value: str | list[str]) -> str | list[str]:
        for pattern in [value] if isinstance(value, str) else value:
            compile_pattern(pattern)
        return value

    @field_validator("ring_s", "talk_s")
    @classmethod
    def _times_valid(cls, value: TimeSpec | None) -> TimeSpec | None:
        return None if value is None else _check_time(value)

    def matcher(self) -> Callable[[str], bool]:
        """A predicate over E.164 numbers."""
        patterns = [self.match] if isinstance(self.match, str) else self.match
        compiled = [compile_pattern(p) for p in patterns]
        return lambda number: any(c(number) for c in compiled)


class ScenarioModel(_Model):
    """The whole TOML document."""

    defaults: Defaults = Field(default_factory=Defaults)
    rules: list[Rule] = Field(default_factory=list)
    #: the platform's own refusals (``dispatch.sandbox.refusals``)
    refusals: RefusalSettings = Field(default_factory=RefusalSettings)


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A predicate over E.164 numbers for a rule pattern (exact, glob, ``re:``);
    ``ValueError`` for a bad regex."""
    try:
        if pattern.startswith("re:"):
            regex = re.compile(pattern[3:])
            return lambda n: regex.fullmatch(n) is not None
        if any(ch in pattern for ch in "*?["):
            glob = re.compile(fnmatch.translate(pattern))
            return lambda n: glob.match(n) is not None
    except re.error as exc:
        raise ValueError(f"bad pattern {pattern!r}: {exc}") from exc
    return lambda n: n == pattern


def digit_outcome(number: str) -> Outcome:
    """The callee of the digit rule (see the module docstring) for an E.164 number."""
    digits = int(number[-2:]) if number[-2:].isdigit() else 0
    if digits < 60:
        return "hangup"
    if digits < 75:
        return "no-answer"
    if digits < 85:
        return "busy"
    if digits < 90:
        return "failed"
    if digits < 95:
        return "disconnected"
    return "no-hangup"


@dataclass(frozen=True, slots=True)
class PlannedTurn:
    """A turn with its pause already drawn (simulated seconds)."""

    say: str
    pause_s: float
    tool: str | None = None
    arguments: dict[str, Any] | None = None
    reply: str | None = None


@dataclass(frozen=True, slots=True)
class CallPlan:
    """Everything one simulated callee will do; times in simulated seconds."""

    outcome: Outcome
    ring_s: float
    turns: tuple[PlannedTurn, ...]
    final_pause_s: float
    tool_timeout_s: float

    @property
    def answers(self) -> bool:
        return self.outcome in ANSWERED


def _draw(spec: TimeSpec, rng: random.Random) -> float:
    if isinstance(spec, float | int):
        return float(spec)
    return rng.uniform(spec[0], spec[1])


class Scenario:
    """Decides callees: the first matching rule, else the digit rule.

    ``Scenario()`` is the documented default (no rules, default times).
    """

    def __init__(self, model: ScenarioModel | None = None, *, source: str = "<default>") -> None:
        self.model = model or ScenarioModel()
        self.source = source
        self._rules = [(rule, rule.matcher()) for rule in self.model.rules]

    @classmethod
    def from_toml(cls, text: str, *, source: str = "<string>") -> Scenario:
        """Parse and validate TOML text. Raises :class:`ScenarioError`."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"scenario {source}: invalid TOML: {exc}") from exc
        try:
            model = ScenarioModel.model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(_describe(source, exc)) from exc
        return cls(model, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> Scenario:
        """Read ``path`` (TOML). Raises :class:`ScenarioError` (also for an unreadable file)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"scenario {path}: cannot read: {exc}") from exc
        return cls.from_toml(text, source=str(path))

    def rule_for(self, number: str) -> Rule | None:
        """The first rule matching ``number``, or None."""
        return next((rule for rule, matches in self._rules if matches(number)), None)

    def plan(self, number: str, rng: random.Random) -> CallPlan:
        """Draw the callee for ``number``; same ``rng`` state, same plan."""
        rule = self.rule_for(number)
        defaults = self.model.defaults
        outcome = (rule.outcome if rule else None) or digit_outcome(number)
        ring = rule.ring_s if rule and rule.ring_s is not None else defaults.ring_for(outcome)
        talk = rule.talk_s if rule and rule.talk_s is not None else defaults.talk_s
        ring_s, talk_s = _draw(ring, rng), _draw(talk, rng)
        specs = _turn_specs(rule, rng)
        even_pause = talk_s / (len(specs) + 1)
        turns = tuple(
            PlannedTurn(
                say=spec.say,
                pause_s=even_pause if spec.pause_s is None else _draw(spec.pause_s, rng),
                tool=spec.tool,
                arguments=dict(spec.arguments) if spec.tool else None,
                reply=spec.reply,
            )
            for spec in specs
        )
        return CallPlan(outcome, ring_s, turns, even_pause, defaults.tool_timeout_s)


def _turn_specs(rule: Rule | None, rng: random.Random) -> list[TurnSpec]:
    line = rng.choice(_DEFAULT_LINES)  # always drawn, so rules do not shift later draws
    if rule is not None and rule.turns is not None:
        return list(rule.turns)
    if rule is not None and rule.say is not None:
        return [TurnSpec(say=text) for text in rule.say]
    return [TurnSpec(say=line)]


def _describe(source: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        key = ""
        for part in error["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        problems.append(f"{key or '<root>'}: {error['msg']}")
    return f"scenario {source}: " + "; ".join(problems)
