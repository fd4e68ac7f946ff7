"""Reconciliation after a restart: the mapping from what the server says to a
settlement, and the bounded wait for calls still live (FakeClock, scripted lookups)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest

from dispatch.hub.reconcile import Probe, Verdict, ask_all, verdict
from dispatch.reasons import Reason
from dispatch.sdk import CallState
from dispatch.testing import FakeClock

pytestmark = pytest.mark.anyio


def state(*, live: bool = False, answered: bool = False, reason: Reason | None = None,
          raw: str | None = None) -> CallState:
    return CallState(call_id="CA1", live=live, state="ended" if not live else "ringing",
                     answered=answered, end_reason=None if live else reason,
                     end_reason_raw=raw, answered_at=5.0 if answered else None,
                     ended_at=None if live else 9.0, duration_s=4.0 if answered else None)


@pytest.mark.parametrize(
    ("reported", "failure", "kind", "reason", "raw"),
    [
        (None, None, "unknown", Reason.UNKNOWN, "not_found"),
        (None, "lookup failed: ConnectError", "unknown", Reason.UNKNOWN, "lookup_failed"),
        (state(live=True), None, "unknown", Reason.UNKNOWN, "still_ringing"),
        (state(live=True, answered=True), None, "answered", Reason.INTERRUPTED,
         "live_at_restart"),
        (state(answered=True, reason=Reason.HANGUP, raw="hangup"), None, "answered",
         Reason.HANGUP, "hangup"),
        (state(answered=True, reason=Reason.DISCONNECTED, raw="app_detached"), None,
         "answered", Reason.DISCONNECTED, "app_detached"),
        (state(reason=Reason.BUSY, raw="busy"), None, "unanswered", Reason.BUSY, "busy"),
        (state(reason=Reason.NO_ANSWER, raw="no-answer"), None, "unanswered",
         Reason.NO_ANSWER, "no-answer"),
        (state(reason=None), None, "unanswered", Reason.UNKNOWN, "unknown"),
    ],
)
def test_verdict_mapping(reported: CallState | None, failure: str | None, kind: str,
                         reason: Reason, raw: str) -> None:
    v = verdict(reported, failure)
    assert (v.kind, v.reason, v.raw_reason) == (kind, reason, raw)
    if reported is not None and failure is None:
        assert (v.call_id, v.answered_at, v.duration_s) == (
            "CA1", reported.answered_at, reported.duration_s)
    if kind == "unknown":
        assert v.note and v.note.startswith("reconcile:")


class ScriptedLookup:
    """A dialer whose call log answers from a script (one state per lookup)."""

    def __init__(self, by_id: list[Any] | None = None, by_meta: list[Any] | None = None):
        self.by_id, self.by_meta = list(by_id or []), list(by_meta or [])
        self.asked: list[tuple[str, Any]] = []

    async def dial(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not dialled in these tests")

    @staticmethod
    def _next(script: list[Any]) -> Any:
        item = script.pop(0) if len(script) > 1 else script[0] if script else None
        if isinstance(item, Exception):
            raise item
        return item

    async def lookup_call(self, call_id: str) -> CallState | None:
        self.asked.append(("id", call_id))
        return self._next(self.by_id)  # type: ignore[no-any-return]

    async def find_call(self, attempt_id: str | None = None, *,
                        metadata: Mapping[str, Any] | None = None) -> CallState | None:
        self.asked.append(("meta", dict(metadata or {})))
        return self._next(self.by_meta)  # type: ignore[no-any-return]


async def _ask(dialer: Any, probe: Probe, wait_s: float = 60.0) -> tuple[Verdict, FakeClock]:
    clock = FakeClock()
    async with clock.autojump():
        verdicts = await ask_all(dialer, [probe], clock, wait_s)
    assert verdicts is not None
    return verdicts[probe.key], clock


async def test_a_live_call_is_polled_with_backoff_until_it_ends() -> None:
    ended = state(answered=True, reason=Reason.HANGUP, raw="hangup")
    live = dataclasses.replace(ended, live=True, state="in_progress", end_reason=None)
    dialer = ScriptedLookup(by_id=[live, live, live, ended])
    v, clock = await _ask(dialer, Probe("r1", 1, "CA1", "memory"))
    assert (v.kind, v.reason) == ("answered", Reason.HANGUP)
    assert dialer.asked == [("id", "CA1")] * 4
    assert clock.now() - 1_700_000_000.0 == pytest.approx(0.25 + 0.5 + 1.0)


async def test_a_call_still_ringing_at_the_deadline_is_unknown() -> None:
    dialer = ScriptedLookup(by_id=[state(live=True)])
    v, clock = await _ask(dialer, Probe("r1", 1, "CA1", "memory"), wait_s=30.0)
    assert (v.kind, v.raw_reason) == ("unknown", "still_ringing")
    assert clock.now() - 1_700_000_000.0 == pytest.approx(30.0)


async def test_without_a_call_id_the_dial_is_found_by_its_metadata() -> None:
    dialer = ScriptedLookup(by_meta=[state(reason=Reason.BUSY, raw="busy")])
    v, _ = await _ask(dialer, Probe("r9", 2, None, "memory"))
    assert (v.kind, v.reason) == ("unanswered", Reason.BUSY)
    assert dialer.asked == [("meta", {"dispatch_source": "memory", "dispatch_record_id": "r9",
                                    "dispatch_attempt_no": 2})]


async def test_an_unknown_call_id_falls_back_to_the_metadata() -> None:
    dialer = ScriptedLookup(by_id=[None], by_meta=[None])
    v, _ = await _ask(dialer, Probe("r1", 1, "CA1", "memory"))
    assert (v.kind, v.raw_reason) == ("unknown", "not_found")
    assert [kind for kind, _ in dialer.asked] == ["id", "meta"]


async def test_a_failing_lookup_is_unknown_and_names_the_error() -> None:
    dialer = ScriptedLookup(by_id=[ConnectionRefusedError("no route")])
    v, _ = await _ask(dialer, Probe("r1", 1, "CA1", "memory"))
    assert (v.kind, v.raw_reason) == ("unknown", "lookup_failed")
    assert v.note is not None and "ConnectionRefusedError" in v.note


async def test_a_dialer_without_lookup_keeps_the_plain_rule() -> None:
    class Plain:
        async def dial(self, *args: Any, **kwargs: Any) -> Any: ...

    assert await ask_all(Plain(), [Probe("r1", 1, "CA1", "memory")], FakeClock(), 60.0) is None
