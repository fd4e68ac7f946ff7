"""What the control plane steers: :class:`ControlTarget`, and :class:`HubsTarget`.

The HTTP app (:func:`dispatch.control.create_app`) never reaches into a daemon: it
asks a :class:`ControlTarget` for the open store, the campaigns this process runs
(each a :class:`CampaignHandle`: id, live statistics, a way to apply new limits)
and two flags for ``/readyz``. Pause, resume and cancel go through the campaign
row (:mod:`dispatch.store.campaigns`), which every running hub reads before it
claims, so the target needs no method for them; they also work for a campaign
that no hub of this process runs.

:class:`HubsTarget` adapts running :class:`~dispatch.hub.DispatchHub` objects
(the tests and ``dispatch serve`` use it, or their own implementation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from dispatch.hub import DispatchHub, HubStatistics
from dispatch.store import Store, StoreError

__all__ = ["CampaignHandle", "ControlTarget", "HubHandle", "HubsTarget", "Limits", "adapt"]

#: the campaign row's limit columns, as the API names them
Limits = dict[str, int | None]
LIMIT_FIELDS = ("max_per_minute", "max_per_second", "max_concurrent")


@runtime_checkable
class CampaignHandle(Protocol):
    """One campaign run by this process."""

    @property
    def campaign_id(self) -> str:
        """The campaign row's id."""

    @property
    def running(self) -> bool:
        """True while its dispatcher runs."""

    def statistics(self) -> HubStatistics:
        """A live snapshot (see :class:`~dispatch.hub.HubStatistics`)."""

    async def apply_limits(self, limits: Limits) -> bool:
        """Apply new limits to the running dispatcher (already persisted in the row).

        Returns True when they took effect now, False when the dispatcher only reads
        them from the row (e.g. on its next start). Must not raise for a stopped one.
        """


@runtime_checkable
class ControlTarget(Protocol):
    """Everything the control plane needs from the process it runs in."""

    @property
    def store(self) -> Store:
        """The open store holding the campaign rows and records."""

    def campaigns(self) -> Sequence[CampaignHandle]:
        """The campaigns this process runs (the database may hold more)."""

    @property
    def draining(self) -> bool:
        """True once the process stopped admitting (SIGTERM): ``/readyz`` fails."""

    @property
    def agent_registered(self) -> bool:
        """True while the voice server connection is up and the agent registered."""

    # Optional (looked up with getattr, so not part of the protocol): a target with
    # ``request_reload() -> None`` serves ``POST /v1/reload`` (as SIGHUP), else 501;
    # one with ``last_tick_at`` (``anyio.current_time()`` of the dispatch loops' latest
    # turn) makes ``/healthz`` fail when the loops stopped turning.


def _agent_ready(agent: Any) -> bool:
    """An SDK :class:`~dispatch.sdk.Agent` reports its registration state; a test
    dialer (no ``state``) is always ready."""
    state = getattr(agent, "state", None)
    return state is None or str(state) == "ready"


class HubHandle:
    """A :class:`CampaignHandle` over one :class:`~dispatch.hub.DispatchHub`."""

    def __init__(self, hub: DispatchHub) -> None:
        self.hub = hub

    @property
    def campaign_id(self) -> str:
        return self.hub.campaign

    @property
    def running(self) -> bool:
        return self.hub.running

    def statistics(self) -> HubStatistics:
        return self.hub.statistics()

    async def apply_limits(self, limits: Limits) -> bool:
        # DispatchHub fixes its limits for a run; a hub that can change them live
        # exposes ``apply_limits`` (the daemon's), else the row applies next start.
        method = getattr(self.hub, "apply_limits", None)
        if method is None:
            return False
        result = method(limits)
        if hasattr(result, "__await__"):
            result = await result
        return result is not False


class HubsTarget:
    """A :class:`ControlTarget` over hubs sharing one open ``store``.

    ``draining`` is set by the owner (``begin_drain()``) when it stops admitting.
    """

    def __init__(self, hubs: Sequence[DispatchHub], store: Store) -> None:
        self._handles = [HubHandle(hub) for hub in hubs]
        self._store = store
        self._draining = False

    @property
    def store(self) -> Store:
        return self._store

    def campaigns(self) -> Sequence[CampaignHandle]:
        return list(self._handles)

    @property
    def draining(self) -> bool:
        return self._draining

    def begin_drain(self) -> None:
        self._draining = True

    @property
    def agent_registered(self) -> bool:
        hubs = [handle.hub for handle in self._handles]
        return bool(hubs) and all(_agent_ready(hub.agent) for hub in hubs)


class _RunHandle:
    """A :class:`CampaignHandle` over a handle exposing ``id`` and ``hub`` (the shape of
    ``dispatch.daemon``'s campaign runs), whose hub applies the limits it reads from
    the campaign row on its own (within one state read, 0.5 s)."""

    def __init__(self, run: Any) -> None:
        self._run = run

    @property
    def campaign_id(self) -> str:
        return str(self._run.id)

    @property
    def running(self) -> bool:
        return bool(self._run.hub.running)

    def statistics(self) -> HubStatistics:
        stats: HubStatistics = self._run.hub.statistics()
        return stats

    async def apply_limits(self, limits: Limits) -> bool:
        await HubHandle(self._run.hub).apply_limits(limits)  # a live setter, if any
        return True  # the hub reads the row it was written to


class _Adapted:
    """A target whose handles have another shape, or whose store may not be open yet."""

    def __init__(self, target: Any) -> None:
        self._target = target

    @property
    def store(self) -> Store:
        store: Store | None = self._target.store
        if store is None:
            raise StoreError("the store is not open yet")
        return store

    def campaigns(self) -> Sequence[CampaignHandle]:
        return [h if isinstance(h, CampaignHandle) else _RunHandle(h)
                for h in self._target.campaigns()]

    @property
    def draining(self) -> bool:
        return bool(self._target.draining)

    @property
    def agent_registered(self) -> bool:
        return bool(self._target.agent_registered)

    def __getattr__(self, name: str) -> Any:  # the optional extras (request_reload, ...)
        return getattr(self._target, name)


def adapt(target: Any) -> ControlTarget:
    """``target`` itself when it is a :class:`HubsTarget`, else a view of it that also
    accepts campaign handles with ``id``/``hub`` and a store that is still ``None``."""
    if isinstance(target, HubsTarget):
        return target
    return _Adapted(target)


def _conforms(target: HubsTarget, handle: HubHandle, adapted: _Adapted, run: _RunHandle,
              ) -> tuple[ControlTarget, CampaignHandle, ControlTarget, CampaignHandle]:
    return target, handle, adapted, run  # mypy checks the structural matches here
