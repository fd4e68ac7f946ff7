"""The store side of dial-time compliance (issue 9, migration 0006).

- The internal do-not-call list (``dnc_entries``): :func:`dnc_add`, :func:`dnc_remove`,
  :func:`dnc_entries`, :func:`dnc_phones`; one row per ``(phone, scope)``, ``scope``
  ``*`` for every campaign or a campaign id; each row keeps reason, source, record
  and time (the audit trail).
- Recent attempts for the caps (:func:`attempt_window`): one indexed range read per
  claim batch (``ix_attempts_phone_start``, ``ix_attempts_campaign_start``, migration
  0009); an attempt counts from its start, ``coalesce(dialed_at, claimed_at)``: the
  instant its frame left, or its claim if it never did,
  answered synchronously afterwards by :class:`PrefetchedAttempts`, which satisfies
  :class:`dispatch.compliance.AttemptLog`.
- The record's last decision (:func:`decision_op`, a group-writer op).

Every database error surfaces as :class:`~dispatch.store.errors.StoreError`.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatch.compliance.decision import Decision
from dispatch.store.errors import StoreError
from dispatch.store.models import ATTEMPT_START, AttemptRow, DncEntryRow
from dispatch.store.ops import OpKind, WriteOp

__all__ = ["GLOBAL_SCOPE", "DncEntry", "PrefetchedAttempts", "attempt_count_since",
           "attempt_window", "decision_op", "deferrals", "dnc_add", "dnc_entries",
           "dnc_fingerprint", "dnc_hits", "dnc_phones", "dnc_remove", "wake_deferred"]

#: an engine (each read on a connection of its own) or an open connection (the reads
#: join its transaction: cluster mode decides inside the claim's transaction)
Reader = AsyncEngine | AsyncConnection

#: the scope of a suppression that holds in every campaign
GLOBAL_SCOPE = "*"
_dnc = cast(Table, DncEntryRow.__table__)
_attempts = cast(Table, AttemptRow.__table__)
#: phones per ``IN (...)`` read (SQLite's bound-parameter limit is far above this)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class DncEntry:
    """One row of the internal list."""

    phone: str
    scope: str
    reason: str
    source: str
    record_id: str | None
    added_at: float


def decision_op(*, source: str, id: str, decision: Decision, at_s: float) -> WriteOp:
    """Store ``decision`` as record ``(source, id)``'s last admission answer."""
    return WriteOp(OpKind.UPDATE_DECISION, {
        "b_source": source, "b_id": id, "decision": decision.verdict.value,
        "decision_reason": decision.reason, "decision_until": decision.until_s,
        "decision_at": at_s, "decision_detail": decision.detail or None,
    })


async def deferrals(engine: AsyncEngine) -> list[tuple[str, int, float | None]]:
    """Records waiting on a deferral: ``(reason, count, earliest until)`` by reason."""
    from dispatch.store.models import RecordRow

    records = cast(Table, RecordRow.__table__)
    query = (select(records.c.decision_reason, func.count(), func.min(records.c.decision_until))
             .where(records.c.status == "scheduled", records.c.decision == "defer")
             .group_by(records.c.decision_reason).order_by(func.count().desc()))
    return [(str(r), int(n), None if u is None else float(u))
            for r, n, u in await _read(engine, query)]


async def wake_deferred(engine: AsyncEngine, now: float) -> int:
    """Make every deferred record due at ``now`` (hub clock): a simulated compliance
    clock restarts from its origin, so wake-ups computed by an earlier run are stale;
    the admission step decides them again at once."""
    from sqlalchemy import update

    from dispatch.store.models import RecordRow

    records = cast(Table, RecordRow.__table__)
    query = (update(records).where(records.c.status == "scheduled",
                                   records.c.decision == "defer")
             .values(next_attempt_at=now))
    try:
        async with engine.begin() as conn:
            return int((await conn.execute(query)).rowcount or 0)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database write failed: {exc}") from exc


# -- the internal do-not-call list -----------------------------------------------------


async def dnc_add(engine: AsyncEngine, phone: str, *, scope: str = GLOBAL_SCOPE, reason: str,
                  source: str, at_s: float, record_id: str | None = None) -> bool:
    """Suppress ``phone`` in ``scope`` (committed on return); False when it already was
    (the first entry, and its audit trail, is kept)."""
    row = {"phone": phone, "scope": scope, "reason": reason, "source": source,
           "record_id": record_id, "added_at": at_s}
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(_dnc).values(**row))
    except IntegrityError:
        return False
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot add {phone} to the do-not-call list: {exc}") from exc
    return True


async def dnc_remove(engine: AsyncEngine, phone: str, *, scope: str | None = None) -> int:
    """Lift ``phone``'s suppression in ``scope`` (None: every scope); how many rows went."""
    query = delete(_dnc).where(_dnc.c.phone == phone)
    if scope is not None:
        query = query.where(_dnc.c.scope == scope)
    try:
        async with engine.begin() as conn:
            return int((await conn.execute(query)).rowcount or 0)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"cannot remove {phone} from the do-not-call list: {exc}") from exc


async def dnc_entries(engine: AsyncEngine) -> list[DncEntry]:
    """Every entry, oldest first."""
    query = select(_dnc.c.phone, _dnc.c.scope, _dnc.c.reason, _dnc.c.source,
                   _dnc.c.record_id, _dnc.c.added_at).order_by(_dnc.c.added_at, _dnc.c.id)
    rows = await _read(engine, query)
    return [DncEntry(*row) for row in rows]


async def dnc_fingerprint(engine: AsyncEngine) -> tuple[int, int]:
    """``(count, max id)`` of the list: changes whenever an entry is added or removed."""
    rows = await _read(engine, select(func.count(), func.max(_dnc.c.id)))
    return (int(rows[0][0] or 0), int(rows[0][1] or 0)) if rows else (0, 0)


async def dnc_phones(engine: AsyncEngine, campaign: str) -> set[str]:
    """The phones suppressed for ``campaign`` (its own entries and the global ones)."""
    query = select(_dnc.c.phone).where(_dnc.c.scope.in_((GLOBAL_SCOPE, campaign)))
    return {str(row[0]) for row in await _read(engine, query)}


async def dnc_hits(reader: Reader, phones: Collection[str], campaign: str) -> set[str]:
    """Which of ``phones`` are suppressed for ``campaign`` now (one indexed read on
    ``uq_dnc_phone_scope``; in cluster mode inside the claim, so an opt-out any node
    committed before it is seen)."""
    wanted = sorted(set(phones))
    hits: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        query = select(_dnc.c.phone).where(_dnc.c.phone.in_(wanted[start:start + _CHUNK]),
                                           _dnc.c.scope.in_((GLOBAL_SCOPE, campaign)))
        hits.update(str(row[0]) for row in await _read(reader, query))
    return hits


# -- recent attempts (the caps' AttemptLog) ---------------------------------------------


class _CountedTail(Sequence[float]):
    """``count`` ascending times of which only the newest ``len(tail)`` are known:
    enough for :func:`~dispatch.compliance.caps.cap_release_s` with a cap up to that."""

    def __init__(self, count: int, tail: list[float]) -> None:
        self._count = count
        self._tail = tail

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        position = index + self._count if index < 0 else index
        offset = position - (self._count - len(self._tail))
        if not 0 <= position < self._count:
            raise IndexError(index)
        if offset < 0:
            raise LookupError(f"attempt {position} of {self._count} was not prefetched")
        return self._tail[offset]


async def _campaign_tail(engine: Reader, campaign: str, since_s: float, shift_s: float,
                         tail: int) -> Sequence[float]:
    where = (_attempts.c.campaign_id == campaign, since_s < ATTEMPT_START)
    rows = await _read(engine, select(func.count()).where(*where))
    count = int(rows[0][0]) if rows else 0
    if count == 0:
        return ()
    newest = await _read(engine, select(ATTEMPT_START).where(*where)
                         .order_by(ATTEMPT_START.desc()).limit(tail))
    times = sorted(float(row[0]) + shift_s for row in newest)
    return times if count == len(times) else _CountedTail(count, times)


class PrefetchedAttempts:
    """Attempt start times read for one claim batch: a synchronous
    :class:`~dispatch.compliance.AttemptLog`. ``shift_s`` is added to every stored
    time (the hub clock) to put it on the compliance clock the policies decide on.

    Asked about a phone (or since a time) it was not prefetched for, it raises
    ``KeyError``/``ValueError``: a silent zero would let a capped phone through."""

    def __init__(self, by_phone: dict[str, list[float]], campaign: str | None,
                 by_campaign: Sequence[float], since_s: float,
                 campaign_since_s: float | None = None) -> None:
        self._by_phone = by_phone
        self._campaign_since_s = since_s if campaign_since_s is None else campaign_since_s
        self._campaign = campaign
        self._by_campaign = by_campaign
        self._since_s = since_s

    def phone_attempts_since(self, phone: str, since_s: float) -> Sequence[float]:
        times = self._by_phone[phone]
        return self._slice(times, since_s)

    def campaign_attempts_since(self, campaign: str, since_s: float) -> Sequence[float]:
        if campaign != self._campaign:
            raise KeyError(f"attempts of campaign {campaign!r} were not prefetched")
        if since_s < self._campaign_since_s - 1e-6:
            raise ValueError(f"attempts before {self._campaign_since_s} were not prefetched")
        times = self._by_campaign
        if isinstance(times, _CountedTail):
            if since_s <= self._campaign_since_s + 1e-6:
                return times
            raise ValueError("a narrower campaign window than the prefetched one")
        return times[bisect.bisect_right(times, since_s):]

    def _check(self, since_s: float) -> None:
        if since_s < self._since_s - 1e-6:
            raise ValueError(f"attempts before {self._since_s} were not prefetched")

    def _slice(self, times: list[float], since_s: float) -> Sequence[float]:
        self._check(since_s)
        return times[bisect.bisect_right(times, since_s):]


async def attempt_window(engine: Reader, phones: Collection[str], campaign: str | None,
                         since_s: float, *, shift_s: float = 0.0, tail: int = 64,
                         campaign_since_s: float | None = None) -> PrefetchedAttempts:
    """Start times (ascending, ``> since_s`` on the hub clock) of every attempt to
    ``phones`` (all records, all campaigns) and of ``campaign``'s attempts; the times
    come back shifted by ``shift_s``. Index range scans only. For the campaign only the
    count and the newest ``tail`` times are read (a cap needs no more; keep ``tail``
    at least the campaign cap): a busy campaign's day is not read per batch."""
    by_phone: dict[str, list[float]] = defaultdict(list)
    wanted = sorted(set(phones))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        query = (select(_attempts.c.phone, ATTEMPT_START)
                 .where(_attempts.c.phone.in_(chunk), since_s < ATTEMPT_START)
                 .order_by(ATTEMPT_START))
        for phone, started_at in await _read(engine, query):
            by_phone[str(phone)].append(float(started_at) + shift_s)
    for phone in wanted:
        by_phone.setdefault(phone, [])
    by_campaign: Sequence[float] = ()
    if campaign is not None:
        campaign_since_s = since_s if campaign_since_s is None else campaign_since_s
        by_campaign = await _campaign_tail(engine, campaign, campaign_since_s, shift_s, tail)
    return PrefetchedAttempts(dict(by_phone), campaign, by_campaign, since_s + shift_s,
                              (since_s if campaign_since_s is None else campaign_since_s)
                              + shift_s)


async def attempt_count_since(engine: AsyncEngine, phone: str, since_s: float) -> int:
    """How many attempts ``phone`` had after ``since_s`` (one index range count)."""
    query = select(func.count()).where(_attempts.c.phone == phone,
                                       since_s < ATTEMPT_START)
    rows = await _read(engine, query)
    return int(rows[0][0]) if rows else 0


async def _read(engine: Reader, query: Any) -> list[Any]:
    if isinstance(engine, AsyncConnection):  # inside the caller's transaction
        return list((await engine.execute(query)).all())
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database read failed: {exc}") from exc
