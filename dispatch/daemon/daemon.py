"""``dispatch serve``: one process, one store, one voice connection, N campaigns.

Task tree (anyio)::

    daemon task group
    ├── store writer (group commit, shared by every hub)  - closed last
    ├── campaign runs (one DispatchHub + window gate each)
    ├── signals: SIGHUP reload, SIGTERM/SIGINT drain (second one: hang up now)
    ├── systemd watchdog (pings only while every dispatch loop makes progress)
    └── control plane (uvicorn, when ``dispatch.control`` is installed)

Reload (SIGHUP): ``RELOADING=1`` + ``MONOTONIC_USEC``; the file is read again; an
invalid file changes nothing (each error logged). Changed limits are written to the
campaign row, which each hub reads every 0.5 s and applies at once; schedule windows
apply at once; new campaigns start; removed campaigns drain (no new dials, live calls
finish) and stop. Other changes of a running campaign (sources, agent) are logged as
needing a restart. Then ``READY=1``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
from anyio.abc import TaskGroup

from dispatch.config import CampaignConfig, ConfigError, DispatchConfig, load_config
from dispatch.config.build import build_hub
from dispatch.daemon.notify import SystemdNotifier, watchdog_interval_s
from dispatch.daemon.runner import CampaignRun
from dispatch.daemon.scoped import CampaignStore
from dispatch.daemon.support import first_fatal, stalled, start_control
from dispatch.daemon.voice import FatalError, Voice
from dispatch.log import get_logger
from dispatch.runtime import tune_gc
from dispatch.store import RunLock, Store, StoreError, campaigns

__all__ = ["Daemon"]

log = get_logger("dispatch.daemon")


class Daemon:
    """Run ``config`` until SIGTERM; :meth:`run` returns the exit code.

    Satisfies :class:`~dispatch.daemon.target.ControlTarget`.
    """

    def __init__(self, config: DispatchConfig, *, config_path: str | os.PathLike[str] | None,
                 environ: Mapping[str, str] | None = None, tune_gc: bool = False) -> None:
        self.config = config
        #: the process is this daemon's (``serve``): tune the collector after start-up
        self.tune_gc = tune_gc
        self.config_path = None if config_path is None else Path(config_path)
        self.environ = os.environ if environ is None else environ
        self.notifier = SystemdNotifier(self.environ)
        self.runs: dict[str, CampaignRun] = {}
        self.voice: Voice | None = None
        self._store: Store | None = None
        self._tg: TaskGroup | None = None
        self._stop_requested = 0
        self._stopped = anyio.Event()
        self._reload_wanted = anyio.Event()

    # -- ControlTarget ----------------------------------------------------------------

    def campaigns(self) -> Sequence[CampaignRun]:
        return list(self.runs.values())

    @property
    def store(self) -> Store | None:
        return self._store

    @property
    def draining(self) -> bool:
        return self._stop_requested > 0

    @property
    def agent_registered(self) -> bool:
        return self.voice is not None and self.voice.registered

    @property
    def last_tick_at(self) -> float:
        """The oldest latest turn among the dispatch loops that have started (a wedged
        campaign makes the whole process look stale, as the watchdog sees it)."""
        ticks = [r.hub.heartbeat[1] for r in self.runs.values() if r.hub.heartbeat[0]]
        return min(ticks, default=0.0)

    def request_reload(self) -> None:
        self._reload_wanted.set()

    def request_stop(self, *, now: bool = False) -> None:
        """Drain every campaign (``now``: hang up on live calls)."""
        self._stop_requested += 2 if now else 1
        self._stopped.set()
        for run in self.runs.values():
            run.hub.request_stop(drain=not now and self._stop_requested == 1,
                                 timeout_s=None if now else run.config.drain_timeout_s)

    # -- lifecycle --------------------------------------------------------------------

    async def run(self) -> int:
        """Exit code: 0 after a drain, 2 configuration, 3 the voice server refused the key
        or an agent, 1 it cannot be reached (a restart may help)."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._open(stack)
                if self.tune_gc:
                    tune_gc()  # start-up done: its objects need no more scanning
                await self._serve()
        except FatalError as exc:
            return self._fatal(exc)
        except BaseExceptionGroup as group:  # raised inside the task tree
            fatal = first_fatal(group)
            if fatal is None:
                raise
            return self._fatal(fatal)
        return 0

    def _fatal(self, exc: FatalError) -> int:
        log.error("cannot run", error=str(exc), exit_code=exc.exit_code)
        self.notifier.stopping(f"failed: {exc}")
        return exc.exit_code

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        self.voice = Voice(self.config, self.environ)
        if not self.voice.embedded:
            for campaign in self.config.campaigns:
                self.voice.check(campaign)  # before opening anything
        try:
            store = await Store.open(self.config.store)
        except StoreError as exc:
            raise FatalError(f"store: {exc}", 2) from None
        stack.push_async_callback(store.close)
        lock = RunLock(store.url)
        try:
            lock.acquire()
        except StoreError as exc:
            raise FatalError(str(exc), 2) from None
        stack.callback(lock.release)
        self._store = store
        await self.voice.open(stack)
        for campaign in self.config.campaigns:
            await self.voice.agent(campaign)

    async def _serve(self) -> None:
        store = self._store
        assert store is not None
        async with anyio.create_task_group() as tg:
            self._tg = tg
            await tg.start(store.run_writer)
            async with anyio.create_task_group() as work:
                for campaign in self.config.campaigns:
                    self._start(work, campaign)
                work.start_soon(self._signals, name="daemon signals")
                work.start_soon(self._reloads, work, name="daemon reloads")
                work.start_soon(self._watchdog, name="daemon watchdog")
                work.start_soon(self._status_loop, name="daemon status")
                await start_control(work, self)
                self.notifier.ready(self.status_line())
                log.info("daemon ready", campaigns=[c.name for c in self.config.campaigns])
                await self._stopped.wait()
                self.notifier.stopping("draining: no new dials, live calls finish")
                log.warning("stopping: draining live calls (signal again to hang up now)")
                for run in list(self.runs.values()):
                    await run.done.wait()
                work.cancel_scope.cancel()
            store.close_writer()
        log.info("daemon stopped")

    def _start(self, tg: TaskGroup, campaign: CampaignConfig) -> None:
        assert self.voice is not None and self._store is not None
        view = CampaignStore(self._store, campaign.name)
        agent = self.voice.agents[campaign.agent.name]
        hub = build_hub(campaign, agent, db=view, from_=self.voice.caller_id(campaign),
                        embedded=self.voice.embedded)
        run = CampaignRun(campaign, hub, view)
        self.runs[campaign.name] = run
        tg.start_soon(self._run_campaign, run, name=f"campaign {campaign.name}")

    async def _run_campaign(self, run: CampaignRun) -> None:
        await run.run()
        if self.runs.get(run.id) is run and not self.draining:
            log.warning("campaign ended", campaign=run.id, error=run.error)

    # -- signals, reload, watchdog ----------------------------------------------------

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as sigs:
            async for signum in sigs:
                if signum == signal.SIGHUP:
                    self.request_reload()
                else:
                    self.request_stop(now=self.draining)

    async def _reloads(self, tg: TaskGroup) -> None:
        while True:
            await self._reload_wanted.wait()
            self._reload_wanted = anyio.Event()
            if not self.draining:
                await self.reload(tg)

    async def reload(self, tg: TaskGroup) -> None:
        """Apply the config file again (see the module docstring)."""
        self.notifier.reloading()
        if self.config_path is None:
            self.notifier.ready(self.status_line())
            return
        try:
            new = load_config(self.config_path, self.environ)
        except ConfigError as exc:
            for line in exc.errors:
                log.error("reload refused: invalid config", error=f"{exc.source}: {line}")
            self.notifier.ready("reload refused (invalid config); " + self.status_line())
            return
        await self._apply(tg, new)
        self.notifier.ready(self.status_line())

    async def _apply(self, tg: TaskGroup, new: DispatchConfig) -> None:
        assert self._store is not None and self.voice is not None
        for field in ("store", "log_format", "voice", "control"):
            if getattr(self.config, field) != getattr(new, field):
                log.warning("changed setting needs a restart to apply", setting=field)
        names = {c.name for c in new.campaigns}
        for name, run in list(self.runs.items()):
            if name not in names:
                log.warning("campaign removed from the config: draining it", campaign=name)
                run.hub.request_stop(drain=True, timeout_s=None)
                tg.start_soon(self._forget, run)
        for campaign in new.campaigns:
            current = self.runs.get(campaign.name)
            if current is None:
                try:
                    await self.voice.agent(campaign)
                except FatalError as exc:
                    log.error("new campaign not started", campaign=campaign.name, error=str(exc))
                    continue
                log.info("new campaign started", campaign=campaign.name)
                self._start(tg, campaign)
                continue
            run = current
            if run.config.limits != campaign.limits:
                await campaigns.ensure(self._store.engine, campaign.name,
                                       limits=campaign.limits.as_row(), now=time.time(),
                                       by=f"dispatch serve reload pid {os.getpid()}")
                log.info("campaign limits reloaded", campaign=campaign.name,
                         **campaign.limits.as_row())
            for field in ("sources", "agent", "retry", "calling_hours", "dnc", "webhooks"):
                if getattr(run.config, field) != getattr(campaign, field):
                    log.warning("changed setting needs a restart to apply", campaign=campaign.name,
                                setting=field)
            run.update(campaign)
        self.config = new

    async def _forget(self, run: CampaignRun) -> None:
        await run.done.wait()
        if self.runs.get(run.id) is run:
            del self.runs[run.id]

    async def _watchdog(self) -> None:
        interval_s = watchdog_interval_s(self.environ)
        if interval_s is None or not self.notifier.enabled:
            return
        seen: dict[str, int] = {}
        while True:
            await anyio.sleep(interval_s)
            beats = {name: run.hub.heartbeat[0] for name, run in self.runs.items()}
            stuck = stalled(seen, beats)
            seen = beats
            if stuck:
                log.error("dispatch loop made no progress: no watchdog ping", campaigns=stuck)
            else:
                self.notifier.watchdog()

    async def _status_loop(self) -> None:
        last = ""
        while True:
            await anyio.sleep(5.0)
            line = self.status_line()
            if line != last and not self.draining:
                self.notifier.status(line)
                last = line

    def status_line(self) -> str:
        parts = [run.summary() for run in self.runs.values()]
        return "; ".join(parts) if parts else "no campaigns"
