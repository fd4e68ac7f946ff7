"""What the HTTP control plane (``dispatch.control``) needs from a running daemon.

:class:`~dispatch.daemon.daemon.Daemon` satisfies :class:`ControlTarget`; the
control app is created with ``create_app(daemon, token=...)`` and served in the
daemon's task tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dispatch.config import CampaignConfig
    from dispatch.hub import DispatchHub
    from dispatch.store import Store

__all__ = ["CampaignHandle", "ControlTarget"]


class CampaignHandle(Protocol):
    """One campaign the daemon runs."""

    @property
    def id(self) -> str: ...

    @property
    def hub(self) -> DispatchHub: ...

    @property
    def store(self) -> Store:
        """The campaign's view of the shared store (its counts cover this campaign)."""
        ...

    @property
    def config(self) -> CampaignConfig: ...

    @property
    def window_open(self) -> bool:
        """Inside one of its schedule windows (or it has none)."""
        ...


class ControlTarget(Protocol):
    """The daemon as the control plane sees it."""

    def campaigns(self) -> Sequence[CampaignHandle]:
        """The campaigns running now (a removed one drops out once drained)."""
        ...

    @property
    def store(self) -> Store | None:
        """The shared store (``None`` before it is open)."""
        ...

    @property
    def draining(self) -> bool:
        """SIGTERM received: no new dials anywhere (``/readyz`` fails)."""
        ...

    @property
    def agent_registered(self) -> bool:
        """The voice connection is up and every agent registered."""
        ...

    @property
    def last_tick_at(self) -> float:
        """``anyio.current_time()`` of the dispatch loops' latest turn (``/healthz``)."""
        ...

    def request_reload(self) -> None:
        """Reload the config file as SIGHUP does (``POST /v1/reload``)."""
        ...
