"""Taking over a crashed node's work: expired claims, reconciled before anything is freed.

Run by the holder of ``sweep:<campaign>``. A live record whose claim lease ran out
(its node stopped heartbeating) is first taken over by the sweeper (its lease is
ours now, renewed by our heartbeat), then the voice server is asked what became of
the attempt through the call-log REST API (:func:`dispatch.hub.reconcile.ask_all`,
which waits while the call is still live). Only then is the attempt settled and its
slot freed, in one transaction:

- answered (by the server, or as stored): ``completed``, never redialled;
- ended unanswered: the retry policy for the reason (busy, no_answer...);
- the server cannot say (no call id and no dial carrying the attempt's metadata, a
  failed lookup, still ringing at the deadline): ``failed`` with reason ``unknown``,
  not redialled unless ``RetryPolicy(retry_unknown=True)`` (then as ``interrupted``);
- a dialer without the lookup: ``interrupted`` through the retry policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from dispatch.cluster import sql
from dispatch.hub.reconcile import Probe, Verdict, ask_all
from dispatch.log import get_logger
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.strategy import Outcome

if TYPE_CHECKING:
    from dispatch.cluster.pg import PgCoordinator
    from dispatch.hub.core import HubCore

__all__ = ["settlement", "sweep_once"]

log = get_logger("dispatch.cluster")

_BATCH = 200
_UNKNOWN_NOTE = ("outcome unknown after its node's lease expired; not redialled "
                 "(RetryPolicy(retry_unknown=True) would redial it)")
_NO_LOOKUP = Verdict("unknown", Reason.INTERRUPTED, Reason.INTERRUPTED.value,
                     note="its node stopped while this attempt was live")


def settlement(core: HubCore, verdict: Verdict | None, *, answered_in_db: bool,
               attempts: int, now: float) -> tuple[str, float | None, Reason, str | None]:
    """``(status, next_attempt_at, reason, error)`` for a swept attempt."""
    v = verdict or _NO_LOOKUP
    if v.kind == "answered" or answered_in_db:
        reason = v.reason if v.kind == "answered" else Reason.INTERRUPTED
        return "completed", None, reason, None
    policy = core.options.retry_policy
    retry_as = v.reason if v.kind == "unanswered" else None
    if v.kind == "unknown" and (verdict is None or policy.retry_unknown):
        retry_as = Reason.INTERRUPTED
    delay = None if retry_as is None else policy.next_delay_s(
        retry_as, answered=False, attempts=attempts, retry_attempts=core.options.retry_attempts)
    if delay is None:
        error = f"{v.note}; {_UNKNOWN_NOTE}" if v.kind == "unknown" and verdict else (
            v.note or f"last attempt: {v.reason.value}")
        return "failed", None, v.reason, error
    return "scheduled", now + delay, v.reason, None


async def sweep_once(coord: PgCoordinator, core: HubCore) -> int:
    """Take over, reconcile and settle the expired claims; returns how many."""
    params = {"campaign": coord.campaign, "node": coord.node_id,
              "ttl": coord.options.lease_ttl_s}
    async with coord.engine.begin() as conn:
        await conn.execute(sql.FREE_ORPHAN_SLOTS, params)
        rows = list((await conn.execute(sql.TAKE_EXPIRED, {**params, "n": _BATCH})).all())
        attempts: dict[int, Any] = {}
        for row in rows:
            attempts[row.pk] = (await conn.execute(sql.LATEST_ATTEMPT, {
                "pk": row.pk, "no": row.attempts, "round": row.requeue_count})).first()
    if not rows:
        return 0
    log.warning("taking over expired claims", count=len(rows), node=coord.node_id)
    probes = []
    for row in rows:
        att = attempts[row.pk]
        call_id = (att.call_id if att is not None else None) or row.last_call_id
        probes.append(Probe(row.id, row.attempts, call_id, row.source))
    wait = coord.options.reconcile_wait_hub_s
    verdicts = await ask_all(core.agent, probes, core.clock, wait)
    now = core.clock.now()
    outcomes: list[tuple[Outcome, str]] = []
    async with coord.engine.begin() as conn:
        for row in rows:
            att = attempts[row.pk]
            v = verdicts.get((row.source, row.id)) if verdicts is not None else None
            answered = row.status == "in_call" or (att is not None and att.answered_at)
            status, next_at, reason, error = settlement(
                core, v, answered_in_db=bool(answered), attempts=row.attempts, now=now)
            shown = v or _NO_LOOKUP
            await conn.execute(sql.SETTLE_SWEPT_ATTEMPT, {
                "pk": row.pk, "no": row.attempts, "round": row.requeue_count,
                "ended_at": shown.ended_at or now, "reason": reason.value,
                "raw": shown.raw_reason, "call_id": shown.call_id,
                "answered_at": shown.answered_at, "duration_s": shown.duration_s,
                "note": shown.note})
            await conn.execute(sql.SETTLE_SWEPT_RECORD, {
                "pk": row.pk, "node": coord.node_id, "status": status, "next_at": next_at,
                "reason": reason.value, "call_id": shown.call_id, "error": error, "now": now})
            await conn.execute(sql.FREE_SLOT, {"campaign": coord.campaign, "pk": row.pk})
            if status in ("completed", "failed"):
                outcome = _outcome(row, status, reason, shown.call_id, error)
                if outcome is not None:
                    for op in core.terminal_ops(outcome, str(row.source)):  # outbox rows
                        await conn.execute(coord.statements[op.kind], op.params)
                    outcomes.append((outcome, str(row.source)))
        await coord._notify(conn)
    for outcome, source in outcomes:  # the dead node's callbacks, delivered here
        core.notifier.terminal(outcome, core.book.sources.strategy_of(source))
    return len(rows)


def _outcome(row: Any, status: str, reason: Reason, call_id: str | None,
             error: str | None) -> Outcome | None:
    try:
        record = Record.model_validate({**row.payload, "id": row.id, "phone": row.phone})
    except ValidationError:
        return None  # a payload that no longer validates: nothing to tell a strategy
    return Outcome(record, status, reason, row.attempts, call_id=call_id or row.last_call_id,
                   detail=error if status == "failed" else None)
