"""``ResultWebhooks``: signed POSTs of every terminal outcome, through a durable outbox.

The hub calls :meth:`ResultWebhooks.outcome_hook`'s function while settling a record:
it returns one outbox row per endpoint, committed in the same transaction as the
outcome (so an outcome is never stored without its webhooks, nor the reverse). The
delivery worker (:meth:`run`, in the hub's task tree) sends due rows with bounded
concurrency and timeouts; a row keeps its ``webhook-id`` on every retry. Outcomes:
2xx -> ``delivered``; ``410`` -> the endpoint is disabled (its rows ``disabled``);
anything else (or no answer) -> retried with exponential backoff and jitter,
honouring ``Retry-After``, until ``retry_for_s`` after the outcome -> ``failed``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio
import httpx
from anyio.abc import TaskStatus

from dispatch.clock import Clock, SystemClock
from dispatch.log import get_logger
from dispatch.store import WriteOp
from dispatch.webhooks import outbox
from dispatch.webhooks.backoff import parse_retry_after, retry_delay_s
from dispatch.webhooks.ops import insert_outbox
from dispatch.webhooks.payload import dispatched_body, outcome_body
from dispatch.webhooks.signing import WebhookSecret, sign

if TYPE_CHECKING:
    from dispatch.hub.core import DispatchOps, OutcomeOps
    from dispatch.records import Record
    from dispatch.store import Store
    from dispatch.strategy import Outcome

__all__ = ["DeliveryStatistics", "Endpoint", "ResultWebhooks"]

log = get_logger("dispatch.webhooks")

#: how long recording a delivery's result may hold up a stopping hub
_BOOKKEEPING_S = 5.0


class _RedactQuery(logging.Filter):
    """httpx logs every request's URL at INFO: drop the query (it may hold a token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(a, httpx.URL) and a.query for a in record.args
        ):
            record.args = tuple(a.copy_with(query=b"redacted")
                                if isinstance(a, httpx.URL) and a.query else a
                                for a in record.args)
        return True


_REDACT = _RedactQuery()


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """A URL to POST results to, signed with ``secret``."""

    url: str
    secret: WebhookSecret = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        parsed = httpx.URL(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"result webhook URL must be http(s)://host/..., got {self.url!r}")


@dataclasses.dataclass(slots=True)
class DeliveryStatistics:
    """What the worker did in this run."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: int = 0


class ResultWebhooks:
    """Result webhooks to ``endpoints``; give it to ``DispatchHub(result_webhooks=...)``.

    ``timeout_s`` bounds one POST (connect + answer), ``max_concurrency`` the POSTs in
    flight, ``retry_for_s`` how long after the outcome a row is still retried,
    ``base_delay_s``/``max_delay_s`` the backoff; ``include_dispatched`` also POSTs a
    ``record.dispatched`` event when each dial leaves. ``transport`` is the httpx seam
    (``httpx.MockTransport`` in tests); ``clock`` the time source.
    """

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        *,
        timeout_s: float = 15.0,
        max_concurrency: int = 4,
        retry_for_s: float = 24 * 3600.0,
        base_delay_s: float = 5.0,
        max_delay_s: float = 3600.0,
        poll_interval_s: float = 0.5,
        include_dispatched: bool = False,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("result webhooks need at least one endpoint")
        if min(timeout_s, retry_for_s, base_delay_s, max_delay_s, poll_interval_s) <= 0:
            raise ValueError("result webhook timeouts and delays must be > 0")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        self.endpoints = {endpoint.url: endpoint for endpoint in endpoints}
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self.retry_for_s = retry_for_s
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.poll_interval_s = poll_interval_s
        self.include_dispatched = include_dispatched
        self.clock: Clock = clock or SystemClock()
        self._transport = transport
        self._rng = rng or random.Random()
        self._wake = anyio.Event()
        self._scope: anyio.CancelScope | None = None
        self._inflight: set[str] = set()
        self._settled: set[str] = set()
        self._disabled: set[str] = set()
        self.stats = DeliveryStatistics()

    # -- the outbox rows (called by the hub while it settles a record) -------------------

    def outcome_hook(self, campaign: str) -> OutcomeOps:
        """The function the hub calls for each terminal outcome of ``campaign``."""

        def ops(outcome: Outcome, source: str, duration_s: float | None) -> list[WriteOp]:
            body = outcome_body(outcome, campaign=campaign, source=source,
                                duration_s=duration_s, at=time.time())
            return self._rows(f"record.{outcome.status}", body)

        return ops

    def dispatch_hook(self, campaign: str) -> DispatchOps:
        """The function the hub calls when a dial of ``campaign`` leaves."""

        def ops(record: Record, source: str, call_id: str, attempt_no: int) -> list[WriteOp]:
            body = dispatched_body(record, campaign=campaign, source=source, call_id=call_id,
                                   attempt_no=attempt_no, at=time.time())
            return self._rows("record.dispatched", body)

        return ops

    def _rows(self, event: str, body: str) -> list[WriteOp]:
        self._wake.set()
        created = self.clock.now()
        return [insert_outbox(id=f"msg_{uuid.uuid4().hex}", url=url, event=event, body=body,
                              now=created)
                for url in self.endpoints if url not in self._disabled]

    # -- the worker -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker (undelivered rows stay in the outbox for the next run)."""
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, store: Store, *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver due rows until :meth:`close` (or cancellation)."""
        httpx_log = logging.getLogger("httpx")
        if _REDACT not in httpx_log.filters:
            httpx_log.addFilter(_REDACT)
        with anyio.CancelScope() as scope:
            self._scope = scope
            self._disabled = await outbox.disabled_urls(store.engine)
            limits = httpx.Limits(max_connections=self.max_concurrency)
            async with httpx.AsyncClient(transport=self._transport, limits=limits,
                                         timeout=httpx.Timeout(self.timeout_s)) as client:
                task_status.started()
                await self._loop(store, client)

    async def _loop(self, store: Store, client: httpx.AsyncClient) -> None:
        slots = anyio.CapacityLimiter(self.max_concurrency)
        async with anyio.create_task_group() as tg:
            while True:
                free = self.max_concurrency - len(self._inflight)
                if free > 0:
                    # a row settled while this read ran may come back in its old state
                    self._settled.clear()
                    due = await outbox.due_rows(store.engine, now=self.clock.now(),
                                                limit=free, exclude=self._inflight)
                    for row in due:
                        if row.id in self._settled or row.id in self._inflight:
                            continue
                        self._inflight.add(row.id)
                        tg.start_soon(self._deliver_guarded, store, client, row, slots)
                with anyio.move_on_after(self.poll_interval_s):
                    await self._wake.wait()
                if self._wake.is_set():
                    self._wake = anyio.Event()

    async def _deliver_guarded(self, store: Store, client: httpx.AsyncClient,
                               row: outbox.Due, slots: anyio.CapacityLimiter) -> None:
        try:
            async with slots:
                await self._deliver(store, client, row)
        except Exception as exc:  # a store failure: the row stays pending for later
            log.error("result webhook bookkeeping failed", webhook_id=row.id, error=str(exc))
        finally:
            self._inflight.discard(row.id)
            self._settled.add(row.id)
            self._wake.set()

    async def _deliver(self, store: Store, client: httpx.AsyncClient, row: outbox.Due) -> None:
        endpoint = self.endpoints.get(row.url)
        if endpoint is None or row.url in self._disabled:
            why = "endpoint disabled (410)" if row.url in self._disabled else "not configured"
            await outbox.update_row(store.engine, row.id, status="disabled", last_error=why)
            return
        stamp = int(time.time())
        headers = {"webhook-id": row.id, "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(endpoint.secret, row.id, stamp, row.body),
                   "content-type": "application/json", "user-agent": "dispatch-webhooks"}
        attempts = row.attempts + 1
        code: int | None = None
        retry_after: float | None = None
        try:
            response = await client.post(row.url, content=row.body.encode(), headers=headers)
            code = response.status_code
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=time.time())
            error = None if 200 <= code < 300 else f"HTTP {code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}"  # never the URL's query (it may hold a token)
        # what the endpoint answered is recorded even when the hub is stopping (a
        # delivered row left pending would be sent again by the next run)
        with anyio.CancelScope(shield=True), anyio.move_on_after(_BOOKKEEPING_S):
            await self._settle(store, row, attempts, code, error, retry_after)

    async def _settle(self, store: Store, row: outbox.Due, attempts: int, code: int | None,
                      error: str | None, retry_after: float | None) -> None:
        done_at = self.clock.now()
        if error is None:
            self.stats.delivered += 1
            await outbox.update_row(store.engine, row.id, status="delivered", attempts=attempts,
                                    last_attempt_at=done_at, last_status_code=code,
                                    last_error=None, delivered_at=done_at)
            return
        if code == 410:
            await self._disable(store, row.url, done_at)
            return
        await self._reschedule(store, row, attempts, code, error, retry_after, done_at)

    async def _disable(self, store: Store, url: str, now: float) -> None:
        self._disabled.add(url)
        count = await outbox.disable_endpoint(store.engine, url, now=now,
                                              reason="endpoint answered 410 Gone")
        self.stats.disabled += count
        log.warning("result webhook endpoint disabled (410)", endpoint=_safe_url(url),
                    rows=count)

    async def _reschedule(self, store: Store, row: outbox.Due, attempts: int, code: int | None,
                          error: str, retry_after: float | None, now: float) -> None:
        delay = retry_delay_s(attempts, base_s=self.base_delay_s, max_s=self.max_delay_s,
                              rng=self._rng)
        if retry_after is not None and math.isfinite(retry_after):
            delay = max(delay, retry_after)
        if now + delay > row.created_at + self.retry_for_s:
            self.stats.failed += 1
            await outbox.update_row(store.engine, row.id, status="failed", attempts=attempts,
                                    last_attempt_at=now, last_status_code=code,
                                    last_error=f"gave up: {error}")
            log.error("result webhook given up", webhook_id=row.id, error=error,
                      attempts=attempts)
            return
        self.stats.retried += 1
        await outbox.update_row(store.engine, row.id, attempts=attempts, last_attempt_at=now,
                                last_status_code=code, last_error=error,
                                next_attempt_at=now + delay)
        log.info("result webhook retry", webhook_id=row.id, error=error, retry_in_s=delay)


def _safe_url(url: str) -> str:
    """``scheme://host/path`` without user info or query (either may hold a secret)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}{':' + str(parsed.port) if parsed.port else ''}" \
           f"{parsed.path}"
