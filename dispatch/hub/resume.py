"""Starting where the last run stopped, and recovering from a crash.

Records left ``dialing`` or ``in_call`` had a dial on the wire when the previous
process died. Their current attempt is closed with reason ``interrupted``:

- answered (``in_call``): never re-dialled; ``completed`` with reason ``interrupted``;
- not answered: through the retry policy for ``interrupted`` (a delay, never an
  immediate redial), or ``failed`` once the lifetime cap is reached.

Dials of earlier runs in the last 60 s (by ``dialed_at``, else ``claimed_at``) seed
the rate window, so a restart never starts a second burst inside the same minute.
A stored record whose payload no longer validates is closed (``skipped``, or
``failed`` when it was dialled) with reason ``invalid_record`` instead of staying
active forever.
"""

from __future__ import annotations

import dataclasses

from pydantic import ValidationError

from dispatch.hub.core import HubCore
from dispatch.hub.state import AttemptState, RecordEntry
from dispatch.log import get_logger
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.store import TERMINAL_STATUSES, StoredAttempt, StoredRecord, WriteOp
from dispatch.strategy import Outcome

__all__ = ["resume"]

log = get_logger("dispatch.hub")

_INTERRUPTED_NOTE = "the hub stopped (crash or kill) while this attempt was live"


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


async def resume(core: HubCore) -> None:
    """Load known ids and unfinished records; settle interrupted attempts."""
    store = core.store
    core.book.known |= await store.known_ids()
    counts = await store.counts()
    for status in TERMINAL_STATUSES:
        core.book.count_terminal(status, counts.get(status, 0))
    rows = await store.load_active()
    live_ids = [row.id for row in rows if row.status in ("dialing", "in_call")]
    attempts = {a.record_id: a for a in await store.latest_attempts(live_ids)}
    now = core.clock.now()
    # dials of earlier runs (a crashed one included) still count against the rate
    core.window.preload(await store.recent_dial_starts(now - core.window.window_s))
    ops: list[WriteOp] = []
    outcomes: list[tuple[Outcome, RecordEntry]] = []
    for row in rows:
        record = _rebuild(row)
        if record is None:
            outcomes.append(_give_up(core, row, attempts.get(row.id), now, ops))
            continue
        entry = RecordEntry(
            record, core.strategy_by_name.get(row.strategy), row.strategy, row.status,
            attempts=row.attempts, last_reason=row.last_reason, last_call_id=row.last_call_id,
            next_attempt_at=row.next_attempt_at, disposition=row.disposition, error=row.error,
        )
        core.book.add(entry)
        if row.status in ("dialing", "in_call"):
            outcome = _recover(core, entry, attempts.get(row.id), now, ops)
            if outcome is not None:
                outcomes.append((outcome, entry))
        elif entry.next_attempt_at is not None:
            core.queue.add_timed(entry.id, entry.next_attempt_at)
        else:
            core.queue.add_ready(entry.id)
    if ops:
        await store.write(ops)
        log.warning("recovered interrupted attempts", count=len(live_ids))
    for outcome, entry in outcomes:
        core.notifier.terminal(outcome, entry.strategy)


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
        record, core.strategy_by_name.get(row.strategy), row.strategy, status,
        attempts=row.attempts, last_reason=Reason.INVALID_RECORD.value,
        last_call_id=row.last_call_id, disposition=row.disposition,
        error=f"record {row.id!r}: stored payload no longer valid; not dialled again",
    )
    core.book.known.add(row.id)
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
    core: HubCore, entry: RecordEntry, row: StoredAttempt | None, now: float, ops: list[WriteOp]
) -> Outcome | None:
    answered = entry.status == "in_call" or (row is not None and row.answered_at is not None)
    entry.last_reason = Reason.INTERRUPTED.value
    if row is not None:
        attempt = _attempt_state(row)
        attempt.ended_at = now
        attempt.reason = attempt.raw_reason = Reason.INTERRUPTED.value
        attempt.note_error(_INTERRUPTED_NOTE)
        ops.append(attempt.update_op())
        entry.last_call_id = attempt.call_id or entry.last_call_id
    if answered:
        core.book.set_status(entry, "completed")
        entry.next_attempt_at = None
        ops.append(entry.update_op(now))
        return Outcome(entry.record, "completed", Reason.INTERRUPTED, entry.attempts,
                       call_id=entry.last_call_id)
    delay_s = core.options.retry_policy.next_delay_s(
        Reason.INTERRUPTED, answered=False, attempts=entry.attempts,
        retry_attempts=core.options.retry_attempts,
    )
    if delay_s is None:
        entry.next_attempt_at = None
        entry.error = _INTERRUPTED_NOTE
        core.book.set_status(entry, "failed")
        ops.append(entry.update_op(now))
        return Outcome(entry.record, "failed", Reason.INTERRUPTED, entry.attempts,
                       call_id=entry.last_call_id, detail=_INTERRUPTED_NOTE)
    entry.next_attempt_at = now + delay_s
    core.book.set_status(entry, "scheduled")
    core.queue.add_timed(entry.id, entry.next_attempt_at)
    ops.append(entry.update_op(now))
    return None
