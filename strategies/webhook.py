"""``WebhookStrategy``: records pushed over HTTP (a webhook-fed queue).

An HTTP intake (Starlette on uvicorn) runs inside the hub's task tree
(:meth:`serve`). A request is answered ``202`` with the record ids only once the
records are committed to the hub's store (``webhook_intake``), so an acknowledged
record survives any crash; the hub is woken at once and :meth:`poll` hands it the
accepted records, which the hub stores as its own (dedup by ``(key, id)``). Rows the
hub has stored are deleted at the next poll; after a crash the remaining ones are
handed over again and the hub ignores those it already has.

Authentication (one of): Standard Webhooks signatures (``whsec_`` secrets, several
during rotation, ±5 min timestamps) or a bearer token; see
:mod:`dispatch.strategies._webhook_app` for the refusals and their order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from dispatch.asgi import bind_socket, serve_asgi
from dispatch.clock import Clock, SystemClock
from dispatch.log import get_logger
from dispatch.records import Record
from dispatch.store import StoreError
from dispatch.strategies._webhook_app import build_app
from dispatch.strategies._webhook_auth import IntakeAuth
from dispatch.strategies._webhook_body import DEFAULT_MAX_BODY_BYTES
from dispatch.strategies._webhook_queue import prune_answers, read_intake
from dispatch.strategies._webhook_stats import WebhookStatistics
from dispatch.strategy import Strategy
from dispatch.webhooks.ops import delete_intake
from dispatch.webhooks.signing import WebhookSecret

if TYPE_CHECKING:
    from dispatch.store import Store

__all__ = ["WebhookStrategy"]

log = get_logger("dispatch.webhook")

#: records handed to the hub per poll (``has_more`` asks for the next batch at once)
_POLL_BATCH = 500
#: how often idempotency answers older than their TTL are deleted
_PRUNE_EVERY_S = 3600.0
#: how long requests in flight may finish when the hub stops
_GRACEFUL_S = 2


class WebhookStrategy(Strategy):
    """A push source: an HTTP intake on ``host:port`` for ``campaign``.

    Give ``secrets`` (Standard Webhooks ``whsec_`` secrets) or ``token`` (bearer).
    ``max_body_bytes`` (default 1 MiB) bounds a request body (413), ``max_pending``
    the records of this source waiting to be dialled (429 with ``Retry-After:
    retry_after_s`` past it). A ``webhook-id``/``Idempotency-Key`` is remembered
    ``idempotency_ttl_s`` (default 7 days, pruned at start and hourly). ``port=0``
    picks a free port (see :attr:`port`). Past ``max_connections`` open connections
    and requests, uvicorn answers ``503`` (the intake's own bound).
    Raises ``ValueError`` for bad settings (never echoing a secret).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        secrets: Sequence[WebhookSecret] = (),
        token: str | None = None,
        name: str = "webhook",
        campaign: str | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_pending: int = 10_000,
        retry_after_s: float = 5.0,
        idempotency_ttl_s: float = 7 * 86_400.0,
        max_connections: int = 256,
        default_region: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if min(max_body_bytes, max_pending, retry_after_s, idempotency_ttl_s,
               max_connections) <= 0:
            raise ValueError("max_body_bytes, max_pending, retry_after_s, "
                             "idempotency_ttl_s and max_connections must be > 0")
        if not 0 <= port < 65536:
            raise ValueError(f"webhook intake port must be 0-65535, got {port}")
        self.auth = IntakeAuth(secrets=secrets, token=token)
        self.host = host
        self._port = port
        self.name = name
        self.campaign = campaign or name
        self.max_body_bytes = max_body_bytes
        self.max_pending = max_pending
        self.retry_after_s = retry_after_s
        self.idempotency_ttl_s = idempotency_ttl_s
        self.max_connections = max_connections
        self.default_region = default_region
        self.clock: Clock = clock or SystemClock()
        self.ready = anyio.Event()
        self._stats = WebhookStatistics()
        self._store: Store | None = None
        self._wake: Callable[[], None] = lambda: None
        self._cursor = 0  # the last intake seq handed to the hub
        self._more = False

    @property
    def port(self) -> int:
        """The bound port (the real one once :attr:`ready` is set, also for ``port=0``)."""
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}/v1/records"

    def statistics(self) -> WebhookStatistics:
        """A snapshot of what the intake accepted and refused."""
        return self._stats.copy()

    # -- hooks used by the app -----------------------------------------------------------

    def store_or_fail(self) -> Store:
        if self._store is None:
            raise StoreError("the webhook intake is not attached to a running hub")
        return self._store

    def accepted(self, count: int) -> None:
        self._stats.accepted += count
        self._stats.requests_accepted += 1
        self._wake()

    def count_refusal(self, status: int) -> None:
        self._stats.refused[status] = self._stats.refused.get(status, 0) + 1

    def count_replay(self) -> None:
        self._stats.replayed += 1

    # -- Strategy ------------------------------------------------------------------------

    async def serve(
        self, store: Store, wake: Callable[[], None], *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the intake until cancelled (the hub stops)."""
        self._store, self._wake = store, wake
        await self._prune(store)  # before the first request: expired keys are forgotten
        sock = bind_socket(self.host, self._port, "webhook intake")
        try:
            async with anyio.create_task_group() as tg:
                self._port = await tg.start(functools.partial(
                    serve_asgi, build_app(self), sock, what="webhook intake",
                    graceful_s=_GRACEFUL_S, limit_concurrency=self.max_connections))
                log.info("webhook intake listening", url=self.url, auth=self.auth.mode)
                self.ready.set()
                task_status.started()
                await self._prune_forever(store)
        finally:
            self._store = None

    async def _prune(self, store: Store) -> None:
        before = self.clock.now() - self.idempotency_ttl_s
        try:
            await prune_answers(store.engine, self.key, before=before)
        except StoreError as exc:
            log.warning("idempotency keys not pruned", error=str(exc))

    async def _prune_forever(self, store: Store) -> None:
        while True:
            await anyio.sleep(_PRUNE_EVERY_S)
            await self._prune(store)

    async def poll(self) -> Sequence[Record]:
        """Accepted records not yet handed over; forget those the hub has stored."""
        store = self._store
        if store is None:
            return []
        if self._cursor:
            # the hub stored everything up to the cursor before polling again
            store.submit([delete_intake(source=self.key, upto_seq=self._cursor)])
        rows = await read_intake(store.engine, self.key, after_seq=self._cursor,
                                 limit=_POLL_BATCH)
        self._more = len(rows) == _POLL_BATCH
        records: list[Record] = []
        for seq, fields in rows:
            self._cursor = seq
            try:
                records.append(Record.model_validate(fields))
            except ValueError as exc:  # validated at intake; a hand-edited row
                log.error("unreadable intake row", seq=seq, error=str(exc))
        return records

    @property
    def has_more(self) -> bool:
        return self._more
