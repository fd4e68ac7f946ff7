"""Claiming in cluster mode: rate tokens, then slots, then records, in one transaction.

Order (so a full window costs nothing): take the rate tokens a window old
(``FOR UPDATE SKIP LOCKED``: two nodes never take one token), then free slots, then
(with compliance on) decide the due candidates (:mod:`dispatch.cluster.admit`: defer
and skip them in this transaction), then compare-and-set the due records allowed
(status still ``pending``/``scheduled``, phone not live). Whatever a later step could
not use goes back in the same transaction (a token gets its previous stamp again),
so a claim holds exactly one token of each limit and one slot per record it took, or
nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dispatch.cluster import sql
from dispatch.cluster.admit import ROUNDS, Admitted, admit_round, lock_campaign_cap
from dispatch.hub.state import AttemptState, RecordEntry
from dispatch.log import get_logger
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.store.ops import OpKind

if TYPE_CHECKING:
    from dispatch.cluster.pg import PgCoordinator
    from dispatch.hub.core import HubCore

__all__ = ["Stamps", "claim_batch", "take_tokens"]

log = get_logger("dispatch.cluster")

AttemptKey = tuple[str, str, int]


class Stamps:
    """When (``time.monotonic()``, taken before the claim's transaction began, so no
    later than the database's stamp) each claimed attempt's tokens were stamped."""

    def __init__(self) -> None:
        self._at: dict[AttemptKey, float] = {}

    def put(self, key: AttemptKey, at: float) -> None:
        self._at[key] = at

    def pop(self, key: AttemptKey) -> float | None:
        return self._at.pop(key, None)

    def __len__(self) -> int:
        return len(self._at)


def _limits(core: HubCore, coord: PgCoordinator) -> list[tuple[str, int, float]]:
    """``(kind, cap, token age in real seconds)`` of each rate limit in force."""
    opts, margin = core.options, coord.options.send_margin_hub_s
    out = []
    for kind, cap, window in (("m", opts.max_calls_per_minute, 60.0),
                              ("s", opts.max_calls_per_second, 1.0)):
        if cap:
            out.append((kind, cap, coord.options.real_s(window + opts.pace_margin_s + margin)))
    return out


async def _take(conn: AsyncConnection, campaign: str, kind: str, n: int,
                age: float) -> list[tuple[int, float]]:
    rows = await conn.execute(sql.TAKE_TOKENS, {"campaign": campaign, "kind": kind,
                                                "n": n, "age": age})
    return [(int(row.slot), float(row.previous)) for row in rows.all()]


async def _give_back(conn: AsyncConnection, campaign: str, kind: str,
                     tokens: Sequence[tuple[int, float]]) -> None:
    if tokens:
        await conn.execute(sql.GIVE_BACK_TOKEN, [
            {"campaign": campaign, "kind": kind, "slot": slot, "previous": previous}
            for slot, previous in tokens])


async def _token_wait_s(conn: AsyncConnection, campaign: str, kind: str, age: float) -> float:
    wait = (await conn.execute(sql.NEXT_TOKEN_AT, {"campaign": campaign, "kind": kind,
                                                   "age": age})).scalar()
    return max(0.0, float(wait)) if wait is not None else 0.0


async def take_tokens(coord: PgCoordinator, conn: AsyncConnection,
                      n: int) -> tuple[float | None, float]:
    """One token of every limit for a dial about to leave: ``(stamp, 0)`` when taken
    (``time.monotonic()`` before the statements), else ``(None, real s to wait)``."""
    assert coord._core is not None
    before = time.monotonic()
    taken: list[tuple[str, list[tuple[int, float]]]] = []
    for kind, _cap, age in _limits(coord._core, coord):
        got = await _take(conn, coord.campaign, kind, n, age)
        taken.append((kind, got))
        if not got:
            for k, tokens in taken:
                await _give_back(conn, coord.campaign, k, tokens)
            return None, await _token_wait_s(conn, coord.campaign, kind, age)
    return before, 0.0


async def _cas(conn: AsyncConnection, pks: list[int], params: dict[str, Any]) -> list[Any]:
    """Compare-and-set ``pks`` to ``dialing``; a phone another node made live in the
    meantime (the partial unique index) costs only that record."""
    try:
        async with conn.begin_nested():
            return list((await conn.execute(sql.CLAIM, {**params, "pks": pks})).all())
    except IntegrityError:
        rows: list[Any] = []
        for pk in pks:
            try:
                async with conn.begin_nested():
                    rows += (await conn.execute(sql.CLAIM, {**params, "pks": [pk]})).all()
            except IntegrityError:
                continue
        return rows


def _entry(core: HubCore, row: Any) -> RecordEntry | None:
    try:
        record = Record.model_validate({**row.payload, "id": row.id, "phone": row.phone})
    except ValidationError as exc:
        log.error("stored record cannot be rebuilt", record_id=row.id, error=str(exc))
        return None
    return RecordEntry(record, core.book.sources.strategy_of(row.source), row.strategy,
                       row.source, "dialing", attempts=row.attempts, last_reason=row.last_reason,
                       last_call_id=row.last_call_id, disposition=row.disposition,
                       error=row.error)


async def claim_batch(coord: PgCoordinator, core: HubCore,
                      room: int) -> tuple[list[tuple[RecordEntry, AttemptState]], float]:
    """Claim up to ``room`` records; returns the grants and, when none, the real
    seconds after which another try may succeed."""
    campaign, now = coord.campaign, core.clock.now()
    before = time.monotonic()
    grants: list[tuple[RecordEntry, AttemptState]] = []
    coord.next_due_hub = None
    admitted = Admitted()
    async with coord.engine.begin() as conn:
        await lock_campaign_cap(conn, core, campaign)  # a campaign cap: one decider
        n, taken = room, []
        for kind, _cap, age in _limits(core, coord):
            got = await _take(conn, campaign, kind, n, age)
            taken.append((kind, got))
            n = min(n, len(got))
            if n == 0:
                wait = await _token_wait_s(conn, campaign, kind, age)
                for k, tokens in taken:
                    await _give_back(conn, campaign, k, tokens)
                return [], wait
        slots: list[int] | None = None
        if core.options.max_concurrent:
            slots = [int(s) for s in (await conn.execute(
                sql.TAKE_SLOTS, {"campaign": campaign, "n": n})).scalars()]
            n = min(n, len(slots))
        rows = await _take_records(conn, coord, core, now, n, admitted) if n else []
        used = len(rows)
        for kind, tokens in taken:
            await _give_back(conn, campaign, kind, tokens[used:])
        inserts = []
        for i, row in enumerate(rows):
            if slots is not None:
                await conn.execute(sql.HOLD_SLOT, {
                    "campaign": campaign, "slot": slots[i], "pk": row.pk, "node": coord.node_id,
                    "ttl": coord.options.lease_ttl_s})
            entry = _entry(core, row)
            attempt = AttemptState(record_id=row.id, attempt_no=row.attempts, phone=row.phone,
                                   claimed_at=now, source=row.source)
            if entry is None:
                await _close_invalid(conn, coord, row, attempt, now)
                continue
            inserts.append(attempt.insert_op(core.run_id).params)
            grants.append((entry, attempt))
        if inserts:
            await conn.execute(coord.statements[OpKind.INSERT_ATTEMPT], inserts)
    admitted.done(core)
    for _, attempt in grants:
        coord.stamps.put((attempt.source, attempt.record_id, attempt.attempt_no), before)
    # decided records left the due set: the next claim may find others at once
    return grants, 0.0 if rows or admitted.decided else coord.options.poll_floor_s


async def _take_records(conn: AsyncConnection, coord: PgCoordinator, core: HubCore, now: float,
                        n: int, admitted: Admitted) -> list[Any]:
    """Up to ``n`` due records compare-and-set to ``dialing`` (with compliance on, only
    those the admission step allows: the rest are deferred or skipped into
    ``admitted``). Finding none due, notes when the next one is (``next_due_hub``)."""
    campaign = coord.campaign
    params = {"node": coord.node_id, "ttl": coord.options.lease_ttl_s, "now": now}

    async def candidates(want: int, seen: list[int]) -> list[Any]:
        return await _candidates(conn, campaign, now, want, seen, sql.CANDIDATES_TO_DECIDE)

    async def cas(pks: list[int]) -> list[Any]:
        return await _cas(conn, pks, params) if pks else []

    if core.compliance.enabled:  # decide before the compare-and-set
        for _round in range(ROUNDS):
            want = n - len(admitted.rows)
            if want <= 0 or not await admit_round(conn, coord, core, now, want, admitted,
                                                  candidates, cas):
                break
        rows = admitted.rows
    else:
        rows = await cas([int(r.pk) for r in await _candidates(conn, campaign, now, n)])
    if not rows and not admitted.decided:  # nothing due: sleep until something is
        due = (await conn.execute(sql.NEXT_DUE, {"campaign": campaign, "now": now})).scalar()
        if due is not None and float(due) > now:
            coord.next_due_hub = float(due)
    return rows


async def _candidates(conn: AsyncConnection, campaign: str, now: float, n: int,
                      exclude: Sequence[int] = (), statement: Any = sql.CANDIDATES) -> list[Any]:
    """Due records (``pk``, ``phone``, ...), at most one per phone (two of one phone
    would trip the index), none of ``exclude`` (candidates an earlier round of this
    claim looked at), in due order."""
    rows = (await conn.execute(statement, {"campaign": campaign, "now": now, "n": n * 2,
                                           "exclude": list(exclude)})).all()
    phones: set[str] = set()
    out: list[Any] = []
    for row in rows:
        if row.phone not in phones and len(out) < n:
            phones.add(row.phone)
            out.append(row)
    return out


async def _close_invalid(conn: AsyncConnection, coord: PgCoordinator, row: Any,
                         attempt: AttemptState, now: float) -> None:
    """A stored payload that no longer validates: ``failed`` ``invalid_record``, never
    dialled (its slot is freed at once)."""
    await conn.execute(sql.SETTLE_SWEPT_RECORD, {
        "pk": row.pk, "node": coord.node_id, "status": "failed", "next_at": None,
        "reason": Reason.INVALID_RECORD.value, "call_id": None, "now": now,
        "error": f"record {row.id!r}: stored payload no longer valid; not dialled"})
    await conn.execute(sql.FREE_SLOT, {"campaign": coord.campaign, "pk": row.pk})
