"""The poll loop: asks strategies for records and admits the new ones."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from dispatch.hub.core import HubCore
from dispatch.hub.ingest import admit, item_id
from dispatch.hub.requeued import refresh_held, release_held, split_held
from dispatch.hub.sources import SourceHealth
from dispatch.hub.state import RecordEntry, record_key
from dispatch.log import get_logger
from dispatch.store import WriteOp, insert_record
from dispatch.strategy import Outcome, Strategy

__all__ = ["admit_items", "known_ids", "poll_loop", "poll_round"]

log = get_logger("dispatch.hub")

#: a strategy saying ``has_more`` forever must not starve the other strategies
_MAX_BATCHES_PER_ROUND = 1000


async def poll_loop(core: HubCore) -> None:
    """Poll every ``poll_interval_s``, or at once when signalled (idle checks); a
    failing strategy is polled again on its own backoff (see :mod:`.sources`)."""
    first = True
    while True:
        active_at_start = core.book.active
        changed = await poll_round(core)
        if first:
            await release_held(core)  # requeued records no strategy returned again
            first = False
        # only a dry poll that began with nothing in play proves the sources have
        # nothing new: rows may appear while the last calls are still going; a
        # failing source proves nothing at all
        failing = any(h.failing for h in core.health)
        core.polled_dry = changed == 0 and active_at_start == 0 and not failing
        core.check_idle()
        await core.poll_signal.wait(core.clock, _next_poll_at(core))


def _next_poll_at(core: HubCore) -> float:
    at = core.clock.now() + core.options.poll_interval_s
    retries = [h.next_retry_at for h in core.health if h.next_retry_at is not None]
    return min([at, *retries])


async def poll_round(core: HubCore) -> int:
    """Poll each strategy (again while it ``has_more``); return records admitted or skipped."""
    changed = 0
    for strategy, health in zip(core.strategies, core.health, strict=True):
        if not health.due(core.clock.now()):
            continue
        if not await core.coordinator.may_poll(strategy.key):  # cluster: the lease holder
            continue
        before = changed
        for _ in range(_MAX_BATCHES_PER_ROUND):
            await core.notifier.room()  # slow callbacks: no new page until they catch up
            items = await _poll_once(core, strategy, health)
            if items is None:
                break
            items, refreshed = split_held(core, strategy, items)
            if refreshed:
                changed += await refresh_held(core, strategy, refreshed)
            changed += await admit_items(core, strategy, items)
            if not strategy.has_more:
                break
        await core.coordinator.polled(strategy.key, changed - before)
    return changed


async def _poll_once(
    core: HubCore, strategy: Strategy, health: SourceHealth
) -> list[object] | None:
    """One ``poll()``: its items, or ``None`` after a failure (recorded in ``health``)."""
    try:
        result = await strategy.poll()
        if result is None or isinstance(result, str | bytes | dict) or not isinstance(
            result, Iterable
        ):
            raise TypeError(f"poll() returned {type(result).__name__}, expected a sequence "
                            "of Records")
        items: list[object] = list(result)
    except Exception as exc:
        _poll_failed(core, strategy, health, exc)
        return None
    if health.succeeded():
        log.info("strategy poll recovered", strategy=strategy.name)
    return items


def _poll_failed(core: HubCore, strategy: Strategy, health: SourceHealth, exc: Exception) -> None:
    previous = health.last_error
    delay_s = health.failed(exc, core.clock.now(), core.options.poll_interval_s)
    if health.unusable is not None:
        if core.until_idle:
            core.fail(health.unusable)  # one-shot: an unreadable source ends the run (exit 2)
        elif health.last_error != previous:
            log.warning("source unusable", strategy=strategy.name, error=health.last_error)
        return
    fields = {"strategy": strategy.name, "error": health.last_error,
              "consecutive_failures": health.failures, "retry_in_s": delay_s}
    if health.failures == 1:
        log.exception("strategy poll failed", **fields)
    else:
        log.error("strategy poll failed", **fields)


async def known_ids(core: HubCore, strategy: Strategy, items: Sequence[object]) -> set[str]:
    """The ids among ``items`` already stored for ``strategy``'s source: the bounded
    cache first, then one indexed lookup per chunk for the rest (dedup by the
    database; nothing is loaded at start-up)."""
    sources = core.book.sources.sources_of(strategy)
    cache = core.book.known
    known: set[str] = set()
    unsure: set[str] = set()
    ids = filter(None, map(item_id, items))
    if len(sources) == 1:  # the common case, on every row of every re-read
        prefix = record_key(sources[0], "")
        for rid in ids:
            (known if prefix + rid in cache else unsure).add(rid)
    else:
        for rid in ids:
            if any(record_key(source, rid) in cache for source in sources):
                known.add(rid)
            else:
                unsure.add(rid)
    if unsure:
        found = await core.store.existing_keys(sources, unsure)
        cache.update(record_key(source, rid) for source, rid in found)
        known.update(rid for _source, rid in found)
    return known


async def admit_items(core: HubCore, strategy: Strategy, items: Sequence[object]) -> int:
    """Store new records (and skipped ones) under the strategy's key, queue them,
    report skips."""
    known = await known_ids(core, strategy, items)
    admission = admit(items, known=known, default_region=core.options.default_region,
                      max_record_bytes=core.options.max_record_bytes)
    for text in admission.rejected:
        log.error("bad record from strategy", strategy=strategy.name, error=text)
    now = core.clock.now()
    ops: list[WriteOp] = []
    entries: list[RecordEntry] = []
    for record in admission.new:
        due = record.not_before_ts
        scheduled = due is not None and due > now
        entry = RecordEntry(
            record, strategy, strategy.name, strategy.key,
            "scheduled" if scheduled else "pending", next_attempt_at=due if scheduled else None,
        )
        if core.coordinator.shared:  # cluster: the database hands records out
            core.book.known.add(entry.key)
        else:
            core.book.add(entry)
            entries.append(entry)
        ops.append(
            insert_record(
                source=strategy.key, id=record.id, phone=record.phone, strategy=strategy.name,
                status=entry.status, payload=record.payload(), now=now,
                next_attempt_at=entry.next_attempt_at, campaign_id=core.watch.id,
            )
        )
    for skip in admission.skipped:
        log.warning("record skipped", record_id=skip.record.id, reason=skip.reason.value,
                    error=skip.error)
        if skip.persist:
            core.book.known.add(record_key(strategy.key, skip.record.id))
            core.book.count_terminal("skipped")
            ops.append(
                insert_record(
                    source=strategy.key, id=skip.record.id, phone=skip.record.phone,
                    strategy=strategy.name,
                    status="skipped", payload=_safe_payload(skip.record), now=now,
                    last_reason=skip.reason.value, error=skip.error, campaign_id=core.watch.id,
                )
            )
            if core.outcome_ops:  # result-webhook rows in the same commit
                skipped = Outcome(skip.record, "skipped", skip.reason, attempts=0,
                                  detail=skip.error)
                ops.extend(core.terminal_ops(skipped, strategy.key))
    ticket = None
    if ops:
        # the store numbers records in the order inserted: keep the source's row order
        rank = {record_id: i for i, record_id in enumerate(admission.order)}
        ops.sort(key=lambda op: rank.get(op.params["id"], len(rank)))
        ticket = core.store.submit(ops)
    # queued before the insert commits: a claim is written after it by the same writer
    # (so it commits with it, or later, and fails if it did), and its commit comes
    # before any dial leaves: the first dials wait for one commit, not two
    _queue(core, entries)
    if ticket is not None:
        await ticket.wait()
    for skip in admission.skipped:
        outcome = Outcome(skip.record, "skipped", skip.reason, attempts=0, detail=skip.error)
        core.notifier.terminal(outcome, strategy)
    return len(admission.new) + len(admission.skipped)


def _queue(core: HubCore, entries: list[RecordEntry]) -> None:
    """New entries into the dial queue (due now or at their time); wake the dispatcher."""
    for entry in entries:
        if entry.next_attempt_at is not None:
            core.queue.add_timed(entry.key, entry.next_attempt_at)
        else:
            core.queue.add_ready(entry.key)
    if entries:
        core.dispatch_signal.set()


def _safe_payload(record: object) -> dict[str, object]:
    try:
        payload = record.payload()  # type: ignore[attr-defined]
    except Exception:
        return {}
    return payload if isinstance(payload, dict) else {}
