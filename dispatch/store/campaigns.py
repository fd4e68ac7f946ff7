"""Campaign rows: the state every dispatcher reads before it claims a dial.

State machine (who moves it)::

    running --pause--> paused --resume--> running        (anyone: the CLI)
    running|paused --cancel--> cancelled                  (anyone; terminal)
    running --> done      (the hub, when a one-shot run ends with every record terminal)
    done --> running      (the hub, when a new run starts on a finished campaign)

Every change is one compare-and-set ``UPDATE ... WHERE state IN (allowed)``, so two
writers never lose each other's change and an illegal transition changes nothing.
A hub reads the state with a primary-key lookup (:func:`read_state`) and writes the
state it observed back (:func:`acknowledge`), so an operator can tell when a pause
reached the running dispatcher. Times are epoch seconds; the CLI writes wall-clock
time, a hub its own clock. Every database error is a
:class:`~dispatch.store.errors.StoreError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dispatch.store.errors import StoreError
from dispatch.store.models import ACTIVE_STATUSES, CampaignRow, RecordRow

__all__ = [
    "ACTIONS",
    "Campaign",
    "CampaignStateError",
    "IllegalTransition",
    "UnknownCampaign",
    "acknowledge",
    "adopt_unfinished",
    "ensure",
    "get",
    "list_all",
    "mark_done",
    "read_state",
    "record_counts",
    "transition",
    "unfinished_by_campaign",
]

_campaigns = cast(Table, CampaignRow.__table__)
_records = cast(Table, RecordRow.__table__)

#: operator actions: the states each may start from, and the state it sets
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "cancel": (frozenset({"running", "paused"}), "cancelled"),
}


class CampaignStateError(StoreError):
    """A campaign command that cannot be applied (the message is one line)."""


class UnknownCampaign(CampaignStateError):
    """No campaign with that id in this database."""


class IllegalTransition(CampaignStateError):
    """The campaign's current state does not allow the action."""


@dataclasses.dataclass(frozen=True, slots=True)
class Campaign:
    """One ``campaigns`` row."""

    id: str
    state: str
    max_per_minute: int | None
    max_per_second: int | None
    max_concurrent: int | None
    created_at: float
    updated_at: float
    state_changed_at: float
    state_changed_by: str
    acked_state: str | None
    acked_at: float | None
    acked_by: str | None


_FIELDS = tuple(f.name for f in dataclasses.fields(Campaign))


def _row(row: Any) -> Campaign:
    return Campaign(**{name: getattr(row, name) for name in _FIELDS})


async def _select_one(conn: AsyncConnection, campaign_id: str) -> Campaign | None:
    row = (await conn.execute(select(_campaigns).where(_campaigns.c.id == campaign_id))).first()
    return None if row is None else _row(row)


def _error(what: str, exc: BaseException) -> StoreError:
    return StoreError(f"cannot {what}: {exc}")


#: the row by id, for a driver without SQLAlchemy (``:id``): see :func:`from_mapping`
SELECT_ONE = select(_campaigns).where(_campaigns.c.id == bindparam("id"))


def from_mapping(row: Mapping[str, Any]) -> Campaign:
    """A :class:`Campaign` from a row as a column-name mapping."""
    return Campaign(**{name: row[name] for name in _FIELDS})


async def get(engine: AsyncEngine, campaign_id: str) -> Campaign | None:
    """The campaign row, or ``None``."""
    try:
        async with engine.connect() as conn:
            return await _select_one(conn, campaign_id)
    except (SQLAlchemyError, OSError) as exc:
        raise _error(f"read campaign {campaign_id!r}", exc) from exc


async def list_all(engine: AsyncEngine) -> list[Campaign]:
    """Every campaign, oldest first."""
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(_campaigns).order_by(_campaigns.c.created_at))
            return [_row(row) for row in rows]
    except (SQLAlchemyError, OSError) as exc:
        raise _error("list campaigns", exc) from exc


async def read_state(engine: AsyncEngine, campaign_id: str) -> tuple[str, str, float] | None:
    """``(state, changed_by, changed_at)`` by primary key: the hub's cheap periodic read."""
    query = select(_campaigns.c.state, _campaigns.c.state_changed_by,
                   _campaigns.c.state_changed_at).where(_campaigns.c.id == campaign_id)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(query)).first()
    except (SQLAlchemyError, OSError) as exc:
        raise _error(f"read the state of campaign {campaign_id!r}", exc) from exc
    return None if row is None else (row[0], row[1], row[2])


async def ensure(
    engine: AsyncEngine, campaign_id: str, *, limits: dict[str, int | None], now: float, by: str,
) -> Campaign:
    """Create the campaign (``running``) or update its limits; a ``done`` one runs again.

    ``limits`` holds ``max_per_minute``, ``max_per_second`` and ``max_concurrent``.
    A ``paused`` or ``cancelled`` campaign keeps its state.
    """
    try:
        async with engine.begin() as conn:
            if await _select_one(conn, campaign_id) is None:
                await conn.execute(insert(_campaigns).values(
                    id=campaign_id, state="running", created_at=now, updated_at=now,
                    state_changed_at=now, state_changed_by=by, **limits))
            else:
                table = _campaigns.c
                await conn.execute(update(_campaigns).where(table.id == campaign_id)
                                   .values(updated_at=now, **limits))
                await conn.execute(update(_campaigns).where(
                    (table.id == campaign_id) & (table.state == "done"))
                    .values(state="running", state_changed_at=now, state_changed_by=by))
            campaign = await _select_one(conn, campaign_id)
    except (SQLAlchemyError, OSError) as exc:
        raise _error(f"record campaign {campaign_id!r}", exc) from exc
    assert campaign is not None
    return campaign


async def transition(
    engine: AsyncEngine, campaign_id: str, action: str, *, now: float, by: str,
) -> Campaign:
    """Apply an operator ``action`` (``pause``/``resume``/``cancel``) atomically.

    Raises :class:`UnknownCampaign` or :class:`IllegalTransition` (nothing changed).
    """
    allowed, target = ACTIONS[action]
    table = _campaigns.c
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                update(_campaigns)
                .where((table.id == campaign_id) & table.state.in_(sorted(allowed)))
                .values(state=target, state_changed_at=now, state_changed_by=by, updated_at=now))
            campaign = await _select_one(conn, campaign_id)
    except (SQLAlchemyError, OSError) as exc:
        raise _error(f"{action} campaign {campaign_id!r}", exc) from exc
    if campaign is None:
        raise UnknownCampaign(f"unknown campaign {campaign_id!r}")
    if result.rowcount == 0:
        froms = " or ".join(sorted(allowed))
        raise IllegalTransition(f"campaign {campaign_id!r} is {campaign.state}: cannot {action} "
                                f"it ({action} needs {froms})")
    return campaign


async def acknowledge(
    engine: AsyncEngine, campaign_id: str, state: str, *, now: float, by: str,
) -> None:
    """Record that a running hub observed ``state`` (and acts on it from ``now`` on)."""
    try:
        async with engine.begin() as conn:
            await conn.execute(update(_campaigns).where(_campaigns.c.id == campaign_id)
                               .values(acked_state=state, acked_at=now, acked_by=by))
    except (SQLAlchemyError, OSError) as exc:
        raise _error(f"acknowledge the state of campaign {campaign_id!r}", exc) from exc


async def mark_done(engine: AsyncEngine, campaign_id: str, *, now: float, by: str) -> bool:
    """``running → done``; False (nothing changed) when the state is anything else."""
    table = _campaigns.c
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                update(_campaigns).where((table.id == campaign_id) & (table.state == "running"))
                .values(state="done", state_changed_at=now, state_changed_by=by, updated_at=now,
                        acked_state="done", acked_at=now, acked_by=by))
    except (SQLAlchemyError, OSError) as exc:
        raise _error(f"mark campaign {campaign_id!r} done", exc) from exc
    return bool(result.rowcount)


async def unfinished_by_campaign(engine: AsyncEngine) -> dict[str, int]:
    """Records not yet terminal, by campaign id."""
    query = (select(_records.c.campaign_id, func.count())
             .where(_records.c.status.in_(sorted(ACTIVE_STATUSES)))
             .group_by(_records.c.campaign_id))
    try:
        async with engine.connect() as conn:
            return {row[0]: int(row[1]) for row in await conn.execute(query)}
    except (SQLAlchemyError, OSError) as exc:
        raise _error("count unfinished records by campaign", exc) from exc


async def adopt_unfinished(engine: AsyncEngine, campaign_id: str, others: list[str]) -> int:
    """Move the unfinished records of campaigns ``others`` into ``campaign_id``."""
    if not others:
        return 0
    table = _records.c
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                update(_records)
                .where(table.campaign_id.in_(others) & table.status.in_(sorted(ACTIVE_STATUSES)))
                .values(campaign_id=campaign_id))
    except (SQLAlchemyError, OSError) as exc:
        raise _error(f"move unfinished records into campaign {campaign_id!r}", exc) from exc
    return int(result.rowcount)


async def record_counts(engine: AsyncEngine) -> dict[str, dict[str, int]]:
    """Records by campaign id, then by status."""
    query = (select(_records.c.campaign_id, _records.c.status, func.count())
             .group_by(_records.c.campaign_id, _records.c.status))
    counts: dict[str, dict[str, int]] = {}
    try:
        async with engine.connect() as conn:
            for campaign_id, status, n in await conn.execute(query):
                counts.setdefault(campaign_id, {})[status] = int(n)
    except (SQLAlchemyError, OSError) as exc:
        raise _error("count records by campaign", exc) from exc
    return counts
