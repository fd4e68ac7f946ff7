"""The hub's reaction to the platform's refusals, and to a callee's opt-out.

A :class:`~dispatch.sdk.errors.DialRefused` is never an attempt of its record (the
attempt row stays, for audit, with ``raw_reason = 'platform_refusal'``, which the
store does not count toward retries, across restarts too). By kind:

==============  ==========================================================================
``SLOW_DOWN``   the campaign's pace drops (:class:`PlatformThrottle`: a hold for the
                server's ``retry_after`` or an exponential backoff, then half the
                per-minute rate seen for a while); the record goes back to ``pending``
``PAUSE_DAY``   the same, held for the day guard's hint (default 1 h)
``DEFER_DAY``   the record is deferred 24 h (or the hint)
``QUIET_HOURS`` the record is deferred to the hint, else to the next opening of the
                platform's window in the number's zones (``refusal_decision``)
``DNC``         skipped ``dnc``; the number goes to the internal list (``opt_out_sink``)
``NO_CONSENT``  skipped ``no_consent`` (``STRANGER``: skipped ``stranger``)
``QUOTA``       the campaign row is paused with the reason (``campaign show``), the
                record stays ``pending``, the run drains and raises
                :class:`~dispatch.errors.QuotaExhausted` (``dispatch run`` exits 3)
==============  ==========================================================================

A call that ends with an ``opt_out`` / ``do_not_call`` tool result or disposition
(:func:`~dispatch.compliance.is_opt_out`) puts its number on the internal list
*before* the call's outcome is settled (:func:`note_opt_out`), and no later record
of this run is dialled to that number (:func:`skip_suppressed`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from dispatch.compliance import ComplianceSettings, DialContext, RefusalKind, refusal_decision
from dispatch.compliance.optout import is_opt_out
from dispatch.errors import QuotaExhausted
from dispatch.hub.limiter import SlidingWindowLimiter, earliest_start
from dispatch.log import get_logger
from dispatch.reasons import Reason
from dispatch.sdk.errors import DialRefused
from dispatch.store import campaigns
from dispatch.strategy import Outcome

if TYPE_CHECKING:
    from dispatch.hub.core import HubCore
    from dispatch.hub.state import AttemptState, RecordEntry

__all__ = [
    "REFUSAL_RAW_REASON",
    "OptOutSink",
    "PlatformThrottle",
    "note_opt_out",
    "settle_refusal",
    "skip_suppressed",
]

log = get_logger("dispatch.hub")

#: ``attempts.raw_reason`` of a refused dial: never counted toward retries
REFUSAL_RAW_REASON = "platform_refusal"
#: ``(phone, campaign, record_id, source)``: adds the number to the internal DNC list
#: durably (the lead wires ``core.compliance.add_opt_out``)
OptOutSink = Callable[[str, str, str, str], Awaitable[None]]
#: defaults when the refusal carries no hint
DAY_PAUSE_S = 3600.0
DEFER_DAY_S = 86_400.0
QUIET_RETRY_S = 900.0


class PlatformThrottle:
    """The pace the platform lets the campaign keep, on the hub's clock.

    After a rate refusal at ``t`` no dial is claimed before ``t + hold``. With the
    server's hint, ``hold`` is the hint and that is all. Without one, ``hold`` is
    ``default_hold_s`` or ``base_hold_s`` doubling per refusal in a row (at most
    ``max_hold_s``), and for ``recover_s`` the campaign also keeps to half the dials
    per minute it had made when refused (at least 1): the platform's guard is
    unknown, so the pace is halved until it stops refusing. A dial the server
    accepts ends the streak.
    """

    def __init__(self, window: SlidingWindowLimiter, *, base_hold_s: float = 2.0,
                 max_hold_s: float = 300.0, recover_s: float = 300.0) -> None:
        self.window = window
        self.base_hold_s, self.max_hold_s, self.recover_s = base_hold_s, max_hold_s, recover_s
        self.hold_until = -math.inf
        self.budget: int | None = None
        self.budget_until = -math.inf
        self.streak = 0
        #: refusals seen, by kind (statistics)
        self.refusals: dict[str, int] = {}

    def refused(self, now: float, retry_after_s: float | None, *,
                default_hold_s: float | None = None) -> float:
        """Count a rate refusal at ``now``; returns when dialling may resume."""
        self.streak += 1
        hold_s = retry_after_s if retry_after_s is not None else default_hold_s
        if hold_s is None:
            hold_s = min(self.max_hold_s, self.base_hold_s * 2 ** (self.streak - 1))
        self.hold_until = max(self.hold_until, now + hold_s)
        if retry_after_s is not None:
            return self.hold_until  # the server said when: no need to guess a pace
        seen = max(1, self.window.count(now) // 2)
        self.budget = seen if self.budget is None or now >= self.budget_until else min(
            self.budget, seen)
        self.budget_until = now + self.recover_s
        return self.hold_until

    def accepted(self) -> None:
        """The server placed a dial: the refusal streak is over."""
        self.streak = 0

    def _budget_on(self, now: float) -> int | None:
        return self.budget if self.budget is not None and now < self.budget_until else None

    def available(self, now: float, reserved: int = 0) -> float:
        """Dials the throttle allows to claim at ``now`` (``math.inf``: no limit)."""
        if now < self.hold_until:
            return 0
        budget = self._budget_on(now)
        if budget is None:
            return math.inf
        return max(0, budget - self.window.count(now) - reserved)

    def next_allowed_at(self, now: float, reserved: int = 0) -> float:
        """The earliest time ``>= now`` at which :meth:`available` may be positive."""
        if now < self.hold_until:
            return self.hold_until
        budget = self._budget_on(now)
        if budget is None:
            return now
        if reserved >= budget:
            return min(now + self.window.window_s, self.budget_until)
        starts = self.window.starts_since(now - self.window.window_s)
        return min(earliest_start(starts, now, budget - reserved, self.window.window_s),
                   self.budget_until)

    def statistics(self) -> dict[str, Any]:
        return {"hold_until": self.hold_until, "budget_per_minute": self.budget,
                "budget_until": self.budget_until, "streak": self.streak,
                "refusals": dict(self.refusals)}


class _NoAttempts:
    """The attempt log ``refusal_decision`` never reads (quiet hours need no counts)."""

    def phone_attempts_since(self, phone: str, since_s: float) -> Sequence[float]:
        return ()

    def campaign_attempts_since(self, campaign: str, since_s: float) -> Sequence[float]:
        return ()


def _quiet_until(entry: RecordEntry, now: float, hint_s: float | None) -> float:
    if hint_s is not None:
        return now + hint_s
    ctx = DialContext(now_s=now, phone=entry.record.phone, record_id=entry.id,
                      settings=ComplianceSettings(), attempts=_NoAttempts(),
                      fields=entry.record.metadata)
    try:
        decision = refusal_decision(RefusalKind.QUIET_HOURS, ctx, quiet_retry_s=QUIET_RETRY_S)
    except Exception as exc:  # a zone lookup problem must not lose the record
        log.warning("quiet-hours opening unknown", record_id=entry.id, error=str(exc))
        decision = None
    until = decision.until_s if decision is not None else None
    return until if until is not None and until > now else now + QUIET_RETRY_S


async def settle_refusal(core: HubCore, entry: RecordEntry, attempt: AttemptState,
                         exc: DialRefused) -> None:
    """Settle a refused dial (see the module docstring); never spends an attempt."""
    from dispatch.hub.attempt import settle_write

    now = core.clock.now()
    kind = exc.kind
    core.throttle.refusals[kind.value] = core.throttle.refusals.get(kind.value, 0) + 1
    log.warning("dial refused by the voice server", record_id=entry.id, kind=kind.value,
                code=exc.code, retry_after_s=exc.retry_after_s)
    attempt.ended_at = now
    attempt.reason, attempt.raw_reason = exc.reason.value, REFUSAL_RAW_REASON
    attempt.note_error(f"refused by the voice server: {exc.raw_reason}")
    entry.uncounted += 1
    entry.last_reason = exc.reason.value
    entry.next_attempt_at = None
    status, outcome = "pending", None
    if kind in (RefusalKind.SLOW_DOWN, RefusalKind.PAUSE_DAY):
        day = DAY_PAUSE_S if kind is RefusalKind.PAUSE_DAY else None
        core.throttle.refused(now, exc.retry_after_s, default_hold_s=day)
    elif kind is RefusalKind.DEFER_DAY:
        status = "scheduled"
        entry.next_attempt_at = now + (exc.retry_after_s if exc.retry_after_s is not None
                                       else DEFER_DAY_S)
    elif kind is RefusalKind.QUIET_HOURS:
        status, entry.next_attempt_at = "scheduled", _quiet_until(entry, now, exc.retry_after_s)
    elif kind is RefusalKind.QUOTA:
        await _pause_for_quota(core, exc)
    else:  # DNC, NO_CONSENT, STRANGER: this number is not to be called
        if kind is RefusalKind.DNC:
            await _suppress(core, entry, "platform_refusal")
        status = "skipped" if entry.counted_attempts == 0 else "failed"
        entry.error = (f"record {entry.id!r}: the voice server refused to call "
                       f"{entry.record.phone} ({exc.reason.value}: {exc.raw_reason})")
        outcome = Outcome(entry.record, status, exc.reason, entry.attempts,
                          call_id=entry.last_call_id, detail=entry.error)
    await settle_write(core, entry, attempt, status, outcome, now)


async def _pause_for_quota(core: HubCore, exc: DialRefused) -> None:
    """Pause the campaign row (the reason in ``state_changed_by``) and end the run."""
    if core.fatal is not None:
        return  # already paused by an earlier refusal of this run
    watch = core.watch
    what = exc.code or "quota"
    reason = f"{Reason.QUOTA_EXHAUSTED.value}: the voice server's plan quota is spent ({what})"
    by = f"{watch.by} ({reason})"
    try:
        now = core.clock.now()
        await campaigns.transition(core.store.engine, watch.id, "pause", now=now, by=by)
        await campaigns.acknowledge(core.store.engine, watch.id, "paused", now=now, by=watch.by)
        watch.state, watch.changed_by = "paused", by
    except campaigns.CampaignStateError as exc_state:  # cancelled meanwhile: keep that
        log.warning("campaign not paused", campaign=watch.id, error=str(exc_state))
    error = QuotaExhausted(
        f"campaign {watch.id!r} paused ({reason}); the records not dialled stay pending: "
        f"when the plan has quota again, run `dispatch campaign resume {watch.id}` and the "
        "same command again", campaign=watch.id)
    error.__cause__ = exc
    log.error("campaign paused: quota exhausted", campaign=watch.id, code=what)
    core.fail(error)


async def _suppress(core: HubCore, entry: RecordEntry, source: str) -> None:
    """Put the number on the internal list: at once in memory, durably via the sink."""
    phone = entry.record.phone
    core.suppressed.add(phone)
    sink = core.opt_out_sink
    if sink is None:
        log.warning("no opt-out sink: the number is suppressed for this run only",
                    record_id=entry.id, source=source)
        return
    try:
        # the sink may look the record up: let it see its deferred "in call" state
        await core.store.flush()
        await sink(phone, core.watch.id, entry.id, source)
    except Exception as exc:  # the outcome must still be settled; the run keeps it suppressed
        log.error("opt-out not saved", record_id=entry.id, source=source, error=str(exc))


async def note_opt_out(core: HubCore, entry: RecordEntry, attempt: AttemptState) -> bool:
    """Before an answered call's outcome is settled: True (and the number suppressed)
    when the callee opted out (an ``opt_out`` tool result or a ``do_not_call``
    disposition)."""
    if not is_opt_out(attempt.tool_results or (), attempt.disposition):
        return False
    log.info("callee opted out during the call", record_id=entry.id, call_id=attempt.call_id)
    await _suppress(core, entry, "opt_out")
    return True


async def skip_suppressed(core: HubCore, entries: list[RecordEntry]) -> list[RecordEntry]:
    """At claim time: skip (``dnc``, not dialled) the records whose number was put on
    the internal list during this run; returns the others."""
    if not core.suppressed:
        return entries
    keep = [e for e in entries if e.record.phone not in core.suppressed]
    if len(keep) == len(entries):
        return entries
    now = core.clock.now()
    ops, outcomes = [], []
    for entry in entries:
        if entry.record.phone not in core.suppressed:
            continue
        status = "skipped" if entry.counted_attempts == 0 else "failed"
        entry.last_reason, entry.next_attempt_at = Reason.DNC.value, None
        entry.error = (f"record {entry.id!r}: {entry.record.phone} was put on the internal "
                       "do-not-call list during this run")
        core.book.set_status(entry, status)
        core.queue.release_phone(entry.record.phone)
        outcome = Outcome(entry.record, status, Reason.DNC, entry.attempts,
                          call_id=entry.last_call_id, detail=entry.error)
        ops += [entry.update_op(now), *core.terminal_ops(outcome, entry.source)]
        outcomes.append((outcome, entry.strategy))
    await core.store.write(ops)
    for outcome, strategy in outcomes:
        core.notifier.terminal(outcome, strategy)
    core.check_idle()
    return keep
