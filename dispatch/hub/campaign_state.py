"""The campaign's state as the hub sees it: read on a timer, obeyed before every claim.

The ``campaigns`` row (:mod:`dispatch.store.campaigns`) is the admission switch. The
dispatch loop reads it with a primary-key lookup at most every
:data:`STATE_READ_INTERVAL_S` seconds of event-loop (real) time -- also while it
waits, so a paused hub notices a resume -- and claims nothing unless the last state
read is ``running``. The loop is also the one that claims, so once it has read
``paused`` no further claim starts; it then writes the state it observed back
(``acked_state``/``acked_at``), which the CLI reports.

Worst case, a pause written at ``t`` stops admission by ``t +`` the read interval
``+`` one read and one group commit (a claim batch already being committed is
launched: its dials were claimed before the pause was seen). Live calls continue.

- ``paused``: no new dials; the run does not end (a one-shot run waits for
  ``dispatch campaign resume``, as a daemon does), one log line says so.
- ``cancelled``: no new dials; the hub stops polling and drains its live calls,
  then every record of the run not yet dialled (or waiting for a retry) becomes
  terminal with reason ``campaign_cancelled`` (``skipped``, or ``failed`` when it
  had been dialled before): nothing stays silently pending. A run started on a
  cancelled campaign does the same with what it resumed, and dials nobody.
- ``done``: set here when a one-shot run ends with every record terminal; a new run
  on a ``done`` campaign puts it back to ``running``.

A database is dialled by one campaign process at a time (the run lock), and until
record identity includes the campaign a run resumes every unfinished record of
the database: records of another *running* or *done* campaign (e.g. ``default``,
given by migration 0003 to a database's earlier records) are moved into this one;
a start is refused while another campaign that is ``paused`` or ``cancelled``
still has unfinished records (its pause must hold).
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from dispatch.errors import PreflightError
from dispatch.log import get_logger
from dispatch.reasons import Reason
from dispatch.store import Store, campaigns
from dispatch.store.models import DEFAULT_CAMPAIGN
from dispatch.strategy import Outcome, Strategy

if TYPE_CHECKING:
    from dispatch.hub.core import HubCore

__all__ = [
    "MAX_CAMPAIGN_ID_CHARS",
    "STATE_READ_INTERVAL_S",
    "CampaignWatch",
    "admission_open",
    "apply_limits",
    "check_campaign_id",
    "derive_campaign_id",
    "finish",
    "open_campaign",
    "start",
    "until_next_read_s",
]

log = get_logger("dispatch.hub")

#: event-loop seconds between two reads of the campaign row
STATE_READ_INTERVAL_S = 0.5
MAX_CAMPAIGN_ID_CHARS = 100


def check_campaign_id(campaign_id: str) -> str:
    """Return ``campaign_id`` stripped; ``ValueError`` (one line) when unusable."""
    text = campaign_id.strip()
    if not text or len(text) > MAX_CAMPAIGN_ID_CHARS or not text.isprintable():
        raise ValueError(f"campaign {campaign_id!r} is not a campaign id: it must be 1-"
                         f"{MAX_CAMPAIGN_ID_CHARS} printable characters")
    return text


def derive_campaign_id(strategies: Sequence[Strategy]) -> str:
    """The default campaign id: the first strategy's file stem (``leads.csv`` → ``leads``),
    else its name, else ``default``."""
    if not strategies:
        return DEFAULT_CAMPAIGN
    first = strategies[0]
    path = getattr(first, "path", None)
    if isinstance(path, str | os.PathLike) and Path(path).stem.strip():
        return check_campaign_id(Path(path).stem)
    return check_campaign_id(first.name or DEFAULT_CAMPAIGN)


def _identity() -> str:
    return f"dispatch pid {os.getpid()}@{socket.gethostname()}"


@dataclasses.dataclass(slots=True, eq=False)
class CampaignWatch:
    """The hub's cache of its campaign row (rebuilt from the database at any time)."""

    id: str = DEFAULT_CAMPAIGN
    state: str = "running"
    changed_by: str = ""
    #: ``anyio.current_time()`` of the next read
    next_read_at: float = 0.0
    #: who this hub is, in ``acked_by`` / ``state_changed_by``
    by: str = dataclasses.field(default_factory=_identity)
    # the limits last applied from the row (``None`` until the first read)
    limits: dict[str, int | None] | None = None
    #: a schedule window is open (the daemon closes it outside the campaign's windows)
    window_open: bool = True
    #: progress heartbeat: the dispatch loop's turns, and ``anyio.current_time()`` of the
    #: last one (the daemon's watchdog pings only while this advances)
    heartbeat: int = 0
    heartbeat_at: float = 0.0


async def open_campaign(
    store: Store, watch: CampaignWatch, limits: dict[str, int | None], now: float,
    *, adopt: bool = True,
) -> None:
    """Before the run: create or update the row, take over the unfinished records of
    finished/running campaigns, refuse (:class:`PreflightError`) when a paused or
    cancelled one still has some. :func:`start` then acts on the state found."""
    engine = store.engine
    row = await campaigns.ensure(engine, watch.id, limits=limits, now=now, by=watch.by)
    watch.state, watch.changed_by = row.state, row.state_changed_by
    if not adopt:  # a daemon's hubs share the database: each keeps its own records
        return
    others = {c.id: c.state for c in await campaigns.list_all(engine) if c.id != watch.id}
    unfinished = await campaigns.unfinished_by_campaign(engine)
    held = sorted(c for c in unfinished if others.get(c) in ("paused", "cancelled"))
    if held:
        first = held[0]
        raise PreflightError(
            f"campaign {first!r} is {others[first]} with {unfinished[first]} unfinished "
            f"record(s) in this database; resume or cancel it, or run --campaign {first}",
            option="--campaign")
    moved = await campaigns.adopt_unfinished(
        engine, watch.id, sorted(c for c in unfinished if c != watch.id))
    if moved:
        log.warning("unfinished records moved into this campaign", campaign=watch.id,
                    count=moved)
    watch.state, watch.changed_by = row.state, row.state_changed_by


async def start(core: HubCore) -> None:
    """Acknowledge the state :func:`open_campaign` found and act on it (before resuming)."""
    await _observe(core, core.watch.state, core.watch.changed_by)


async def admission_open(core: HubCore) -> bool:
    """True when the hub may claim dials now; reads the row when the interval is up."""
    watch = core.watch
    watch.heartbeat += 1  # progress heartbeat (one per dispatch-loop turn)
    watch.heartbeat_at = anyio.current_time()
    if anyio.current_time() >= watch.next_read_at:
        watch.next_read_at = anyio.current_time() + STATE_READ_INTERVAL_S
        row = await core.store.read_campaign(watch.id)  # state and limits
        if row is not None:
            apply_limits(core, _row_limits(row))
            if row.state != watch.state:
                await _observe(core, row.state, row.state_changed_by)
    return (watch.state in ("running", "done") and not core.stopping
            and watch.window_open)


def _row_limits(row: campaigns.Campaign) -> dict[str, int | None]:
    return {"max_per_minute": row.max_per_minute, "max_per_second": row.max_per_second,
            "max_concurrent": row.max_concurrent}


def apply_limits(core: HubCore, limits: dict[str, int | None]) -> bool:
    """Make the campaign row's limits the hub's at once (``dispatch serve``'s reload and
    the control plane's PATCH write the row; the hub reads it every
    :data:`STATE_READ_INTERVAL_S`). Live calls are never cut: a lower
    ``max_concurrent`` only holds new dials until enough calls end; the rate windows
    keep their logged starts. Returns True when something changed."""
    watch = core.watch
    if watch.limits == limits:
        return False
    watch.limits = dict(limits)
    options = core.options
    current = {"max_per_minute": options.max_calls_per_minute,
               "max_per_second": options.max_calls_per_second,
               "max_concurrent": options.max_concurrent}
    if current == limits:
        return False
    core.options = dataclasses.replace(
        options, max_calls_per_minute=limits["max_per_minute"],
        max_calls_per_second=limits["max_per_second"], max_concurrent=limits["max_concurrent"])
    core.window.max_per_window = limits["max_per_minute"]
    core.gate.max_concurrent = limits["max_concurrent"]
    _set_per_second(core, limits["max_per_second"])
    pace = core.pace  # the pacer has no setter (limiter.py): refresh its list of limited windows
    pace._limited = [w for w in pace._windows if w.max_per_window is not None]
    log.info("campaign limits changed", campaign=watch.id, **limits)
    core.dispatch_signal.set()
    return True


def _set_per_second(core: HubCore, value: int | None) -> None:
    from dispatch.hub.limiter import SlidingWindowLimiter

    pace = core.pace
    if pace.per_second is None and value is not None:
        pace.per_second = SlidingWindowLimiter(value, 1.0 + core.options.pace_margin_s,
                                               name="max_calls_per_second")
        pace._windows.append(pace.per_second)
        pace.sync_per_second(core.clock.now())
    elif pace.per_second is not None:
        pace.per_second.max_per_window = value


def until_next_read_s(core: HubCore) -> float:
    """Event-loop seconds until the loop must read the row again."""
    return max(0.0, core.watch.next_read_at - anyio.current_time())


async def _observe(core: HubCore, state: str, changed_by: str) -> None:
    watch = core.watch
    watch.state, watch.changed_by = state, changed_by
    await campaigns.acknowledge(core.store.engine, watch.id, state, now=core.clock.now(),
                                by=watch.by)
    if state == "paused":
        log.warning("campaign paused: no new dials until it is resumed (live calls continue)",
                    campaign=watch.id, by=changed_by)
    elif state == "cancelled":
        log.warning("campaign cancelled: no new dials; live calls finish, records not yet "
                    "dialled are closed campaign_cancelled", campaign=watch.id, by=changed_by)
        core.request_stop(drain=True, timeout_s=None)
    elif state == "running" and changed_by != watch.by:
        log.info("campaign running", campaign=watch.id, by=changed_by)


async def finish(core: HubCore) -> None:
    """After the calls drained: close a cancelled campaign's leftovers, or mark a
    one-shot run that finished everything ``done``."""
    watch = core.watch
    if watch.state == "cancelled":
        await _close_cancelled(core)
    elif core.idle_reached and core.fatal is None and not core.book.active and (
            await campaigns.mark_done(core.store.engine, watch.id, now=core.clock.now(),
                                      by=watch.by)):
        watch.state = "done"


async def _close_cancelled(core: HubCore) -> None:
    now = core.clock.now()
    waiting = [e for e in core.book.entries.values() if e.status in ("pending", "scheduled")]
    ops = []
    outcomes = []
    for entry in waiting:
        status = "failed" if entry.attempts else "skipped"
        entry.last_reason = Reason.CAMPAIGN_CANCELLED.value
        entry.next_attempt_at = None
        entry.error = (f"record {entry.id!r}: campaign {core.watch.id!r} cancelled by "
                       f"{core.watch.changed_by} before this record's next dial")
        core.book.set_status(entry, status)
        outcome = Outcome(entry.record, status, Reason.CAMPAIGN_CANCELLED, entry.attempts,
                          call_id=entry.last_call_id, detail=entry.error)
        ops += [entry.update_op(now), *core.terminal_ops(outcome, entry.source)]
        outcomes.append((outcome, entry.strategy))
    if ops:
        await core.store.write(ops)
        log.warning("records closed: campaign cancelled", campaign=core.watch.id,
                    count=len(ops))
    for outcome, strategy in outcomes:
        core.notifier.terminal(outcome, strategy)
