"""The hub's seam to the other dispatchers of its database (:class:`Coordinator`).

:class:`LocalCoordinator` is the SQLite single-process path: the run lock makes the
hub the only writer, memory is exact, and every hook is a no-op.
:class:`~dispatch.cluster.pg.PgCoordinator` makes the database the arbiter of
claims, rate tokens, concurrency slots and leadership. ``shared`` tells the hub
which path to take (see the ``# cluster:`` lines in ``dispatch/hub``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import anyio
from anyio.abc import TaskStatus
from sqlalchemy.engine import make_url

from dispatch.cluster.options import ClusterOptions

if TYPE_CHECKING:
    from dispatch.hub.core import HubCore
    from dispatch.hub.state import AttemptState, RecordEntry
    from dispatch.store import Store, WriteOp

__all__ = ["Coordinator", "LocalCoordinator", "is_shared_url", "make_coordinator"]


class Coordinator(Protocol):
    """What the hub asks of the other dispatchers of its database."""

    #: several processes share the database: claim through it, not from memory
    shared: bool

    async def run(self, core: HubCore, *, task_status: TaskStatus[None]) -> None:
        """Background duties (heartbeat, sweeper, wake-ups) until :meth:`close`."""
        ...

    async def close(self) -> None:
        """Leave the cluster: stop the duties, give up leases."""
        ...

    async def may_poll(self, source_key: str) -> bool:
        """Whether this process polls ``source_key`` now (holds its lease)."""
        ...

    async def polled(self, source_key: str, changed: int) -> None:
        """A poll round of ``source_key`` admitted ``changed`` records."""
        ...

    def idle(self) -> bool:
        """Nothing is left to do anywhere (cluster) -- always true locally."""
        ...

    async def claim(self, core: HubCore, room: int) -> list[tuple[RecordEntry, AttemptState]]:
        """Claim up to ``room`` due records with a token and a slot each (cluster only)."""
        ...

    def claim_retry_s(self) -> float:
        """Hub-clock seconds until a claim that found nothing is worth trying again."""
        ...

    async def before_send(self, attempt: AttemptState) -> None:
        """Right before a dial frame leaves: its token must still be fresh."""
        ...

    async def settle(self, core: HubCore, entry: RecordEntry, attempt: AttemptState,
                     ops: list[WriteOp]) -> None:
        """Persist a settled attempt; free its slot and its claim (cluster only)."""
        ...


class LocalCoordinator:
    """One process per database: nothing to coordinate."""

    shared = False

    async def run(self, core: HubCore, *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def close(self) -> None:
        return None

    async def may_poll(self, source_key: str) -> bool:
        return True

    async def polled(self, source_key: str, changed: int) -> None:
        return None

    def idle(self) -> bool:
        return True

    async def claim(self, core: HubCore, room: int) -> list[tuple[RecordEntry, AttemptState]]:
        raise RuntimeError("a local hub claims from its own queue")

    def claim_retry_s(self) -> float:
        return 0.0

    async def before_send(self, attempt: AttemptState) -> None:
        return None

    async def settle(self, core: HubCore, entry: RecordEntry, attempt: AttemptState,
                     ops: list[WriteOp]) -> None:
        raise RuntimeError("a local hub settles through its writer")


def is_shared_url(url: str) -> bool:
    """Whether a store URL names a server database that several processes may share."""
    return make_url(url).get_backend_name() == "postgresql"


def make_coordinator(store: Store, campaign_id: str,
                     options: ClusterOptions | None) -> Coordinator:
    """The coordinator for ``store``: PostgreSQL → cluster mode, else local."""
    if not is_shared_url(store.url):
        return LocalCoordinator()
    from dispatch.cluster.pg import PgCoordinator

    return PgCoordinator(store, campaign_id, options or ClusterOptions())
