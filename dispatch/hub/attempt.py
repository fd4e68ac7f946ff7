"""One dial, from the committed claim to a settled record."""

from __future__ import annotations

import functools
import json
from typing import Any

import anyio

from dispatch.hub.campaign import STOP_AFTER, is_campaign_wide
from dispatch.hub.core import HubCore
from dispatch.hub.limiter import DialToken
from dispatch.hub.refusals import note_opt_out, settle_refusal
from dispatch.hub.state import AttemptState, RecordEntry
from dispatch.hub.waiting import DeadlinePassed, call_before
from dispatch.log import get_logger
from dispatch.reasons import Reason
from dispatch.sdk.errors import (
    ConfigurationError,
    DialFailed,
    DialRefused,
    PinecallConnectionError,
)
from dispatch.sdk.reasons import normalize_reason
from dispatch.store import StoreClosed, WriteOp
from dispatch.strategy import Outcome

__all__ = ["run_attempt", "settle_write"]

log = get_logger("dispatch.hub")

#: how long a shutdown path waits for its final write
_FINAL_WRITE_S = 10.0
#: past ``dial_timeout_s``, how long the hub still waits for the dialer to return
DIAL_GRACE_S = 30.0
#: how long a hangup of an abandoned dial may take (real seconds)
_HANGUP_S = 5.0
#: how long a dial's "dialing" and "in call" states may wait (real seconds) for the
#: next commit that cannot wait (a claim, a settle) to ride with, instead of costing a
#: transaction each. Safe for crash recovery: the attempt row is committed before the
#: frame leaves, and a restart finds the call by the dial's metadata without its id.
STATE_WRITE_DEFER_S = 0.5


async def run_attempt(
    core: HubCore, entry: RecordEntry, attempt: AttemptState, token: DialToken
) -> None:
    """Dial, follow the call, settle the record. Cancellation settles it as interrupted.

    ``token`` is the rate token reserved by the claim: the dialer spends it when the
    frame leaves, or releases it when the frame never did."""
    try:
        call = await _dial(core, entry, attempt, token)
        if call is not None:
            await _converse(core, entry, attempt, call)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            await _finish_interrupted(core, entry, attempt)
        raise


def _dial_metadata(entry: RecordEntry, attempt: AttemptState) -> dict[str, Any]:
    return {
        **entry.record.metadata,
        "dispatch_source": entry.source,
        "dispatch_record_id": entry.id,
        "dispatch_attempt_no": attempt.attempt_no,
    }


async def _dial(
    core: HubCore, entry: RecordEntry, attempt: AttemptState, token: DialToken
) -> Any | None:
    try:
        return await _dial_with(core, entry, attempt, token)
    finally:
        _settle_token(attempt, token)


def _settle_token(attempt: AttemptState, token: DialToken) -> None:
    """After the dialer returned or raised: a token it neither spent nor released
    (a dialer that ignores ``rate_token``) is counted now, since the hub cannot know
    whether the frame left; ``dialed_at`` is the send instant (``None``: never sent)."""
    if token.pending:
        token.spend()
    attempt.dialed_at = token.spent_at


async def _dial_with(
    core: HubCore, entry: RecordEntry, attempt: AttemptState, token: DialToken
) -> Any | None:
    record = entry.record
    kwargs: dict[str, Any] = {}
    if core.options.detect_turn_end:
        kwargs["detect_turn_end"] = True
    dial = functools.partial(
        core.agent.dial,
        record.phone,
        from_=core.options.from_,
        greeting=record.greeting,
        metadata=_dial_metadata(entry, attempt),
        config=record.config or None,
        timeout_s=core.options.dial_timeout_s,
        on_dialing=functools.partial(_on_dialing, core, entry, attempt, token),
        rate_token=token,
        **kwargs,
    )
    if token.not_before is not None:  # claimed ahead: leave when the window frees it
        while (wait_s := token.not_before - core.clock.now()) > 0:
            await core.clock.sleep(wait_s)
    # a dialer that never returns must not hold a slot, a phone and the record forever
    deadline = core.clock.now() + core.options.dial_timeout_s + DIAL_GRACE_S
    await core.coordinator.before_send(attempt)  # cluster: a fresh global rate token
    try:
        call = await call_before(core.clock, deadline, dial)
        core.campaign.ok()
        core.throttle.accepted()
        return call
    except DeadlinePassed:
        await _abandon_dial(core, entry, attempt)
    except Exception as exc:
        await _dial_raised(core, entry, attempt, exc)
    return None


async def _dial_raised(
    core: HubCore, entry: RecordEntry, attempt: AttemptState, exc: Exception
) -> None:
    """Settle a dial that raised: an outcome of the record, or a campaign error."""
    if isinstance(exc, DialRefused):  # the platform's own refusal, not an attempt
        await settle_refusal(core, entry, attempt, exc)
        return
    core.throttle.accepted()
    if is_campaign_wide(exc) and entry.uncounted < STOP_AFTER:
        await _campaign_failure(core, entry, attempt, exc)
        return
    core.campaign.ok()
    if isinstance(exc, ConfigurationError):  # this record alone, again and again
        await finish_unanswered(core, entry, attempt, Reason.ERROR, "configuration",
                                error=f"{type(exc).__name__}: {exc}", exc=exc)
    elif isinstance(exc, DialFailed):
        reason = exc.reason
        if core.stopping and reason is Reason.CANCELED:
            reason = Reason.INTERRUPTED  # we hung it up to stop: not the callee's doing
        await finish_unanswered(core, entry, attempt, reason, exc.raw_reason, call_id=exc.call_id)
    elif isinstance(exc, PinecallConnectionError):
        await finish_unanswered(
            core, entry, attempt, Reason.DISCONNECTED, type(exc).__name__, error=str(exc), exc=exc
        )
    else:
        log.exception("dial raised", record_id=entry.id, error=str(exc))
        text = f"{type(exc).__name__}: {exc}"
        await finish_unanswered(
            core, entry, attempt, Reason.ERROR, "exception", error=text, exc=exc
        )


async def _campaign_failure(
    core: HubCore, entry: RecordEntry, attempt: AttemptState, exc: Exception
) -> None:
    """A dial failed for a reason every dial shares: the record goes back to ``pending``
    (this attempt does not count), and the campaign stops once the pattern is clear."""
    text = f"{type(exc).__name__}: {exc}"
    log.error("dial refused for the whole campaign", record_id=entry.id, error=text,
              in_a_row=core.campaign.streak + 1)
    now = core.clock.now()
    attempt.ended_at = now
    attempt.reason, attempt.raw_reason = Reason.ERROR.value, "campaign_error"
    attempt.note_error(text)
    entry.uncounted += 1
    entry.next_attempt_at = None
    error = core.campaign.failed(exc)
    if error is not None:
        core.fail(error)
    await settle_write(core, entry, attempt, "pending", None, now)


async def _abandon_dial(core: HubCore, entry: RecordEntry, attempt: AttemptState) -> None:
    """The dialer overran its own timeout: hang up what may ring, settle as ``timeout``."""
    log.error("dialer did not return in time", record_id=entry.id, call_id=attempt.call_id)
    if attempt.call is not None:
        try:
            with anyio.move_on_after(_HANGUP_S):
                await attempt.call.hangup()
        except Exception as exc:
            log.warning("hangup failed", record_id=entry.id, error=str(exc))
    waited_s = core.options.dial_timeout_s + DIAL_GRACE_S
    await finish_unanswered(core, entry, attempt, Reason.TIMEOUT, "dial_deadline",
                            error=f"the dialer did not return within {waited_s:g} s")


def _on_dialing(
    core: HubCore, entry: RecordEntry, attempt: AttemptState, token: DialToken, call: Any
) -> None:
    if token.pending:
        token.spend()  # a call id exists: the frame left (a dialer that ignores the token)
    attempt.dialed_at = token.spent_at
    attempt.call = call
    attempt.call_id = call.id
    attempt.dialing_at = core.clock.now()
    entry.last_call_id = call.id
    try:
        ops = [attempt.update_op(), entry.update_op(attempt.dialing_at)]
        ops.extend(op for hook in core.dispatch_ops  # "dispatched" webhooks
                   for op in hook(entry.record, entry.source, call.id, attempt.attempt_no))
        core.store.submit(ops, defer_s=STATE_WRITE_DEFER_S)
    except StoreClosed:
        log.warning("dialing state not saved: store closed", record_id=entry.id)
    core.notifier.dispatched(entry.record, entry.strategy, call)


async def _converse(core: HubCore, entry: RecordEntry, attempt: AttemptState, call: Any) -> None:
    now = core.clock.now()
    attempt.call = call
    attempt.call_id = call.id
    attempt.answered_at = now
    entry.last_call_id = call.id
    core.book.set_status(entry, "in_call")
    if entry.record.prompt_vars:
        try:
            await call.set_prompt_vars(dict(entry.record.prompt_vars))
        except Exception as exc:
            attempt.note_error(f"set_prompt_vars failed: {exc}")
            log.warning("set_prompt_vars failed", record_id=entry.id, error=str(exc))
    try:  # queued, not awaited: the settle behind it in the same writer waits for both
        core.store.submit([entry.update_op(now), attempt.update_op()],
                          defer_s=STATE_WRITE_DEFER_S)
    except StoreClosed:
        log.warning("answered state not saved: store closed", record_id=entry.id)
    await call.wait_ended()
    await _finish_answered(core, entry, attempt, call)


def _json_safe(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return None


def _end_reason(call: Any) -> tuple[Reason, str | None]:
    raw = getattr(call, "end_reason_raw", None)
    reason = getattr(call, "end_reason", None)
    if isinstance(reason, Reason):
        return reason, raw if raw is not None else reason.value
    return normalize_reason(reason if isinstance(reason, str) else raw), raw


async def _finish_answered(
    core: HubCore, entry: RecordEntry, attempt: AttemptState, call: Any
) -> None:
    now = core.clock.now()
    reason, raw = _end_reason(call)
    if attempt.cut_by_stop and reason is Reason.HANGUP:
        reason = Reason.INTERRUPTED  # we hung up to stop; the raw reason keeps the wire word
    attempt.ended_at = now
    attempt.reason, attempt.raw_reason = reason.value, raw
    attempt.duration_s = call.duration_s
    attempt.tool_results = _json_safe(list(call.tool_results or [])) or None
    attempt.disposition = call.disposition
    entry.last_reason = reason.value
    entry.disposition = call.disposition
    entry.next_attempt_at = None
    await note_opt_out(core, entry, attempt)  # on the DNC list before settling
    outcome = _outcome(entry, "completed", reason, attempt)
    await settle_write(core, entry, attempt, "completed", outcome, now)


async def finish_unanswered(
    core: HubCore,
    entry: RecordEntry,
    attempt: AttemptState,
    reason: Reason,
    raw_reason: str | None,
    *,
    call_id: str | None = None,
    error: str | None = None,
    exc: BaseException | None = None,
) -> None:
    """Settle a dial that was never answered: retry later or give the record up."""
    now = core.clock.now()
    attempt.ended_at = now
    attempt.reason, attempt.raw_reason = reason.value, raw_reason
    attempt.call_id = attempt.call_id or call_id
    if error:
        attempt.note_error(error)
    entry.last_reason = reason.value
    entry.last_call_id = attempt.call_id or entry.last_call_id
    delay_s = core.options.retry_policy.next_delay_s(
        reason, answered=False, attempts=entry.counted_attempts,
        retry_attempts=core.options.retry_attempts,
    )
    if delay_s is None:
        entry.next_attempt_at = None
        entry.error = error or f"last attempt: {reason.value}"
        outcome = _outcome(entry, "failed", reason, attempt, detail=error)
        await settle_write(core, entry, attempt, "failed", outcome, now, exc)
    else:
        entry.next_attempt_at = now + delay_s
        await settle_write(core, entry, attempt, "scheduled", None, now)


async def _finish_interrupted(core: HubCore, entry: RecordEntry, attempt: AttemptState) -> None:
    """The attempt's task was cancelled (hard stop): settle as ``interrupted``."""
    if attempt.ended_at is not None:
        return
    attempt.note_error("stopped while live")
    if attempt.answered_at is None:
        await finish_unanswered(core, entry, attempt, Reason.INTERRUPTED, "stopped")
        return
    now = core.clock.now()
    attempt.ended_at = now
    attempt.reason = attempt.raw_reason = Reason.INTERRUPTED.value
    entry.last_reason = Reason.INTERRUPTED.value
    outcome = _outcome(entry, "completed", Reason.INTERRUPTED, attempt)
    await settle_write(core, entry, attempt, "completed", outcome, now)


def _outcome(
    entry: RecordEntry,
    status: str,
    reason: Reason,
    attempt: AttemptState,
    detail: str | None = None,
) -> Outcome:
    return Outcome(
        record=entry.record,
        status=status,
        reason=reason,
        attempts=entry.attempts,
        call_id=attempt.call_id,
        disposition=attempt.disposition,
        detail=detail,
    )


async def settle_write(
    core: HubCore,
    entry: RecordEntry,
    attempt: AttemptState,
    status: str,
    outcome: Outcome | None,
    now: float,
    exc: BaseException | None = None,
) -> None:
    """Free the slot and phone at once, persist, then notify and re-check idleness."""
    core.book.live_attempts.pop(entry.key, None)
    if attempt.dialed_at is not None and attempt.call_id is not None:
        core.slot_times.add(now - attempt.dialed_at)  # a call that really held the slot
    core.gate.release()
    core.queue.release_phone(entry.record.phone)
    core.book.set_status(entry, status)
    if status == "scheduled" and entry.next_attempt_at is not None:
        core.queue.add_timed(entry.key, entry.next_attempt_at)
    elif status == "pending" and not core.stopping:
        core.queue.add_ready(entry.key)  # behind the others: "in a row" spans records
    core.dispatch_signal.set()
    core.ended_signal.set()
    ops = [entry.update_op(now), attempt.update_op()]
    if outcome is not None:  # extension rows (outbox) in the outcome's own commit
        ops.extend(core.terminal_ops(outcome, entry.source, attempt.duration_s))
    if core.coordinator.shared:  # cluster: slot and claim freed with the settle
        with anyio.CancelScope(shield=True), anyio.move_on_after(_FINAL_WRITE_S):
            await core.coordinator.settle(core, entry, attempt, ops)
    else:
        await _durable(ops, core)
    if outcome is not None:
        core.notifier.terminal(outcome, entry.strategy, exc)
    core.check_idle()


async def _durable(ops: list[WriteOp], core: HubCore) -> None:
    """Write through the group writer; after it stopped (hard shutdown), directly."""
    with anyio.move_on_after(_FINAL_WRITE_S, shield=True):
        try:
            ticket = core.store.submit(ops)
        except StoreClosed:
            await core.store.write_now(ops)
            return
        await ticket.wait()
