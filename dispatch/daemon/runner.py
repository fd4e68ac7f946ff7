"""One campaign inside the daemon: its hub, its store view, its schedule windows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio

from dispatch.config import CampaignConfig
from dispatch.daemon.schedule import window_state
from dispatch.daemon.scoped import CampaignStore
from dispatch.errors import CampaignError, PreflightError
from dispatch.hub import DispatchHub
from dispatch.log import get_logger
from dispatch.store import Store, StoreError

__all__ = ["CampaignRun"]

log = get_logger("dispatch.daemon")
#: longest sleep between two window checks (a wall-clock jump is noticed by then)
MAX_WINDOW_SLEEP_S = 300.0


class CampaignRun:
    """Satisfies :class:`~dispatch.daemon.target.CampaignHandle`."""

    def __init__(self, config: CampaignConfig, hub: DispatchHub, store: CampaignStore) -> None:
        self.config = config
        self.hub = hub
        self.store: Store = store
        self.window_open = True
        self.error: str | None = None
        self.done = anyio.Event()
        self._schedule_changed = anyio.Event()

    @property
    def id(self) -> str:
        return self.hub.campaign

    def update(self, config: CampaignConfig) -> None:
        """A reload's new settings (limits go through the campaign row: see the daemon)."""
        old, self.config = self.config, config
        if old.schedule != config.schedule:
            self._schedule_changed.set()

    async def run(self) -> None:
        """Run the hub (until stopped) with its window gate; never raises a campaign's
        own failure (logged and kept in ``error``: the other campaigns go on)."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._windows, name=f"windows {self.id}")
                try:
                    await self.hub.run(until_idle=False)
                except (CampaignError, PreflightError, StoreError, ValueError) as exc:
                    self.error = str(exc)
                    log.error("campaign stopped", campaign=self.id, error=str(exc))
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self.done.set()

    async def _windows(self) -> None:
        while True:
            state = window_state(self.config.schedule, dt.datetime.now(dt.UTC))
            if state.open != self.window_open or not state.open:
                log.info("schedule window " + ("open" if state.open else "closed"),
                         campaign=self.id, next_edge=None if state.next_edge is None
                         else state.next_edge.isoformat())
            self.window_open = state.open
            self.hub.set_window_open(state.open)
            wait_s = state.seconds_to_edge()
            with anyio.move_on_after(MAX_WINDOW_SLEEP_S if wait_s is None
                                     else min(wait_s + 0.01, MAX_WINDOW_SLEEP_S)):
                await self._schedule_changed.wait()
            self._schedule_changed = anyio.Event()

    def summary(self) -> str:
        stats: Any = self.hub.statistics()
        state = stats.campaign_state or "starting"
        if not self.window_open:
            state += " (outside window)"
        return (f"{self.id} {state}: {stats.live_calls} live, {stats.pending} pending, "
                f"{stats.completed} completed, {stats.failed} failed")
