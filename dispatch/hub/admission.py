"""The admission step, hub side (issue 9): every record the dispatch loop takes is
asked :class:`~dispatch.compliance.Admission` before it is claimed.

- *allow*: claimed and dialled as before (the decision is stored with the record);
- *defer until T*: not an attempt (no attempt row, ``attempts`` unchanged, so no
  retry is spent): the record goes ``scheduled`` with ``next_attempt_at`` the hub-clock
  instant of T, into the queue's timed heap, so the loop sleeps until the earliest
  opening like any other due time (no busy wait, no missed wake-up);
- *skip*: terminal ``skipped`` with the decision's reason and detail.

Compliance time (:class:`ComplianceTime`) is the hub clock, except on the embedded
sandbox, where it is a simulated time that starts at a chosen instant and *jumps*
over a wait only deferrals impose (nothing live, nothing ready): the demo finishes at
any hour, and nothing real is ever dialled by it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import heapq
import itertools
import time
from collections.abc import Collection, Iterable, Mapping, Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from dispatch.clock import Clock
from dispatch.compliance import (
    Admission,
    ComplianceSettings,
    Decision,
    DialContext,
    LoadedList,
    PreviewSummary,
    SuppressionList,
    Verdict,
    default_admission,
    load_suppression_file,
    load_suppression_sql,
)
from dispatch.compliance.context import DAY_S, AttemptLog
from dispatch.log import get_logger
from dispatch.reasons import Reason
from dispatch.records import Record
from dispatch.store import compliance as store_compliance
from dispatch.strategy import Outcome

if TYPE_CHECKING:
    from dispatch.hub.core import HubCore
    from dispatch.hub.state import RecordEntry
    from dispatch.store import Store

__all__ = ["BatchAttempts", "Compliance", "ComplianceTime", "HubCompliance", "NoAttempts",
           "default_sandbox_time", "preview_records", "preview_stored", "skip_reason"]

log = get_logger("dispatch.hub")
INTERNAL_LIST = "internal"


@dataclasses.dataclass(frozen=True)
class Compliance:
    """What ``DispatchHub(compliance=...)`` takes: the policies' settings and the
    do-not-call sources. Files and queries are loaded once at ``run()`` start (in a
    worker thread); one that cannot be used stops the run before anyone is dialled
    (:class:`~dispatch.compliance.DncSourceError`).

    ``sandbox_time_s``: a simulated compliance clock starting at that instant (epoch
    seconds) and jumping over idle waits; for the embedded sandbox only (the CLI never
    sets it with a key or ``--url``). None: the hub's own clock.
    """

    settings: ComplianceSettings = dataclasses.field(default_factory=ComplianceSettings)
    dnc_lists: Sequence[SuppressionList] = ()
    dnc_files: Sequence[Path] = ()
    #: (sync SQLAlchemy URL, query whose first column is the phone)
    dnc_sql: Sequence[tuple[str, str]] = ()
    dnc_region: str | None = None
    sandbox_time_s: float | None = None


def default_sandbox_time(now_s: float) -> float:
    """Where the embedded sandbox's compliance clock starts: today (UTC) at 18:00 UTC,
    10:00 in California, 13:00 in New York, 19:00 in London."""
    today = dt.datetime.fromtimestamp(now_s, dt.UTC).date()
    return dt.datetime.combine(today, dt.time(18, 0), dt.UTC).timestamp()


class ComplianceTime:
    """Compliance time from the hub clock: the same, or (``origin_s``) simulated from
    ``origin_s`` at the first reading, plus the jumps taken."""

    def __init__(self, origin_s: float | None = None) -> None:
        self.origin_s = origin_s
        self._anchor: float | None = None
        self.jumped_s = 0.0

    @property
    def simulated(self) -> bool:
        return self.origin_s is not None

    def now(self, hub_now: float) -> float:
        if self.origin_s is None:
            return hub_now
        if self._anchor is None:
            self._anchor = hub_now
        return self.origin_s + (hub_now - self._anchor) + self.jumped_s

    def shift(self, hub_now: float) -> float:
        """Compliance time minus hub time."""
        return self.now(hub_now) - hub_now

    def to_hub(self, at_s: float, hub_now: float) -> float:
        return at_s - self.shift(hub_now)

    def jump(self, by_s: float) -> None:
        self.jumped_s += max(0.0, by_s)


class NoAttempts:
    """An :class:`AttemptLog` with no attempts (preview of a fresh file)."""

    def phone_attempts_since(self, phone: str, since_s: float) -> Sequence[float]:
        return ()

    def campaign_attempts_since(self, campaign: str, since_s: float) -> Sequence[float]:
        return ()


class _Appended(Sequence[float]):
    """``base`` (ascending times, maybe only partly known) followed by ``extra``."""

    def __init__(self, base: Sequence[float], extra: list[float]) -> None:
        self._base = base
        self._extra = extra

    def __len__(self) -> int:
        return len(self._base) + len(self._extra)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        size = len(self._base)
        return self._base[position] if position < size else self._extra[position - size]


class BatchAttempts:
    """An :class:`AttemptLog` over a batch's prefetched attempts that also counts the
    dials the batch itself allowed so far (:meth:`allowed`): a campaign cap holds
    within one claim batch too, not only between batches."""

    def __init__(self, base: AttemptLog) -> None:
        self._base = base
        self._phones: dict[str, list[float]] = {}
        self._campaign: list[float] = []

    def allowed(self, phone: str, now_s: float) -> None:
        self._phones.setdefault(phone, []).append(now_s)
        self._campaign.append(now_s)

    def phone_attempts_since(self, phone: str, since_s: float) -> Sequence[float]:
        base = self._base.phone_attempts_since(phone, since_s)
        extra = [t for t in self._phones.get(phone, ()) if t > since_s]
        return _Appended(base, extra) if extra else base

    def campaign_attempts_since(self, campaign: str, since_s: float) -> Sequence[float]:
        base = self._base.campaign_attempts_since(campaign, since_s)
        extra = [t for t in self._campaign if t > since_s]
        return _Appended(base, extra) if extra else base


class _InternalList:
    """The store's internal list as a :class:`SuppressionList`: an in-memory set kept in
    step with ``dnc_entries`` (reloaded when the table's fingerprint changes)."""

    name = INTERNAL_LIST

    def __init__(self) -> None:
        self.phones: set[str] = set()

    def contains(self, phone: str) -> bool:
        return phone in self.phones


class HubCompliance:
    """``core.compliance``: the admission step and the internal list of one hub."""

    def __init__(self, config: Compliance | None, campaign: str = "default") -> None:
        self.enabled = config is not None
        self.config = config or Compliance()
        self.settings = dataclasses.replace(self.config.settings, campaign=campaign)
        self.campaign = campaign
        self.time = ComplianceTime(self.config.sandbox_time_s)
        self.internal = _InternalList()
        self.lists: list[SuppressionList] = [self.internal, *self.config.dnc_lists]
        self.admission: Admission = default_admission(self.lists)
        self._store: Store | None = None
        self._clock: Clock | None = None
        self._fingerprint: tuple[Any, ...] | None = None
        self._waiting: list[tuple[float, int, str]] = []  # (until_s, seq, record key)
        self._seq = itertools.count()
        self.deferred = 0
        self.skipped = 0

    # -- start-up ---------------------------------------------------------------------

    async def open(self, store: Store | None, clock: Clock,
                   default_region: str | None) -> None:
        """Load the do-not-call sources (files and queries in a worker thread) and the
        internal list. Raises ``DncSourceError`` for a source that cannot be used."""
        self._store = store
        self._clock = clock
        region = self.config.dnc_region or default_region
        for path in self.config.dnc_files:
            self._loaded(await anyio.to_thread.run_sync(
                functools.partial(load_suppression_file, Path(path), default_region=region)))
        for index, (url, query) in enumerate(self.config.dnc_sql, start=1):
            self._loaded(await anyio.to_thread.run_sync(functools.partial(
                load_suppression_sql, url, query, name=f"sql#{index}", default_region=region)))
        self.admission = default_admission(self.lists)  # the policy keeps its own tuple
        await self.refresh_internal()

    async def before_resume(self, store: Store, hub_now: float) -> None:
        """Simulated time restarts at its origin each run: records an earlier run
        deferred are decided again at once instead of waiting for a stale wake-up."""
        if self.enabled and self.time.simulated:
            await store_compliance.wake_deferred(store.engine, hub_now)

    def _loaded(self, loaded: LoadedList) -> None:
        suppression = loaded.suppression
        for problem in loaded.problems[:20]:
            log.warning("do-not-call line not a number", list=suppression.name,
                        problem=str(problem))
        log.info("do-not-call list loaded", list=suppression.name, numbers=len(suppression),
                 problems=len(loaded.problems))
        self.lists.append(suppression)

    async def refresh_internal(self) -> None:
        """Re-read the internal list when another process changed it (one cheap query)."""
        if self._store is None:
            return
        fingerprint = await store_compliance.dnc_fingerprint(self._store.engine)
        if fingerprint != self._fingerprint:
            self.internal.phones = await store_compliance.dnc_phones(self._store.engine,
                                                                     self.campaign)
            self._fingerprint = fingerprint

    def summary(self) -> dict[str, Any]:
        """JSON-safe settings for the ``runs`` table (the audit of which rules a run
        dialled under; list names and sizes, never a query's URL)."""
        if not self.enabled:
            return {"enabled": False}
        settings = self.settings
        sandbox = self.config.sandbox_time_s
        return {
            "enabled": True,
            "calling_hours": settings.calling_hours.describe(),
            "fallback_zone": settings.fallback_zone,
            "state_rules": settings.state_rules is not None,
            "phone_cap": settings.phone_cap, "phone_cap_window_s": settings.phone_cap_window_s,
            "campaign_cap": settings.campaign_cap,
            "dnc_lists": [{"name": listed.name, "numbers": _size(listed)}
                          for listed in self.lists],
            "sandbox_time": None if sandbox is None else
            dt.datetime.fromtimestamp(sandbox, dt.UTC).isoformat(),
        }

    # -- opt-outs (helper `refuse` calls this from attempt.py) -----------------------

    async def add_opt_out(self, phone: str, *, campaign: str, record_id: str,
                          source: str) -> None:
        """Suppress ``phone`` in every campaign, durably (committed on return), before
        the call's outcome is settled; ``campaign`` and ``record_id`` are the audit."""
        self.internal.phones.add(phone)  # at once, even if the write is slow
        if self._store is None:
            return
        await store_compliance.dnc_add(
            self._store.engine, phone, reason="opt_out", source=f"{source} ({campaign})",
            record_id=record_id, at_s=self.time.now(self._clock.now() if self._clock else
                                                    time.time()))

    async def opt_out_sink(self, phone: str, campaign: str, record_id: str,
                           source: str) -> None:
        """:meth:`add_opt_out` in the positional shape of ``HubCore.opt_out_sink``
        (helper ``refuse``'s ``dispatch.hub.refusals.OptOutSink``)."""
        await self.add_opt_out(phone, campaign=campaign, record_id=record_id, source=source)

    # -- the dial path ------------------------------------------------------------------

    async def admit(self, core: HubCore, entries: list[RecordEntry]) -> list[RecordEntry]:
        """Decide ``entries`` (taken from the queue, phones locked); return those allowed.
        Deferred and skipped ones are settled here (phones released)."""
        if not self.enabled or not entries:
            return entries
        hub_now = core.clock.now()
        await self.refresh_internal()
        attempts = BatchAttempts(await self._attempts(core, entries, hub_now))
        now_s = self.time.now(hub_now)
        # a dial claimed ahead leaves up to ``claim_lead_s`` later: it must be allowed
        # at both ends (calling hours only change at minute edges; caps only loosen)
        last_s = self.time.now(hub_now + core.claim_lead_s) if core.claim_lead_s else now_s
        allowed: list[RecordEntry] = []
        ops = []
        for entry in entries:
            decision = self.decide(entry.record.id, entry.record.phone, entry.record.metadata,
                                   now_s, attempts)
            if decision.verdict is Verdict.ALLOW and last_s > now_s:
                decision = self.decide(entry.record.id, entry.record.phone,
                                       entry.record.metadata, last_s, attempts)
            ops.append(store_compliance.decision_op(source=entry.source, id=entry.id,
                                                    decision=decision, at_s=now_s))
            if decision.verdict is Verdict.ALLOW:
                attempts.allowed(entry.record.phone, now_s)  # counts for the next ones
                allowed.append(entry)
                continue
            core.queue.release_phone(entry.record.phone)
            if decision.verdict is Verdict.DEFER:
                ops.append(self._defer(core, entry, decision, hub_now, now_s))
            else:
                ops.extend(self._skip(core, entry, decision, hub_now))
        core.store.submit(ops)  # decisions commit with (or before) the claim batch
        if len(allowed) < len(entries):
            core.dispatch_signal.set()
            core.check_idle()
        return allowed

    def decide(self, record_id: str, phone: str, fields: Mapping[str, Any], now_s: float,
               attempts: AttemptLog) -> Decision:
        ctx = DialContext(now_s=now_s, phone=phone, record_id=record_id,
                          settings=self.settings, attempts=attempts, fields=fields)
        return self.admission.decide(ctx)

    async def _attempts(self, core: HubCore, entries: list[RecordEntry],
                        hub_now: float) -> AttemptLog:
        return await self.attempt_log(core.store.engine, {e.record.phone for e in entries},
                                      hub_now)

    async def attempt_log(self, reader: store_compliance.Reader, phones: Collection[str],
                          hub_now: float) -> AttemptLog:
        """The caps' attempts of ``phones`` (and of the campaign, when capped), read
        through ``reader``: the store's engine, or (cluster mode) the claim's own
        connection, so every node's committed attempts count."""
        settings = self.settings
        window_s = max(DAY_S, settings.phone_cap_window_s, settings.campaign_cap_window_s)
        campaign = self.campaign if settings.campaign_cap is not None else None
        return await store_compliance.attempt_window(
            reader, phones, campaign, hub_now - window_s,
            shift_s=self.time.shift(hub_now), tail=max(64, settings.campaign_cap or 0),
            campaign_since_s=hub_now - settings.campaign_cap_window_s)

    def note_internal(self, asked: Iterable[str], hits: Collection[str]) -> None:
        """Bring the internal list's cache in step with a fresh read of ``asked``
        (cluster mode reads the candidates' entries inside each claim)."""
        for phone in asked:
            if phone in hits:
                self.internal.phones.add(phone)
            else:
                self.internal.phones.discard(phone)

    def deferral_noted(self, record_id: str, phone: str, decision: Decision) -> None:
        """Count and log a deferral decided elsewhere (the cluster claim)."""
        self.deferred += 1
        until = (None if decision.until_s is None else
                 dt.datetime.fromtimestamp(decision.until_s, dt.UTC).isoformat())
        log.info("deferred", record_id=record_id, phone=phone, reason=decision.reason,
                 until=until, detail=decision.detail, simulated_time=self.time.simulated)

    def skip_outcome(self, record: Record, attempts: int, decision: Decision) -> Outcome:
        """The terminal outcome of a skip decision (the caller counts it once settled)."""
        return Outcome(record=record, status="skipped", reason=skip_reason(decision),
                       attempts=attempts, detail=decision.detail)

    def _defer(self, core: HubCore, entry: RecordEntry, decision: Decision, hub_now: float,
               now_s: float) -> Any:
        assert decision.until_s is not None
        entry.next_attempt_at = max(hub_now, self.time.to_hub(decision.until_s, hub_now))
        core.book.set_status(entry, "scheduled")
        # held here, by compliance time, not in the queue's heap of hub times: a jump of
        # simulated time moves every wake-up at once (see release_due / jump_idle)
        heapq.heappush(self._waiting, (decision.until_s, next(self._seq), entry.key))
        self.deferred += 1
        until = dt.datetime.fromtimestamp(decision.until_s, dt.UTC).isoformat()
        log.info("deferred", record_id=entry.id, phone=entry.record.phone,
                 reason=decision.reason, until=until, detail=decision.detail,
                 simulated_time=self.time.simulated)
        return entry.update_op(hub_now)

    def release_due(self, core: HubCore, hub_now: float) -> int:
        """Move deferred records whose opening has come to the ready queue."""
        now_s = self.time.now(hub_now) if self._waiting else 0.0
        moved = 0
        while self._waiting and self._waiting[0][0] <= now_s:
            _until, _seq, key = heapq.heappop(self._waiting)
            if key in core.book.entries:
                core.queue.add_ready(key)
                moved += 1
        return moved

    def next_wake_at(self, hub_now: float) -> float | None:
        """The hub-clock instant of the earliest deferral's opening (None: none)."""
        if not self._waiting:
            return None
        return max(hub_now, self.time.to_hub(self._waiting[0][0], hub_now))

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    def _skip(self, core: HubCore, entry: RecordEntry, decision: Decision,
              hub_now: float) -> list[Any]:
        reason = _reason(decision.reason)
        entry.last_reason = reason.value
        entry.error = decision.detail
        entry.next_attempt_at = None
        core.book.set_status(entry, "skipped")
        self.skipped += 1
        outcome = Outcome(record=entry.record, status="skipped", reason=reason,
                          attempts=entry.attempts, detail=decision.detail)
        core.notifier.terminal(outcome, entry.strategy)
        return [entry.update_op(hub_now), *core.terminal_ops(outcome, entry.source)]

    def jump_idle(self, core: HubCore, hub_now: float) -> bool:
        """Simulated time only: when the loop would wait for nothing but a deferral
        (nothing live, ready or parked, no earlier due retry), jump compliance time to
        the earliest opening and release what it opens. True if it did."""
        if not (self.enabled and self.time.simulated and self._waiting) or core.stopping:
            return False
        wake = self.next_wake_at(hub_now)
        due = core.queue.next_due_at()
        if (wake is None or wake <= hub_now or (due is not None and due <= wake)
                or core.queue.ready_count or core.queue.parked_count
                or core.book.live_attempts):
            return False
        self.time.jump(self._waiting[0][0] - self.time.now(hub_now))
        self.release_due(core, hub_now)
        log.info("sandbox time jumped", by_s=round(wake - hub_now, 3), to=dt.datetime.fromtimestamp(
            self.time.now(hub_now), dt.UTC).isoformat())
        return True

    # -- preview ------------------------------------------------------------------------

    def preview(self, records: Iterable[tuple[str, str, Mapping[str, Any]]], now_s: float,
                attempts: AttemptLog | None = None) -> PreviewSummary:
        return preview_records(self, records, now_s, attempts or NoAttempts())


def preview_records(compliance: HubCompliance,
                    records: Iterable[tuple[str, str, Mapping[str, Any]]], now_s: float,
                    attempts: AttemptLog) -> PreviewSummary:
    """Decide every ``(record id, phone, fields)`` at ``now_s`` without dialling."""
    summary = PreviewSummary()
    settings = compliance.settings
    decide = compliance.admission.decide
    for record_id, phone, fields in records:
        ctx = DialContext(now_s=now_s, phone=phone, record_id=record_id, settings=settings,
                          attempts=attempts, fields=fields)
        decision = decide(ctx)
        zone = ""
        if decision.verdict is Verdict.DEFER:
            try:
                zone = ctx.zones.names
            except ValueError:
                zone = ""
        summary.add(record_id, decision, zone)
    return summary


async def preview_stored(compliance: HubCompliance, store: Store, at_s: float | None,
                         hub_now: float) -> PreviewSummary:
    """:func:`preview_records` over the store's records still to dial (``pending`` and
    ``scheduled``), with their phones' recent attempts, at ``at_s`` (compliance time;
    None: now)."""
    rows = [r for r in await store.load_active() if r.status in ("pending", "scheduled")]
    now_s = compliance.time.now(hub_now) if at_s is None else at_s
    settings = compliance.settings
    window_s = max(DAY_S, settings.phone_cap_window_s, settings.campaign_cap_window_s)
    shift_s = now_s - hub_now if at_s is None else compliance.time.shift(hub_now)
    attempts = await store_compliance.attempt_window(
        store.engine, {r.phone for r in rows},
        compliance.campaign if settings.campaign_cap is not None else None,
        now_s - shift_s - window_s, shift_s=shift_s, tail=max(64, settings.campaign_cap or 0),
        campaign_since_s=now_s - shift_s - settings.campaign_cap_window_s)
    records = ((r.id, r.phone, dict(r.payload.get("metadata") or {})) for r in rows)
    return preview_records(compliance, records, now_s, attempts)


def _size(listed: SuppressionList) -> int | None:
    if isinstance(listed, _InternalList):
        return len(listed.phones)
    return len(listed) if isinstance(listed, Sized) else None


def skip_reason(decision: Decision) -> Reason:
    """The :class:`Reason` a skip decision ends its record with."""
    return _reason(decision.reason)


def _reason(text: str | None) -> Reason:
    try:
        return Reason(text or Reason.INVALID_RECORD.value)
    except ValueError:
        return Reason.INVALID_RECORD

