"""Asking the voice server what became of calls a crashed run left behind.

After a crash, a record left ``dialing``/``in_call`` had a dial on the wire. The
call may have been answered, may have failed, or may still be live (a platform
call survives its app's socket). When the dialer offers the lookup
(:class:`CallLookup`: ``dispatch.sdk.Agent`` does, over the call-log REST API;
``dispatch.testing.MemoryDialer`` does not), each such attempt is looked up by its
call id, else by the ``dispatch_source``/``dispatch_record_id``/``dispatch_attempt_no``
the hub put in the dial's metadata. A live call is polled with backoff until it ends, for at most
``wait_s`` in total (nothing is dialled meanwhile, so its slot and phone stay held).

:func:`verdict` is the pure mapping from what the server said to how the attempt
is settled (see :class:`Verdict`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import anyio

from dispatch.clock import Clock
from dispatch.log import get_logger
from dispatch.reasons import Reason

__all__ = ["CallLookup", "Probe", "ReportedCall", "Verdict", "ask_all", "verdict"]

log = get_logger("dispatch.hub")

#: how long one lookup may take (real seconds)
LOOKUP_TIMEOUT_S = 10.0
#: at most this many lookups at once
_PARALLEL = 16
_FIRST_POLL_S, _MAX_POLL_S = 0.25, 5.0


class ReportedCall(Protocol):
    """What the hub reads from the server's answer (``dispatch.sdk.CallState``)."""

    @property
    def call_id(self) -> str: ...
    @property
    def live(self) -> bool: ...
    @property
    def answered(self) -> bool: ...
    @property
    def end_reason(self) -> Reason | None: ...
    @property
    def end_reason_raw(self) -> str | None: ...
    @property
    def answered_at(self) -> float | None: ...
    @property
    def ended_at(self) -> float | None: ...
    @property
    def duration_s(self) -> float | None: ...


@runtime_checkable
class CallLookup(Protocol):
    """A dialer that can say what became of a call (``None``: the server does not know)."""

    async def lookup_call(self, call_id: str) -> Any: ...

    async def find_call(self, attempt_id: str | None = None, *,
                        metadata: Mapping[str, Any] | None = None) -> Any: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Probe:
    """One interrupted attempt to look up."""

    record_id: str
    attempt_no: int
    call_id: str | None
    #: the record's stored source (the same id may exist in several sources)
    source: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.record_id)

    @property
    def metadata(self) -> dict[str, Any]:
        """The keys the hub put in the dial's metadata (``hub.attempt``)."""
        return {"dispatch_source": self.source, "dispatch_record_id": self.record_id,
                "dispatch_attempt_no": self.attempt_no}


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """How to settle an interrupted attempt.

    ``kind``: ``answered`` (completed, never redialled), ``unanswered`` (through the
    retry policy with ``reason``), ``unknown`` (the server cannot say: not redialled
    unless ``RetryPolicy.retry_unknown``).
    """

    kind: Literal["answered", "unanswered", "unknown"]
    reason: Reason
    raw_reason: str
    call_id: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    duration_s: float | None = None
    note: str | None = None


def verdict(state: ReportedCall | None, failure: str | None = None) -> Verdict:
    """The settlement for what the server reported (``state``; ``failure``: why the
    lookup itself failed)."""
    if failure is not None or state is None:
        raw = "lookup_failed" if failure is not None else "not_found"
        note = failure or "the voice server has no record of this dial"
        return Verdict("unknown", Reason.UNKNOWN, raw, note=f"reconcile: {note}")
    if state.live and not state.answered:
        return _from(state, "unknown", Reason.UNKNOWN, "still_ringing",
                     "reconcile: the call was still ringing when we stopped waiting")
    if state.live:
        return _from(state, "answered", Reason.INTERRUPTED, "live_at_restart",
                     "reconcile: answered, still live when we stopped waiting")
    reason = state.end_reason or Reason.UNKNOWN
    kind: Literal["answered", "unanswered"] = "answered" if state.answered else "unanswered"
    return _from(state, kind, reason, state.end_reason_raw or reason.value)


def _from(state: ReportedCall, kind: Literal["answered", "unanswered", "unknown"],
          reason: Reason, raw: str, note: str | None = None) -> Verdict:
    return Verdict(kind, reason, raw, call_id=state.call_id, answered_at=state.answered_at,
                   ended_at=state.ended_at, duration_s=state.duration_s, note=note)


async def _ask(dialer: CallLookup, probe: Probe) -> ReportedCall | None:
    with anyio.fail_after(LOOKUP_TIMEOUT_S):
        state = await dialer.lookup_call(probe.call_id) if probe.call_id else None
        if state is None:
            state = await dialer.find_call(metadata=probe.metadata)
    return state  # type: ignore[no-any-return]


async def _follow(dialer: CallLookup, probe: Probe, clock: Clock, deadline: float) -> Verdict:
    """Look the attempt up; while its call is live, poll with backoff until ``deadline``."""
    delay_s = _FIRST_POLL_S
    while True:
        try:
            state = await _ask(dialer, probe)
        except Exception as exc:  # any failure means "the server cannot say"
            text = f"lookup failed: {type(exc).__name__}: {exc}"
            log.warning("call lookup failed", record_id=probe.record_id, error=text)
            return verdict(None, text)
        if state is None or not state.live or clock.now() >= deadline:
            return verdict(state)
        await clock.sleep(min(delay_s, max(0.0, deadline - clock.now())))
        delay_s = min(delay_s * 2, _MAX_POLL_S)


async def ask_all(dialer: Any, probes: Iterable[Probe], clock: Clock,
                  wait_s: float) -> dict[tuple[str, str], Verdict] | None:
    """Verdicts by record ``(source, id)``, or ``None`` when ``dialer`` offers no lookup."""
    if not isinstance(dialer, CallLookup):
        return None
    probes = list(probes)
    if probes:
        log.info("asking the voice server what became of interrupted attempts",
                 count=len(probes), wait_s=wait_s)
    deadline = clock.now() + wait_s
    limiter = anyio.CapacityLimiter(_PARALLEL)
    verdicts: dict[tuple[str, str], Verdict] = {}

    async def one(probe: Probe) -> None:
        async with limiter:
            verdicts[probe.key] = await _follow(dialer, probe, clock, deadline)

    async with anyio.create_task_group() as tg:
        for probe in probes:
            tg.start_soon(one, probe)
    return verdicts


if TYPE_CHECKING:  # mypy proves the real SDK fits these seams
    from dispatch.sdk.agent import Agent
    from dispatch.sdk.calls_api import CallState

    def _agent_is_a_lookup(agent: Agent) -> CallLookup:
        return agent

    def _state_is_reported(state: CallState) -> ReportedCall:
        return state
