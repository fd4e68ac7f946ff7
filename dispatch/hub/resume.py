"""Starting where the last run stopped, and recovering from a crash.

Records left ``dialing`` or ``in_call`` had a dial on the wire when the previous
process died. When the dialer can look calls up (``dispatch.hub.reconcile``), the
voice server is asked what became of each one first (a live call is waited for, at
most :data:`RECONCILE_WAIT_S`), and the attempt is settled with the real outcome:

- answered: ``completed`` with the call's end reason; never re-dialled;
- ended unanswered: through the retry policy for that reason (busy, no_answer...);
- the server cannot say (no call id and no matching dial, a failing lookup, a call
  still ringing at the deadline): reason ``unknown``, ``failed`` and not re-dialled,
  unless ``RetryPolicy(retry_unknown=True)`` (then as ``interrupted``).

A dialer without the lookup (``MemoryDialer``) keeps the plain rule: the attempt
ends ``interrupted``; answered (``in_call``) → ``completed``; otherwise the retry
policy for ``interrupted`` (a delay, never an immediate redial), or ``failed`` at
the lifetime cap. What the database knows wins over the server: an attempt stored
as answered is never re-dialled.

Dials of earlier runs in the last 60 s (by ``dialed_at``, else ``claimed_at``) seed
the rate window, so a restart never starts a second burst inside the same minute.
Requeued records not yet dialled in their new round are held until the first
poll round (:mod:`dispatch.hub.requeued`). Dials stopped by a campaign-wide error
stay uncounted across restarts. A stored record whose payload no longer validates
is closed (``skipped``, or ``failed`` when it was dialled) with reason
``invalid_record`` instead of staying active forever.

Start-up reads only what is still in play (active records, the live ones' latest
attempts, the last minute's dial starts, counts by status): never the ids of
finished records, which the poll loop asks the database about when a source
returns them (:func:`dispatch.hub.polling.known_ids`).
"""

from __future__ import annotations

import dataclasses

from pydantic import ValidationError

from dispatch.hub.core import HubCore
from dispatch.hub.reconcile import Probe, Verdict, ask_all
from dispatch.hub.state import AttemptState, RecordEntry, SourceMap
from dispatch.log import get_logger
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.store import TERMINAL_STATUSES, RecordKey, StoredAttempt, StoredRecord, WriteOp
from dispatch.strategy import Outcome

__all__ = ["RECONCILE_WAIT_S", "resume"]

#: how long a restart waits, in total, for calls that are still live on the server
RECONCILE_WAIT_S = 90.0

log = get_logger("dispatch.hub")

_INTERRUPTED_NOTE = "the hub stopped (crash or kill) while this attempt was live"
_UNKNOWN_NOTE = ("outcome unknown after a restart; not redialled "
                 "(RetryPolicy(retry_unknown=True) would redial it)")
#: the settlement when the dialer cannot look calls up (the plain rule)
_LEGACY = Verdict("unknown", Reason.INTERRUPTED, Reason.INTERRUPTED.value, note=_INTERRUPTED_NOTE)


def _rebuild(row: StoredRecord) -> Record | None:
    try:
        return Record.model_validate({**row.payload, "id": row.id, "phone": row.phone})
    except ValidationError as exc:
        log.error("stored record cannot be rebuilt", record_id=row.id, error=str(exc))
        return None


def _attempt_state(row: StoredAttempt) -> AttemptState:
    fields = {f.name: getattr(row, f.name) for f in dataclasses.fields(StoredAttempt)}
    fields.pop("run_id")
    return AttemptState(**fields)


async def map_sources(core: HubCore) -> None:
    """Which strategy owns each stored source: its key, and -- for rows stored before
    source keys existed -- its name (one index probe per such name)."""
    sources = SourceMap(core.strategies)
    for name in sources.legacy_names():
        if await core.store.has_source(name):
            sources.adopt_legacy(name)
    core.book.sources = sources


def _key(row: StoredRecord) -> RecordKey:
    return (row.source, row.id)


async def resume(core: HubCore) -> None:
    """Load unfinished records (not the finished ones); settle interrupted attempts."""
    store = core.store
    await map_sources(core)
    counts = await store.counts()
    for status in TERMINAL_STATUSES:
        core.book.count_terminal(status, counts.get(status, 0))
    if core.coordinator.shared:
        return  # cluster: claims come from the database; expired ones go to its sweeper
    rows = await store.load_active()
    requeued = await store.requeued_pending_keys()
    uncounted = await store.uncounted_attempts()
    live_keys = [_key(row) for row in rows if row.status in ("dialing", "in_call")]
    attempts = {(a.source, a.record_id): a for a in await store.latest_attempts(live_keys)}
    verdicts = await ask_all(core.agent, _probes(rows, attempts), core.clock, RECONCILE_WAIT_S)
    now = core.clock.now()
    # dials of earlier runs (a crashed one included) still count against the rate
    core.window.preload(await store.recent_dial_starts(now - core.window.window_s))
    ops: list[WriteOp] = []
    outcomes: list[tuple[Outcome, RecordEntry]] = []
    for row in rows:
        record = _rebuild(row)
        if record is None:
            outcomes.append(_give_up(core, row, attempts.get(_key(row)), now, ops))
            continue
        entry = RecordEntry(
            record, core.book.sources.strategy_of(row.source), row.strategy, row.source,
            row.status, attempts=row.attempts, last_reason=row.last_reason,
            last_call_id=row.last_call_id, next_attempt_at=row.next_attempt_at,
            disposition=row.disposition, error=row.error, uncounted=uncounted.get(_key(row), 0),
        )
        core.book.add(entry)
        if _key(row) in requeued and row.status == "pending":
            core.held[entry.key] = entry  # its source row may have been fixed: see .requeued
        elif row.status in ("dialing", "in_call"):
            verdict = verdicts.get(_key(row)) if verdicts is not None else None
            outcome = _recover(core, entry, attempts.get(_key(row)), now, ops, verdict)
            if outcome is not None:
                ops.extend(core.terminal_ops(outcome, entry.source))
                outcomes.append((outcome, entry))
        elif entry.next_attempt_at is not None:
            core.queue.add_timed(entry.key, entry.next_attempt_at)
        else:
            core.queue.add_ready(entry.key)
    if ops:
        await store.write(ops)
        log.warning("recovered interrupted attempts", count=len(live_keys))
    for outcome, entry in outcomes:
        core.notifier.terminal(outcome, entry.strategy)


def _probes(rows: list[StoredRecord], attempts: dict[RecordKey, StoredAttempt]) -> list[Probe]:
    probes = []
    for row in rows:
        attempt = attempts.get(_key(row))
        if row.status in ("dialing", "in_call") and attempt is not None:
            probes.append(Probe(row.id, attempt.attempt_no, attempt.call_id or row.last_call_id,
                                row.source))
    return probes


def _give_up(
    core: HubCore, row: StoredRecord, attempt_row: StoredAttempt | None, now: float,
    ops: list[WriteOp],
) -> tuple[Outcome, RecordEntry]:
    """A stored record that no longer validates: close it rather than leave it active."""
    record = Record.model_construct(
        id=row.id, phone=row.phone, greeting=None, metadata={}, prompt_vars={}, config={},
        not_before=None, default_region=None,
    )
    status = "failed" if row.attempts else "skipped"
    entry = RecordEntry(
        record, core.book.sources.strategy_of(row.source), row.strategy, row.source, status,
        attempts=row.attempts, last_reason=Reason.INVALID_RECORD.value,
        last_call_id=row.last_call_id, disposition=row.disposition,
        error=f"record {row.id!r}: stored payload no longer valid; not dialled again",
    )
    core.book.known.add(entry.key)
    core.book.count_terminal(status)
    if attempt_row is not None and row.status in ("dialing", "in_call"):
        attempt = _attempt_state(attempt_row)
        attempt.ended_at = now
        attempt.reason = attempt.raw_reason = Reason.INTERRUPTED.value
        attempt.note_error(_INTERRUPTED_NOTE)
        ops.append(attempt.update_op())
    ops.append(entry.update_op(now))
    outcome = Outcome(record, status, Reason.INVALID_RECORD, row.attempts,
                      call_id=row.last_call_id, detail=entry.error)
    return outcome, entry


def _recover(
    core: HubCore, entry: RecordEntry, row: StoredAttempt | None, now: float, ops: list[WriteOp],
    verdict: Verdict | None,
) -> Outcome | None:
    """Settle an attempt the previous run left live (``verdict``: what the server said,
    ``None`` when the dialer cannot look calls up)."""
    v = verdict or _LEGACY
    stored_answered = entry.status == "in_call" or (row is not None and row.answered_at is not None)
    answered = v.kind == "answered" or stored_answered
    if answered and v.kind != "answered":  # the database knows it was answered
        v = dataclasses.replace(v, reason=Reason.INTERRUPTED)
    if row is not None:
        ops.append(_closed_attempt(row, v, now).update_op())
        entry.last_call_id = row.call_id or v.call_id or entry.last_call_id
    entry.last_reason = v.reason.value
    if answered:
        return _settle(core, entry, "completed", v.reason, now, ops)
    policy = core.options.retry_policy
    retry_as = v.reason if v.kind == "unanswered" else None
    if v.kind == "unknown" and (verdict is None or policy.retry_unknown):
        retry_as = Reason.INTERRUPTED
    delay_s = None if retry_as is None else policy.next_delay_s(
        retry_as, answered=False, attempts=entry.attempts,
        retry_attempts=core.options.retry_attempts)
    if delay_s is None:
        if v.kind == "unknown":
            entry.error = v.note if verdict is None else f"{v.note}; {_UNKNOWN_NOTE}"
        return _settle(core, entry, "failed", v.reason, now, ops)
    entry.next_attempt_at = now + delay_s
    core.book.set_status(entry, "scheduled")
    core.queue.add_timed(entry.key, entry.next_attempt_at)
    ops.append(entry.update_op(now))
    return None


def _closed_attempt(row: StoredAttempt, v: Verdict, now: float) -> AttemptState:
    attempt = _attempt_state(row)
    attempt.call_id = attempt.call_id or v.call_id
    attempt.answered_at = attempt.answered_at or v.answered_at
    attempt.ended_at = v.ended_at or now
    attempt.duration_s = v.duration_s if v.duration_s is not None else attempt.duration_s
    attempt.reason, attempt.raw_reason = v.reason.value, v.raw_reason
    if v.note:
        attempt.note_error(v.note)
    return attempt


def _settle(core: HubCore, entry: RecordEntry, status: str, reason: Reason, now: float,
            ops: list[WriteOp]) -> Outcome:
    entry.next_attempt_at = None
    core.book.set_status(entry, status)
    ops.append(entry.update_op(now))
    return Outcome(entry.record, status, reason, entry.attempts, call_id=entry.last_call_id,
                   detail=entry.error if status == "failed" else None)
