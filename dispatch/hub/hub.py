"""``DispatchHub``: records in, calls out, at exactly the pace allowed.

Task layout of :meth:`DispatchHub.run` (anyio structured concurrency)::

    infra task group
    ├── store writer (group commit)          - stops last
    ├── notifier (callbacks, in order)       - drained before run() returns
    └── calls task group (one task per dial) - drained / hung up on stop
        └── control scope                    - cancelled by stop() / idleness
            ├── poll loop
            └── dispatch loop
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from dispatch.clock import Clock, SystemClock
from dispatch.cluster.coordinator import is_shared_url, make_coordinator
from dispatch.cluster.options import ClusterOptions
from dispatch.compliance import ComplianceSettings, PreviewSummary
from dispatch.errors import PreflightError
from dispatch.hub import campaign_state
from dispatch.hub.admission import Compliance, HubCompliance, preview_stored
from dispatch.hub.core import HubCore, HubOptions
from dispatch.hub.dialer import Dialer
from dispatch.hub.dispatcher import dispatch_loop
from dispatch.hub.notify import MAX_PENDING_CALLBACKS, Hooks, Notifier
from dispatch.hub.polling import poll_loop
from dispatch.hub.refusals import OptOutSink
from dispatch.hub.resume import resume
from dispatch.hub.retry import RetryPolicy, resolve_retry_settings
from dispatch.hub.sources import preflight
from dispatch.hub.stats import HubStatistics, snapshot
from dispatch.log import get_logger
from dispatch.phone import is_dialable
from dispatch.records import DEFAULT_MAX_RECORD_BYTES
from dispatch.store import RunLock, Store
from dispatch.strategy import Callback, Strategy, check_unique_keys

if TYPE_CHECKING:
    from dispatch.webhooks import ResultWebhooks

__all__ = ["DispatchHub"]

log = get_logger("dispatch.hub")


class DispatchHub:
    """Dispatch records from ``strategies`` as calls through ``agent``.

    ``agent`` satisfies :class:`~dispatch.hub.dialer.Dialer` (``dispatch.sdk.Agent`` or
    ``dispatch.testing.MemoryDialer``). ``db`` is a path, an async SQLAlchemy URL or
    an open :class:`~dispatch.store.Store` (not closed by the hub).

    Guarantees: at most ``max_calls_per_minute`` dials start in any 60 s window, at
    most ``max_calls_per_second`` in any 1 s window (both on the hub's ``clock``, at the
    instant each dial frame is written: a dial leaves only with a token free then, a
    dial that never left uses none; ``pace_margin_s``, default 0, makes each dial count
    that much longer, for a carrier that counts at its edge behind a link whose delay
    varies) and at most ``max_concurrent`` calls are live; a phone never has two live
    dials; an id is dialled again only by its retry policy; a record is durably
    ``dialing`` before its dial leaves; every record ends ``completed``, ``failed`` or
    ``skipped`` with a reason.
    Callbacks that raise are logged and ignored; callbacks still running
    ``callback_drain_s`` (clock seconds) after the last call ended are cancelled so
    that :meth:`run` returns. Callbacks run in order on one task; while more than
    ``max_pending_callbacks`` events wait for them, the hub claims and polls nothing
    new (statistics say ``waiting_on="callbacks"``), so slow callbacks slow the
    campaign down instead of queueing without end. Raises ``ValueError`` for bad settings
    and :class:`~dispatch.store.StoreError` when the database fails.

    Each strategy's :attr:`~dispatch.strategy.Strategy.key` must be unique
    (``ValueError`` naming both otherwise): a record is ``(key, id)``.

    Retries have one knob: ``retry_policy=RetryPolicy(max_attempts=N)`` gives a record
    up to N dials; ``retry_attempts=K`` is shorthand for ``K + 1`` dials (see
    :func:`~dispatch.hub.retry.resolve_retry_settings`). ``max_record_bytes`` (default
    64 KiB, ``None``: no limit) bounds the serialised metadata, greeting, prompt vars
    and config of one record; a record over it is skipped ``record_too_large`` before
    anything of it is stored or sent. ``from_`` must be E.164 or a ``sip:`` URI.

    ``campaign`` names the campaign row (default: the first strategy's file stem or
    name); its state is read before claims, so ``dispatch campaign pause`` stops the
    dials of a running hub (see :mod:`dispatch.hub.campaign_state`).
    """

    def __init__(
        self,
        agent: Dialer | Any,
        strategies: Sequence[Strategy],
        from_: str | None = None,
        max_calls_per_minute: int | None = None,
        max_concurrent: int | None = None,
        retry_attempts: int | None = None,
        retry_policy: RetryPolicy | None = None,
        poll_interval_s: float = 5.0,
        db: str | os.PathLike[str] | Store = "dispatch.db",
        clock: Clock | None = None,
        default_region: str | None = None,
        dial_timeout_s: float = 70.0,
        on_dispatched: Callback | None = None,
        on_completed: Callback | None = None,
        on_failed: Callback | None = None,
        on_skipped: Callback | None = None,
        *,
        detect_turn_end: bool = False,
        claim_batch_size: int = 256,
        hangup_grace_s: float = 10.0,
        callback_drain_s: float = 30.0,
        drain_timeout_s: float | None = 600.0,
        max_record_bytes: int | None = DEFAULT_MAX_RECORD_BYTES,
        campaign: str | None = None,
        max_calls_per_second: int | None = None,
        pace_margin_s: float = 0.0,
        result_webhooks: ResultWebhooks | None = None,
        compliance: Compliance | ComplianceSettings | None = None,
        cluster: ClusterOptions | None = None,
        max_pending_callbacks: int = MAX_PENDING_CALLBACKS,
    ) -> None:
        if poll_interval_s <= 0 or dial_timeout_s <= 0 or claim_batch_size < 1:
            raise ValueError("poll_interval_s, dial_timeout_s and claim_batch_size must be > 0")
        if not 0.0 <= pace_margin_s < 60.0:
            raise ValueError(f"pace_margin_s must be >= 0 and < 60 s, got {pace_margin_s}")
        if max_pending_callbacks < 1:
            raise ValueError(f"max_pending_callbacks must be >= 1, got {max_pending_callbacks}")
        if max_record_bytes is not None and max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be >= 1 or None, got {max_record_bytes}")
        if from_ is not None and not is_dialable(from_):
            raise ValueError(f"from_ {from_!r} is not a caller id: it must be E.164 (+ and "
                             "7-15 digits) or a sip: URI")
        for name, value in (("max_calls_per_minute", max_calls_per_minute),
                            ("max_calls_per_second", max_calls_per_second),
                            ("max_concurrent", max_concurrent)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value}")
        self.agent = agent
        self.strategies = list(strategies)
        self.campaign = (campaign_state.check_campaign_id(campaign) if campaign is not None
                         else campaign_state.derive_campaign_id(self.strategies))
        check_unique_keys(self.strategies)  # records are (strategy key, id): keys must differ
        self.db = db
        self.clock: Clock = clock or SystemClock()
        retry_attempts, retry_policy = resolve_retry_settings(retry_attempts, retry_policy)
        self.options = HubOptions(
            from_=from_, max_calls_per_minute=max_calls_per_minute,
            max_concurrent=max_concurrent, retry_attempts=retry_attempts,
            retry_policy=retry_policy, poll_interval_s=poll_interval_s,
            default_region=default_region, dial_timeout_s=dial_timeout_s,
            detect_turn_end=detect_turn_end, claim_batch_size=claim_batch_size,
            hangup_grace_s=hangup_grace_s, callback_drain_s=callback_drain_s,
            drain_timeout_s=drain_timeout_s, max_record_bytes=max_record_bytes,
            max_calls_per_second=max_calls_per_second, pace_margin_s=pace_margin_s,
        )
        self.hooks = Hooks(on_dispatched, on_completed, on_failed, on_skipped)
        self.max_pending_callbacks = max_pending_callbacks
        #: signed result webhooks (outbox rows + a delivery worker)
        self.result_webhooks = result_webhooks
        # None keeps the library's old behaviour (no admission step)
        self.compliance = (Compliance(settings=compliance)
                           if isinstance(compliance, ComplianceSettings) else compliance)
        self.cluster = cluster  # cluster mode settings (a PostgreSQL store only)
        self._core: HubCore | None = None
        #: ``(phone, campaign, record_id, source)`` coroutine that adds a number to
        #: the internal do-not-call list (opt-outs, platform ``do_not_call`` refusals)
        self.opt_out_sink: OptOutSink | None = None
        self._running = False
        self._early_stop: tuple[bool, float | None] | None = None
        self._calls_done = anyio.Event()
        self._window_open = True

    # -- public API -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running

    @property
    def store(self) -> Store | None:
        """The open store while running."""
        return self._core.store if self._core is not None else None

    def statistics(self) -> HubStatistics:
        """A snapshot: counts by status, dials in the last 60 s and 1 s, limits, next dial ETA."""
        options = self._core.options if self._core is not None else self.options
        return snapshot(self._core, running=self._running, options=options,
                        campaign=self.campaign)

    # daemon hooks: config builder, schedule windows, progress heartbeat
    @classmethod
    def from_config(cls, campaign: Any, agent: Dialer | Any, **kwargs: Any) -> DispatchHub:
        """A hub for a :class:`dispatch.config.CampaignConfig` (``kwargs``: ``db``,
        ``from_``, callbacks... see :func:`dispatch.config.build.build_hub`)."""
        from dispatch.config.build import build_hub

        return build_hub(campaign, agent, **kwargs)

    def set_window_open(self, open_: bool) -> None:
        """Open or close admission for a schedule window (outside one, nobody is dialled;
        live calls continue). Takes effect at the dispatch loop's next turn."""
        self._window_open = open_
        if self._core is not None:
            self._core.watch.window_open = open_
            self._core.dispatch_signal.set()

    def apply_limits(self, limits: dict[str, int | None]) -> bool:
        """Make ``limits`` (``max_per_minute``, ``max_per_second``, ``max_concurrent``;
        ``None``: unlimited) this running hub's at once, as the campaign row's are applied
        when the hub reads it. False when the hub is not running. Live calls are never
        cut: a lower ``max_concurrent`` only holds new dials."""
        if self._core is None:
            return False
        current = self._core.options
        merged: dict[str, int | None] = {
            "max_per_minute": current.max_calls_per_minute,
            "max_per_second": current.max_calls_per_second,
            "max_concurrent": current.max_concurrent,
        }
        merged.update({k: v for k, v in limits.items() if k in merged})
        campaign_state.apply_limits(self._core, merged)
        self._core.dispatch_signal.set()
        return True

    @property
    def heartbeat(self) -> tuple[int, float]:
        """``(turns, anyio time of the last turn)`` of the dispatch loop; ``(0, 0.0)``
        before it runs. A watchdog trusts the hub only while ``turns`` advances."""
        if self._core is None:
            return 0, 0.0
        return self._core.watch.heartbeat, self._core.watch.heartbeat_at
    async def preview(self, at: float | None = None) -> PreviewSummary:
        """What the admission step would answer at ``at`` (compliance time, epoch seconds;
        default now) for every record still to dial, without dialling (issue 9).

        While running it reads the hub's records; otherwise the database's."""
        if self._core is not None and self._running:
            return await preview_stored(self._core.compliance, self._core.store, at,
                                        self.clock.now())
        compliance = HubCompliance(self.compliance or Compliance(), self.campaign)
        store, owned = await self._open_store()
        try:
            await compliance.open(store, self.clock, self.options.default_region)
            return await preview_stored(compliance, store, at, self.clock.now())
        finally:
            if owned:
                await store.close()

    def request_stop(self, drain: bool = True, timeout_s: float | None = None) -> None:
        """Like :meth:`stop` without waiting (safe from callbacks and signal handlers)."""
        if self._core is None:
            self._early_stop = (drain, timeout_s)
            return
        self._core.request_stop(drain=drain, timeout_s=timeout_s)

    async def stop(self, drain: bool = True, timeout_s: float | None = None) -> None:
        """Stop dialling and wait for live calls to settle.

        ``drain=True`` lets live calls end by themselves; past ``timeout_s`` (clock
        seconds; default: the hub's ``drain_timeout_s``, 600 s, ``None`` there means no
        limit) they are hung up. ``drain=False`` hangs them up now. Records not yet
        dialled stay ``pending``/``scheduled`` for the next run. Returns when every call
        task has settled its record (callbacks may still be delivering).
        """
        self.request_stop(drain=drain, timeout_s=timeout_s)
        if self._running:
            await self._calls_done.wait()

    async def run(self, *, until_idle: bool = False) -> None:
        r"""Run until :meth:`stop`; with ``until_idle`` also return once no record is left
        to dial and a poll found nothing new. Resumes the state in ``db`` first.

        Every strategy's :meth:`~dispatch.strategy.Strategy.preflight` runs first: a
        :class:`~dispatch.errors.PreflightError` is raised before anything is dialled
        or stored; a :class:`~dispatch.errors.SourceUnusable` too with ``until_idle``,
        while a daemon logs it once and keeps polling. Campaign-wide failures found
        later (:class:`~dispatch.errors.SourceFailing`, a refused key or caller id:
        :class:`~dispatch.errors.CampaignError`) stop dialling, drain the live calls
        and are raised then; the records they concern stay ``pending``.

        Raises :class:`~dispatch.store.StoreLocked` when another process is running a
        campaign on the same SQLite database, and other ``StoreError``\ s when the
        database cannot be opened.
        """
        if self._running:
            raise RuntimeError("DispatchHub.run() is already running")
        self._running = True
        self._calls_done = anyio.Event()
        try:
            warned = await preflight(self.strategies, until_idle=until_idle,
                                     default_region=self.options.default_region)
            store, owned = await self._open_store()
            # cluster: compliance runs inside each claim (dispatch.cluster.admit); only
            # the sandbox's simulated clock is one process's own
            if (self.compliance is not None and self.compliance.sandbox_time_s is not None
                    and is_shared_url(store.url)):
                if owned:
                    await store.close()
                raise PreflightError(
                    "--sandbox-time: the simulated compliance clock of the embedded sandbox "
                    "runs in one dispatcher only, not on a shared PostgreSQL database: pass "
                    "--sandbox-time real (compliance on the real clock) or use a SQLite --db",
                    option="--sandbox-time")
            lock = RunLock(store.url)
            shared = _shared(store)  # a daemon holds the lock and runs the writer
            try:
                if not shared:
                    lock.acquire()  # one campaign process per database (StoreLocked)
                watch = campaign_state.CampaignWatch(self.campaign,
                                                     window_open=self._window_open)
                await campaign_state.open_campaign(store, watch, self._limits(), self.clock.now(),
                                                   adopt=not shared)
                await self._run_with(store, until_idle, warned, watch)
            finally:
                lock.release()
                if owned:
                    with anyio.CancelScope(shield=True):
                        await store.close()
        finally:
            self._running = False
            self._calls_done.set()

    # -- internals --------------------------------------------------------------------

    def _limits(self) -> dict[str, int | None]:
        return {"max_per_minute": self.options.max_calls_per_minute,
                "max_per_second": self.options.max_calls_per_second,
                "max_concurrent": self.options.max_concurrent}

    async def _open_store(self) -> tuple[Store, bool]:
        if isinstance(self.db, Store):
            return self.db, False
        return await Store.open(self.db), True

    async def _run_with(self, store: Store, until_idle: bool, warned: dict[int, str],
                        watch: campaign_state.CampaignWatch) -> None:
        compliance = HubCompliance(self.compliance, self.campaign)
        if self.compliance is None:  # never a silent bypass: say it once per run
            log.warning("dial-time compliance is off: calling hours, do-not-call lists and "
                        "caps are not applied (pass compliance=ComplianceSettings(...))",
                        campaign=self.campaign)
        await compliance.open(store, self.clock, self.options.default_region)
        await compliance.before_resume(store, self.clock.now())
        core = HubCore(agent=self.agent, store=store, clock=self.clock,
                       strategies=self.strategies, options=self.options,
                       notifier=Notifier(self.hooks, max_pending=self.max_pending_callbacks),
                       until_idle=until_idle,
                       watch=watch, compliance=compliance,
                       opt_out_sink=self.opt_out_sink or compliance.opt_out_sink)
        core.coordinator = make_coordinator(store, self.campaign, self.cluster)  # cluster
        for index, text in warned.items():
            core.health[index].last_error = text  # warned once: not again for the same text
        self._core = core
        if self._early_stop is not None:
            core.request_stop(drain=self._early_stop[0], timeout_s=self._early_stop[1])
            self._early_stop = None
        status = "failed"
        try:
            shared = _shared(store)
            async with anyio.create_task_group() as infra:
                if not shared:  # a shared store's writer is run by the daemon
                    await infra.start(store.run_writer)
                await infra.start(core.notifier.run)
                webhooks = self.result_webhooks
                if webhooks is not None:
                    core.outcome_ops.append(webhooks.outcome_hook(self.campaign))
                    if webhooks.include_dispatched:
                        core.dispatch_ops.append(webhooks.dispatch_hook(self.campaign))
                    await infra.start(webhooks.run, store)
                try:
                    core.run_id = await store.start_run(
                        started_at=self.clock.now(), pid=os.getpid(),
                        config={**self.options.summary(self.strategies),
                                "compliance": compliance.summary()},
                        mark_crashed=not core.coordinator.shared)  # cluster: others run
                    await campaign_state.start(core)
                    await resume(core)
                    core.pace.sync_per_second(self.clock.now())
                    await infra.start(core.coordinator.run, core)  # cluster: heartbeat...
                    try:
                        await self._work(core)
                    finally:
                        await core.coordinator.close()
                    await campaign_state.finish(core)
                    status = "completed" if core.idle_reached else "stopped"
                    if core.fatal is not None:
                        status = "failed"
                    await core.notifier.aclose(self.clock, self.options.callback_drain_s)
                finally:
                    if webhooks is not None:
                        webhooks.close()
                    core.notifier.close()
                    if not shared:
                        store.close_writer()
        finally:
            if core.run_id is not None:
                with anyio.CancelScope(shield=True):
                    await store.end_run(core.run_id, ended_at=self.clock.now(), status=status)
        if core.fatal is not None:
            log.error("campaign stopped", error=str(core.fatal))
            raise core.fatal

    async def _work(self, core: HubCore) -> None:
        try:
            async with anyio.create_task_group() as calls:
                core.calls_tg = calls
                with anyio.CancelScope() as control:
                    core.control_scope = control
                    if core.stopping:
                        control.cancel()
                    async with anyio.create_task_group() as loops:
                        for strategy in core.strategies:  # push sources (intake)
                            await loops.start(strategy.serve, core.store, core.poll_signal.set)
                        loops.start_soon(poll_loop, core, name="dispatch poll loop")
                        loops.start_soon(dispatch_loop, core, name="dispatch loop")
                        core.check_idle()
                await self._drain(core, calls)
        finally:
            self._calls_done.set()

    async def _drain(self, core: HubCore, calls: anyio.abc.TaskGroup) -> None:
        mode = core.stop_mode
        if mode is not None and mode.drain:
            timeout_s = self.options.drain_timeout_s if mode.timeout_s is None else mode.timeout_s
            deadline = None if timeout_s is None else core.clock.now() + timeout_s
            while core.book.live_attempts and (mode.drain or core.stop_mode is None):
                if deadline is not None and core.clock.now() >= deadline:
                    break
                await core.ended_signal.wait(core.clock, deadline)
        if not core.book.live_attempts:
            return
        log.warning("hanging up live calls", count=len(core.book.live_attempts))
        async with anyio.create_task_group() as tg:
            for attempt in list(core.book.live_attempts.values()):
                if attempt.call is not None:
                    attempt.cut_by_stop = True
                    tg.start_soon(_hangup, attempt.call, attempt.record_id)
        deadline = core.clock.now() + self.options.hangup_grace_s
        while core.book.live_attempts and core.clock.now() < deadline:
            await core.ended_signal.wait(core.clock, deadline)
        calls.cancel_scope.cancel()


def _shared(store: Store) -> bool:
    """A store one daemon shares between its hubs (``dispatch.daemon.scoped``)."""
    return bool(getattr(store, "shared_by_daemon", False))


async def _hangup(call: Any, record_id: str) -> None:
    try:
        with anyio.move_on_after(5.0):
            await call.hangup()
    except Exception as exc:
        log.warning("hangup failed", record_id=record_id, error=str(exc))

