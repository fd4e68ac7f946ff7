"""Read-mostly SQL for the control plane: per-campaign tallies and live limit changes.

Everything here is one aggregate query (no row scan in Python), so a scrape of
``/metrics`` every few seconds stays cheap however many records a campaign has.
Every database error is a :class:`~dispatch.store.StoreError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, and_, case, exists, func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from dispatch.store import StoreError
from dispatch.store.models import AttemptRow, CampaignRow, RecordRow

__all__ = [
    "CALL_DURATION_BUCKETS_S",
    "DIAL_LATENCY_BUCKETS_S",
    "AttemptTallies",
    "Histogram",
    "attempt_tallies",
    "retries_by_reason",
    "set_limits",
    "skipped_by_reason",
]

_records = cast(Table, RecordRow.__table__)
_attempts = cast(Table, AttemptRow.__table__)
_campaigns = cast(Table, CampaignRow.__table__)

#: claim → ``call.dialing`` (seconds): most are milliseconds, a paced dial waits
DIAL_LATENCY_BUCKETS_S = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: an answered reminder call lasts tens of seconds
CALL_DURATION_BUCKETS_S = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclasses.dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative bucket counts (``le`` → count), the observation count and sum."""

    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptTallies:
    """One campaign's attempts, as stored."""

    dials: int
    ended_by_reason: dict[str, int]
    dial_latency: Histogram
    call_duration: Histogram


def _error(what: str, exc: BaseException) -> StoreError:
    return StoreError(f"cannot {what}: {exc}")


def _bucket_columns(value: Any, bounds: Sequence[float], prefix: str) -> list[Any]:
    cols = [func.sum(case((value <= bound, 1), else_=0)).label(f"{prefix}{i}")
            for i, bound in enumerate(bounds)]
    cols.append(func.count(value).label(f"{prefix}n"))
    cols.append(func.coalesce(func.sum(value), 0.0).label(f"{prefix}sum"))
    return cols


def _histogram(row: Any, bounds: Sequence[float], prefix: str) -> Histogram:
    buckets = tuple((bound, int(row[f"{prefix}{i}"] or 0)) for i, bound in enumerate(bounds))
    return Histogram(buckets, int(row[f"{prefix}n"] or 0), float(row[f"{prefix}sum"] or 0.0))


async def attempt_tallies(engine: AsyncEngine) -> dict[str, AttemptTallies]:
    """Dials (frame sent), calls ended by reason and the two histograms, by campaign."""
    a = _attempts.c
    campaign = _records.c.campaign_id
    joined = _attempts.join(_records, _records.c.pk == a.record_pk)
    latency = a.dialing_at - a.claimed_at
    base = select(
        campaign.label("campaign"),
        func.count(a.dialed_at).label("dials"),
        *_bucket_columns(latency, DIAL_LATENCY_BUCKETS_S, "l"),
        *_bucket_columns(a.duration_s, CALL_DURATION_BUCKETS_S, "d"),
    ).select_from(joined).group_by(campaign)
    ended = (select(campaign, a.reason, func.count()).select_from(joined)
             .where(a.ended_at.is_not(None)).group_by(campaign, a.reason))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(base)).mappings().all()
            by_reason: dict[str, dict[str, int]] = {}
            for cid, reason, n in await conn.execute(ended):
                by_reason.setdefault(cid, {})[reason or "unknown"] = int(n)
    except (SQLAlchemyError, OSError) as exc:
        raise _error("count attempts by campaign", exc) from exc
    return {
        row["campaign"]: AttemptTallies(
            dials=int(row["dials"]), ended_by_reason=by_reason.get(row["campaign"], {}),
            dial_latency=_histogram(row, DIAL_LATENCY_BUCKETS_S, "l"),
            call_duration=_histogram(row, CALL_DURATION_BUCKETS_S, "d"))
        for row in rows
    }


async def skipped_by_reason(engine: AsyncEngine) -> dict[str, dict[str, int]]:
    """Records now ``skipped``, by campaign, then by reason."""
    r = _records.c
    query = (select(r.campaign_id, r.last_reason, func.count()).where(r.status == "skipped")
             .group_by(r.campaign_id, r.last_reason))
    out: dict[str, dict[str, int]] = {}
    try:
        async with engine.connect() as conn:
            for cid, reason, n in await conn.execute(query):
                out.setdefault(cid, {})[reason or "unknown"] = int(n)
    except (SQLAlchemyError, OSError) as exc:
        raise _error("count skipped records by campaign", exc) from exc
    return out


async def retries_by_reason(engine: AsyncEngine) -> dict[str, dict[str, int]]:
    """Retries scheduled, by campaign, then by the reason of the attempt that failed.

    A retry is an attempt followed by the next attempt of the same round, or the last
    attempt of a record now ``scheduled``: each scheduled retry counts once.
    """
    a, r = _attempts.c, _records.c
    nxt = _attempts.alias("next_attempt")
    followed = exists().where(and_(nxt.c.record_pk == a.record_pk,
                                   nxt.c.requeue_round == a.requeue_round,
                                   nxt.c.attempt_no == a.attempt_no + 1))
    redialled = (select(r.campaign_id, a.reason, func.count())
                 .select_from(_attempts.join(_records, r.pk == a.record_pk))
                 .where(followed).group_by(r.campaign_id, a.reason))
    waiting = (select(r.campaign_id, r.last_reason, func.count()).where(r.status == "scheduled")
               .group_by(r.campaign_id, r.last_reason))
    out: dict[str, dict[str, int]] = {}
    try:
        async with engine.connect() as conn:
            for query in (redialled, waiting):
                for cid, reason, n in await conn.execute(query):
                    by = out.setdefault(cid, {})
                    by[reason or "unknown"] = by.get(reason or "unknown", 0) + int(n)
    except (SQLAlchemyError, OSError) as exc:
        raise _error("count retries by campaign", exc) from exc
    return out


async def set_limits(
    engine: AsyncEngine, campaign_id: str, limits: dict[str, int | None], *, now: float,
) -> bool:
    """Write the given limit columns of one campaign row; False when there is no such row."""
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                update(_campaigns).where(_campaigns.c.id == campaign_id)
                .values(updated_at=now, **limits))
    except (SQLAlchemyError, OSError) as exc:
        raise _error(f"set the limits of campaign {campaign_id!r}", exc) from exc
    return bool(result.rowcount)
