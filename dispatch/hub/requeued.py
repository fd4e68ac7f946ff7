"""Requeued records: taken from the source again before they are dialled.

``dispatch requeue`` puts finished records back to ``pending`` to recover from a
campaign-wide mistake (a greeting field that was missing, national numbers read
without ``--region``). Their stored payload is the one that was wrong, so a
requeued record that has not been dialled in its new round is *held* at start-up
until the first poll round has run:

- when a strategy returns that id again, the fresh record replaces the stored one
  (``refresh_record``) and goes through the same checks as a new record;
- a held record no strategy returned is checked as stored, with this run's
  settings (``default_region``, ``max_record_bytes``).

Either way a record that is still bad is skipped with its reason, never dialled.
"""

from __future__ import annotations

from collections.abc import Sequence

from dispatch.hub.core import HubCore
from dispatch.hub.ingest import Skip, admit, item_id, recheck
from dispatch.hub.state import RecordEntry, record_key
from dispatch.log import get_logger
from dispatch.store import WriteOp, refresh_record
from dispatch.strategy import Outcome, Strategy

__all__ = ["refresh_held", "release_held", "split_held"]

log = get_logger("dispatch.hub")


def _held_entry(core: HubCore, strategy: Strategy, record_id: str | None) -> RecordEntry | None:
    """The held record ``strategy`` returned ``record_id`` for (under any of its sources)."""
    if record_id is None:
        return None
    for source in core.book.sources.sources_of(strategy):
        entry = core.held.get(record_key(source, record_id))
        if entry is not None:
            return entry
    return None


def split_held(
    core: HubCore, strategy: Strategy, items: Sequence[object]
) -> tuple[list[object], list[object]]:
    """``(others, held)``: the poll items, and those that refresh a held record."""
    if not core.held:
        return list(items), []
    others: list[object] = []
    held: list[object] = []
    for item in items:
        is_held = _held_entry(core, strategy, item_id(item)) is not None
        (held if is_held else others).append(item)
    return others, held


async def refresh_held(core: HubCore, strategy: Strategy, items: Sequence[object]) -> int:
    """Replace held records with the source's fresh rows; return how many were settled."""
    admission = admit(items, known=set(), default_region=core.options.default_region,
                      max_record_bytes=core.options.max_record_bytes)
    now = core.clock.now()
    ops: list[WriteOp] = []
    ready: list[RecordEntry] = []
    for record in admission.new:
        entry = _held_entry(core, strategy, record.id)
        if entry is None:
            continue
        core.held.pop(entry.key)
        entry.record, entry.strategy, entry.strategy_name = record, strategy, strategy.name
        ops.append(refresh_record(source=entry.source, id=record.id, phone=record.phone,
                                  payload=record.payload(), now=now))
        ready.append(entry)
    skipped = [_skip_held(core, _held_entry(core, strategy, skip.record.id), skip, now, ops)
               for skip in admission.skipped]
    if ops:
        await core.store.write(ops)
    _queue(core, ready)
    _notify(core, [s for s in skipped if s is not None])
    return len(ready) + len(skipped)


async def release_held(core: HubCore) -> None:
    """After the first poll round: check what no strategy refreshed, then queue it."""
    if not core.held:
        return
    now = core.clock.now()
    ops: list[WriteOp] = []
    ready: list[RecordEntry] = []
    skipped = []
    for entry in list(core.held.values()):
        skip = recheck(entry.record, core.options.default_region, core.options.max_record_bytes)
        if skip is None:
            core.held.pop(entry.key)
            ready.append(entry)
        else:
            skipped.append(_skip_held(core, entry, skip, now, ops))
    if ops:
        await core.store.write(ops)
    _queue(core, ready)
    _notify(core, [s for s in skipped if s is not None])


def _skip_held(
    core: HubCore, entry: RecordEntry | None, skip: Skip, now: float, ops: list[WriteOp]
) -> tuple[Outcome, RecordEntry] | None:
    if entry is None or core.held.pop(entry.key, None) is None:
        return None
    log.warning("requeued record skipped", record_id=entry.id, reason=skip.reason.value,
                error=skip.error)
    entry.last_reason, entry.error = skip.reason.value, skip.error
    core.book.set_status(entry, "skipped")
    outcome = Outcome(entry.record, "skipped", skip.reason, attempts=0, detail=skip.error)
    ops += [entry.update_op(now), *core.terminal_ops(outcome, entry.source)]
    return outcome, entry


def _queue(core: HubCore, entries: list[RecordEntry]) -> None:
    for entry in entries:
        core.queue.add_ready(entry.key)
    if entries:
        core.dispatch_signal.set()


def _notify(core: HubCore, skipped: list[tuple[Outcome, RecordEntry]]) -> None:
    for outcome, entry in skipped:
        core.notifier.terminal(outcome, entry.strategy)
