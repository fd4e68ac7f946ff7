"""Lifecycle callbacks, run by one task so that they never hold up dialling.

Events are delivered in the order they happened (``on_dispatched`` of a record
always before its terminal callback). For a terminal outcome the order is:
``strategy.record_outcome(outcome)``, then the strategy's hook, then the hub's.
A callback that raises is logged with the record id and skipped.

The queue has a bound: once ``max_pending`` events wait (slow callbacks), the
hub's loops wait in :meth:`Notifier.room` before they claim or poll again, so no
new dial starts and no new page is read until the callbacks have caught up to three
quarters of it (so that a steady slow callback makes episodes, each logged once, not
a wait and a warning per event). What is
already in flight still queues its events (at most two per live call, plus one
step of a loop), so the queue never holds more than the bound plus that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any

import anyio
from anyio.abc import TaskStatus

from dispatch.clock import Clock
from dispatch.hub.waiting import wait_event_until
from dispatch.log import get_logger
from dispatch.records import Record
from dispatch.strategy import Callback, Outcome, RecordFailed, Strategy, call_maybe_async
from dispatch.streams import bursts

__all__ = ["MAX_PENDING_CALLBACKS", "Hooks", "Notifier"]

log = get_logger("dispatch.hub")

#: events waiting for delivery past which the hub stops claiming and polling
MAX_PENDING_CALLBACKS = 10_000


@dataclasses.dataclass(frozen=True, slots=True)
class Hooks:
    """Hub-level callbacks (same signatures as the strategy attributes)."""

    on_dispatched: Callback | None = None
    on_completed: Callback | None = None
    on_failed: Callback | None = None
    on_skipped: Callback | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Dispatched:
    record: Record
    strategy: Strategy | None
    call: Any


@dataclasses.dataclass(frozen=True, slots=True)
class _Terminal:
    outcome: Outcome
    strategy: Strategy | None
    error: BaseException | None


_Event = _Dispatched | _Terminal


class Notifier:
    """Queue of lifecycle events and the task that delivers them."""

    def __init__(self, hooks: Hooks, *, max_pending: int = MAX_PENDING_CALLBACKS) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self._hooks = hooks
        self.max_pending = max_pending
        #: once full, the loops go on when fewer than this wait
        self.resume_below = max(1, max_pending * 3 // 4)
        # the buffer itself need not refuse: its producers wait in room() (module doc)
        self._send, self._receive = anyio.create_memory_object_stream[_Event](math.inf)
        self.pending = 0
        self.errors = 0
        #: times a loop had to wait for the callbacks (statistics)
        self.full_waits = 0
        self._room: anyio.Event | None = None
        self._behind = False
        self._scope = anyio.CancelScope()
        self._finished = anyio.Event()

    def dispatched(self, record: Record, strategy: Strategy | None, call: Any) -> None:
        if self._hooks.on_dispatched is None and (
                strategy is None or strategy.on_dispatched is None):
            return  # nobody listens: not queued (one wake-up of the delivery task less)
        self._put(_Dispatched(record, strategy, call))

    def terminal(
        self, outcome: Outcome, strategy: Strategy | None, error: BaseException | None = None
    ) -> None:
        self._put(_Terminal(outcome, strategy, error))

    def _put(self, event: _Event) -> None:
        self.pending += 1
        try:
            self._send.send_nowait(event)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.pending -= 1
            log.warning("callback dropped after shutdown", kind=type(event).__name__)

    @property
    def full(self) -> bool:
        """``max_pending`` events or more wait for delivery, or the loops wait for the
        queue to fall under :attr:`resume_below`."""
        return self._behind or self.pending >= self.max_pending

    async def room(self) -> None:
        """Return at once unless :attr:`full`; else wait until the delivery task has
        brought the queue under :attr:`resume_below` (or has finished). Every loop
        waits out the same episode: none goes on while another still waits."""
        if not self.full or self._finished.is_set():
            return
        self.full_waits += 1
        if not self._behind:  # once per episode, however many loops wait
            self._behind = True
            log.warning("callbacks are behind: no new dial or poll until they catch up",
                        pending=self.pending, max_pending=self.max_pending)
        while self.pending >= self.resume_below and not self._finished.is_set():
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def close(self) -> None:
        """No more events; :meth:`run` returns once the queue is delivered."""
        self._send.close()

    async def aclose(self, clock: Clock, timeout_s: float) -> None:
        """:meth:`close`, then wait up to ``timeout_s`` (clock seconds) for delivery.

        A callback that never returns must not keep the hub from returning: past the
        timeout the delivery task is cancelled and what is left is dropped (logged).
        """
        self.close()
        await wait_event_until(self._finished, clock, clock.now() + timeout_s)
        if not self._finished.is_set():
            log.error("callbacks still running at shutdown; dropped", pending=self.pending)
            self._scope.cancel()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            with self._scope:
                await self._deliver_all()
        finally:
            self._finished.set()
            self._wake_room()

    async def _deliver_all(self) -> None:
        # a turn of the loop per event would cost more than most callbacks
        async with self._receive, contextlib.aclosing(bursts(self._receive)) as events:
            async for event in events:
                await self._deliver(event)

    async def _deliver(self, event: _Event) -> None:
        try:
            if isinstance(event, _Dispatched):
                await self._deliver_dispatched(event)
            else:
                await self._deliver_terminal(event)
        finally:
            self.pending -= 1
            if self.pending < self.resume_below:
                self._behind = False
                self._wake_room()

    def _wake_room(self) -> None:
        room, self._room = self._room, None
        if room is not None:
            room.set()

    async def _safe(self, name: str, record_id: str, fn: Callback | None, *args: Any) -> None:
        if fn is None:
            return
        try:
            await call_maybe_async(fn, *args)
        except Exception as exc:
            self.errors += 1
            log.exception("callback raised", callback=name, record_id=record_id, error=str(exc))

    async def _deliver_dispatched(self, event: _Dispatched) -> None:
        rid = event.record.id
        if event.strategy is not None:
            hook = event.strategy.on_dispatched
            await self._safe("strategy.on_dispatched", rid, hook, event.record, event.call)
        await self._safe("on_dispatched", rid, self._hooks.on_dispatched, event.record, event.call)

    async def _deliver_terminal(self, event: _Terminal) -> None:
        outcome, strategy = event.outcome, event.strategy
        rid = outcome.record.id
        if strategy is not None:
            await self._safe("strategy.record_outcome", rid, strategy.record_outcome, outcome)
        args = self._hook_args(event)
        name = {"completed": "on_completed", "failed": "on_failed", "skipped": "on_skipped"}[
            outcome.status
        ]
        if strategy is not None:
            await self._safe(f"strategy.{name}", rid, getattr(strategy, name), *args)
        await self._safe(name, rid, getattr(self._hooks, name), *args)

    @staticmethod
    def _hook_args(event: _Terminal) -> tuple[Any, ...]:
        outcome = event.outcome
        if outcome.status == "completed":
            return (outcome.record, outcome.call_id, outcome.reason)
        if outcome.status == "failed":
            error = RecordFailed(
                outcome.record.id,
                outcome.reason,
                attempts=outcome.attempts,
                detail=outcome.detail,
                last_error=event.error,
            )
            return (outcome.record, error)
        return (outcome.record, outcome.reason)
