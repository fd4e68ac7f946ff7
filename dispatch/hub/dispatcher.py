"""The dispatch loop: turns ready records into dials at the allowed pace.

Event-driven: it sleeps only until the next thing that can change its answer
(a call ending, new records, a rate token, a retry coming due) and dials as soon
as a slot and a token are both free. Each batch of claims is committed (records
``dialing``, attempt rows inserted) before any of its dial frames leaves.
"""

from __future__ import annotations

import anyio

from dispatch.hub.attempt import run_attempt
from dispatch.hub.core import HubCore
from dispatch.hub.state import AttemptState, RecordEntry

__all__ = ["dispatch_loop", "next_wake_at"]


def next_wake_at(core: HubCore, now: float) -> float | None:
    """When the loop must look again without being signalled (``None``: only on a signal)."""
    deadlines: list[float] = []
    due = core.queue.next_due_at()
    if due is not None:
        deadlines.append(due)
    if core.queue.ready_count and core.gate.available() > 0 and core.window.available(now) <= 0:
        deadlines.append(core.window.next_allowed_at(now))
    return min(deadlines) if deadlines else None


async def dispatch_loop(core: HubCore) -> None:
    """Run until cancelled (the hub's control scope)."""
    while True:
        now = core.clock.now()
        core.queue.promote_due(now)
        room = min(core.gate.available(), core.window.available(now), core.options.claim_batch_size)
        if room > 0 and core.queue.ready_count:
            record_ids = core.queue.take(room, core.phone_of)
            if record_ids:
                # a claim that was submitted must be launched: never leave it half-done
                with anyio.CancelScope(shield=True):
                    await _claim_and_launch(core, [core.book.entries[r] for r in record_ids])
                continue
        await core.dispatch_signal.wait(core.clock, next_wake_at(core, now))


async def _claim_and_launch(core: HubCore, entries: list[RecordEntry]) -> None:
    now = core.clock.now()
    attempts: list[AttemptState] = []
    ops = []
    for entry in entries:
        entry.attempts += 1
        entry.next_attempt_at = None
        core.book.set_status(entry, "dialing")
        attempt = AttemptState(
            record_id=entry.id, attempt_no=entry.attempts, phone=entry.record.phone, claimed_at=now,
            source=entry.source,
        )
        attempts.append(attempt)
        ops += [entry.update_op(now), attempt.insert_op(core.run_id)]
    core.gate.acquire(len(entries))
    await core.store.write(ops)
    dialed_at = core.clock.now()
    core.window.record(dialed_at, len(entries))
    assert core.calls_tg is not None
    for entry, attempt in zip(entries, attempts, strict=True):
        attempt.dialed_at = dialed_at
        core.book.live_attempts[entry.key] = attempt
        core.calls_tg.start_soon(run_attempt, core, entry, attempt, name=f"dial {entry.id}")
