"""The dispatch loop: turns ready records into dials at the allowed pace.

Event-driven: it sleeps only until the next thing that can change its answer
(a call ending, new records, a rate token, a retry coming due) and dials as soon
as a slot and a token are both free. Each batch of claims is committed (records
``dialing``, attempt rows inserted) before any of its dial frames leaves.

A claim reserves one rate token per dial (:class:`~dispatch.hub.limiter.DialPacer`);
the dialer spends it on the hub's clock right before it writes the frame, so the
window is stamped when the dial really leaves, not when its batch committed. When the
rate binds, the next dials are claimed ahead (``claim_lead_s`` before their tokens
free): their commit is done by the time the window lets them leave, and each waits
for its token's instant (``DialToken.not_before``) before it dials.
"""

from __future__ import annotations

import anyio

from dispatch.hub.attempt import run_attempt
from dispatch.hub.campaign_state import admission_open, until_next_read_s
from dispatch.hub.core import HubCore
from dispatch.hub.limiter import DialToken
from dispatch.hub.refusals import skip_suppressed
from dispatch.hub.state import AttemptState, RecordEntry

__all__ = ["dispatch_loop", "next_wake_at"]


def next_wake_at(core: HubCore, now: float) -> float | None:
    """When the loop must look again without being signalled (``None``: only on a signal)."""
    deadlines: list[float] = []
    due = core.queue.next_due_at()
    if due is not None:
        deadlines.append(due)
    opening = core.compliance.next_wake_at(now)  # deferred records
    if opening is not None:
        deadlines.append(opening)
    lead = core.claim_lead_s
    if (core.queue.ready_count and core.gate.available() > 0
            and core.pace.available_ahead(now, lead) <= 0):
        deadlines.append(core.pace.next_allowed_at(now) - lead)  # claim-ahead
    reserved = core.pace.reserved  # the pace the platform's refusals allow
    if core.queue.ready_count and core.throttle.available(now, reserved) <= 0:
        deadlines.append(core.throttle.next_allowed_at(now, reserved))
    return min(deadlines) if deadlines else None


async def dispatch_loop(core: HubCore) -> None:
    """Run until cancelled (the hub's control scope)."""
    while True:
        await core.notifier.room()  # slow callbacks: no new claim until they catch up
        admitting = await admission_open(core)  # paused/cancelled: no claim from here on
        now = core.clock.now()
        if core.coordinator.shared:  # cluster: the database grants the claims
            await _cluster_step(core, admitting, now)
            continue
        core.queue.promote_due(now)
        core.compliance.release_due(core, now)
        room = min(core.gate.available(), core.pace.available_ahead(now, core.claim_lead_s),
                   core.options.claim_batch_size,
                   core.throttle.available(now, core.pace.reserved))  # throttle
        if admitting and room > 0 and core.queue.ready_count and not core.stopping:
            record_ids = core.queue.take(room, core.phone_of)
            if record_ids:
                # a claim that was submitted must be launched: never leave it half-done
                with anyio.CancelScope(shield=True):
                    entries = [core.book.entries[r] for r in record_ids]
                    entries = await skip_suppressed(core, entries)  # opted out
                    # allow -> claim; defer/skip are settled by admit()
                    entries = await core.compliance.admit(core, entries)
                    if entries:
                        await _claim_and_launch(core, entries)
                continue
        # simulated sandbox time skips a wait only deferrals impose
        if admitting and core.compliance.jump_idle(core, now):
            continue
        with anyio.move_on_after(until_next_read_s(core)):  # re-read the campaign's state
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
    # before the await: nothing else may take them; a token claimed ahead carries the
    # instant its frame may leave
    tokens = core.pace.reserve(len(entries), now)
    try:
        await core.store.write(ops)
    except BaseException:
        for token in tokens:
            token.release()  # nothing of this batch is dialled
        raise
    _start_calls(core, list(zip(entries, attempts, strict=True)), tokens)


def _start_calls(core: HubCore, claimed: list[tuple[RecordEntry, AttemptState]],
                 tokens: list[DialToken]) -> None:
    """One call task per durably claimed attempt, each with its reserved rate token."""
    assert core.calls_tg is not None
    for (entry, attempt), token in zip(claimed, tokens, strict=True):
        core.book.live_attempts[entry.key] = attempt
        core.calls_tg.start_soon(run_attempt, core, entry, attempt, token,
                                 name=f"dial {entry.id}")


async def _cluster_step(core: HubCore, admitting: bool, now: float) -> None:
    """Cluster mode: claim what the database grants (a global token and slot each),
    or wait for a wake-up (a settle, a NOTIFY, the poll floor)."""
    room = min(core.gate.available(), core.pace.available(now), core.options.claim_batch_size,
               core.throttle.available(now, core.pace.reserved))  # the platform's refusals
    if admitting and room > 0 and not core.stopping:
        with anyio.CancelScope(shield=True):  # a granted claim must be launched
            grants = await core.coordinator.claim(core, int(room))
            if grants:
                _launch(core, grants)
                return
    deadline = now + core.coordinator.claim_retry_s()
    with anyio.move_on_after(until_next_read_s(core)):
        await core.dispatch_signal.wait(core.clock, deadline)


def _launch(core: HubCore, grants: list[tuple[RecordEntry, AttemptState]]) -> None:
    core.gate.acquire(len(grants))
    for entry, _ in grants:
        core.book.add(entry)
    _start_calls(core, grants, core.pace.reserve(len(grants)))
