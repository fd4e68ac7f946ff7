"""The admission step inside the cluster claim (issue 9 on a shared PostgreSQL).

In cluster mode no process holds the records in memory, so the dial-time decision
(calling hours in the callee's zone, do-not-call lists with the internal one, the
per-phone and per-campaign caps: :class:`~dispatch.hub.admission.HubCompliance`)
runs on the candidate rows **inside the claim's transaction**, before the
compare-and-set. One round (:func:`admit_round`), after the tokens and slots are held:

1. the due candidates are locked (``FOR UPDATE SKIP LOCKED``, as without compliance);
2. their phones are locked for the decision (``pg_try_advisory_xact_lock``, never
   waited for: a phone another claim is deciding waits for the next claim). A claim
   inserts the attempts it allows before it commits, so with the phone's lock held
   the per-phone cap counts every attempt any node committed: two nodes never both
   allow the last dial a cap leaves. With a campaign cap, the campaign's claims
   decide one at a time (a waited lock taken first in the transaction, see
   :func:`lock_campaign_cap`);
3. the candidates' internal-list entries and recent attempts are read on the claim's
   own connection (an opt-out or an attempt committed by any node is seen);
4. each candidate is decided: *allow* → compare-and-set as before; *defer until T* →
   ``scheduled`` with ``next_attempt_at`` T (hub clock), ``attempts`` unchanged (not an
   attempt), so the candidates query leaves it alone until then; *skip* → terminal
   ``skipped`` with the decision's reason and detail, and the rows of
   ``core.terminal_ops`` (result webhooks) in the same transaction. Every decision is
   stored with its record (``records.decision*``), as the local path stores it, so
   ``status`` and ``report`` show why.

A claim runs a few rounds while candidates are deferred or skipped, so the room its
tokens and slots made is used; what stays unused goes back in the same transaction.
Callbacks and log lines of the decisions come after the commit (:meth:`Admitted.done`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatch.cluster import sql
from dispatch.compliance import Decision, Verdict
from dispatch.hub.admission import BatchAttempts
from dispatch.records import Record
from dispatch.store import compliance as store_compliance
from dispatch.store.ops import KIND_ORDER, OpKind, WriteOp
from dispatch.strategy import Outcome

if TYPE_CHECKING:
    from dispatch.cluster.pg import PgCoordinator
    from dispatch.hub.core import HubCore

__all__ = ["ROUNDS", "Admitted", "admit_round", "lock_campaign_cap"]

#: candidate rounds per claim (each round's deferred and skipped rows leave the due set)
ROUNDS = 4

Candidates = Callable[[int, list[int]], Awaitable[list[Any]]]
Cas = Callable[[list[int]], Awaitable[list[Any]]]


@dataclasses.dataclass(eq=False)
class Admitted:
    """What the admission rounds of one claim did."""

    #: claimed rows (the compare-and-set's ``RETURNING``)
    rows: list[Any] = dataclasses.field(default_factory=list)
    #: ``(record id, phone, decision)`` of the deferred ones, logged after the commit
    deferred: list[tuple[str, str, Decision]] = dataclasses.field(default_factory=list)
    #: ``(outcome, source)`` of the skipped ones, delivered after the commit
    skipped: list[tuple[Outcome, str]] = dataclasses.field(default_factory=list)
    #: ``(phone, compliance time)`` of every dial allowed so far (the caps count them)
    allowed: list[tuple[str, float]] = dataclasses.field(default_factory=list)
    #: candidates already looked at (their phone was being decided elsewhere, or they
    #: were claimed or decided): not taken again by a later round
    seen: list[int] = dataclasses.field(default_factory=list)

    @property
    def decided(self) -> int:
        return len(self.deferred) + len(self.skipped)

    def done(self, core: HubCore) -> None:
        """After the commit: count and log deferrals, deliver the skips' outcomes."""
        compliance = core.compliance
        for record_id, phone, decision in self.deferred:
            compliance.deferral_noted(record_id, phone, decision)
        for outcome, source in self.skipped:
            compliance.skipped += 1
            core.notifier.terminal(outcome, core.book.sources.strategy_of(source))


async def lock_campaign_cap(conn: AsyncConnection, core: HubCore, campaign: str) -> None:
    """With a campaign cap, the campaign's claims decide one at a time: the count of
    its attempts read by one claim includes every other claim's (taken before the
    tokens, so a waiting claim holds nothing)."""
    compliance = core.compliance
    if compliance.enabled and compliance.settings.campaign_cap is not None:
        await conn.execute(sql.LOCK_CAMPAIGN_CAP, {"cls": sql.ADMIT_LOCK_CLASS,
                                                   "campaign": campaign})


def _record(row: Any) -> Record | None:
    try:
        return Record.model_validate({**row.payload, "id": row.id, "phone": row.phone})
    except ValidationError:
        return None  # claimed and closed ``invalid_record`` by the claim (never dialled)


async def admit_round(conn: AsyncConnection, coord: PgCoordinator, core: HubCore, now: float,
                      want: int, out: Admitted, candidates: Candidates, cas: Cas) -> bool:
    """One round: decide up to ``want`` due candidates, claim the allowed ones into
    ``out.rows``. False when no candidate was left to look at."""
    compliance = core.compliance
    rows = await candidates(want, out.seen)  # locked, in due order
    if not rows:
        return False
    out.seen.extend(int(r.pk) for r in rows)
    locked = {str(p) for p in (await conn.execute(sql.LOCK_PHONES, {
        "phones": sorted({str(r.phone) for r in rows}), "cls": sql.ADMIT_LOCK_CLASS})).scalars()}
    rows = [r for r in rows if r.phone in locked]
    if not rows:
        return True
    hits = await store_compliance.dnc_hits(conn, locked, compliance.campaign)
    compliance.note_internal(locked, hits)  # the internal list as this claim read it
    attempts = BatchAttempts(await compliance.attempt_log(conn, locked, now))
    for phone, at_s in out.allowed:  # earlier rounds' attempts are not inserted yet
        attempts.allowed(phone, at_s)
    batch = _Batch()
    for row in rows:
        _decide(core, row, now, attempts, batch, out)
    await _write(conn, coord, batch)
    out.rows.extend(await cas(batch.allow))
    return True


@dataclasses.dataclass(eq=False)
class _Batch:
    """The writes of one round's decisions."""

    allow: list[int] = dataclasses.field(default_factory=list)
    decisions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    defers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skips: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    extra: list[WriteOp] = dataclasses.field(default_factory=list)


def _decide(core: HubCore, row: Any, now: float, attempts: BatchAttempts, batch: _Batch,
            out: Admitted) -> None:
    compliance = core.compliance
    record = _record(row)
    if record is None:
        batch.allow.append(int(row.pk))
        return
    now_s = compliance.time.now(now)
    decision = compliance.decide(row.id, row.phone, record.metadata, now_s, attempts)
    batch.decisions.append(store_compliance.decision_op(source=row.source, id=row.id,
                                                        decision=decision, at_s=now_s).params)
    if decision.verdict is Verdict.ALLOW:
        attempts.allowed(row.phone, now_s)  # the next decisions of the batch count it
        out.allowed.append((row.phone, now_s))
        batch.allow.append(int(row.pk))
    elif decision.verdict is Verdict.DEFER:
        assert decision.until_s is not None
        next_at = max(now, compliance.time.to_hub(decision.until_s, now))
        batch.defers.append({"pk": row.pk, "next_at": next_at, "now": now})
        out.deferred.append((row.id, row.phone, decision))
    else:
        outcome = compliance.skip_outcome(record, int(row.attempts), decision)
        batch.skips.append({"pk": row.pk, "reason": outcome.reason.value,
                            "error": decision.detail or None, "now": now})
        batch.extra.extend(core.terminal_ops(outcome, row.source))
        out.skipped.append((outcome, row.source))


async def _write(conn: AsyncConnection, coord: PgCoordinator, batch: _Batch) -> None:
    if batch.defers:
        await conn.execute(sql.DEFER_RECORD, batch.defers)
    if batch.skips:
        await conn.execute(sql.SKIP_RECORD, batch.skips)
    if batch.decisions:
        await conn.execute(coord.statements[OpKind.UPDATE_DECISION], batch.decisions)
    for kind in KIND_ORDER:  # the skips' outbox rows, as a settle writes them
        params = [op.params for op in batch.extra if op.kind is kind]
        if params:
            await conn.execute(coord.statements[kind], params)
