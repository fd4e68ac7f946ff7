"""The intake's HTTP handling (Starlette): refuse early, commit, then answer ``202``.

Order of checks, cheapest and least revealing first::

    401  bearer token / signature headers and timestamp  (before the body)
    415  Content-Type is not application/json
    413  Content-Length over the limit, or the stream passes it while read
    401  signature over the raw body
    ---  a seen webhook-id / Idempotency-Key: the first answer again, nothing enqueued
    400  malformed JSON (or not UTF-8)
    422  schema: every problem with its record index and field
    429  the campaign's pending queue is over its limit (Retry-After)
    202  committed to the store (intake rows + the idempotency answer, one commit)
"""

from __future__ import annotations

import collections
import json
from typing import TYPE_CHECKING, Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dispatch.log import get_logger
from dispatch.strategies._webhook_body import BodyTooLarge, check_declared_length, read_limited
from dispatch.strategies._webhook_queue import lookup_answer, pending_count
from dispatch.strategies._webhook_schema import BatchInvalid, parse_batch
from dispatch.webhooks.ops import insert_idempotency, insert_intake

if TYPE_CHECKING:  # avoids an import cycle with webhook.py
    from dispatch.strategies.webhook import WebhookStrategy

__all__ = ["Refused", "build_app"]

log = get_logger("dispatch.webhook")

#: idempotency answers kept in memory (the store has them all)
_CACHE_SIZE = 10_000
#: how long a backlog count read from the store is reused (accepted ones are added)
_BACKLOG_TTL_S = 0.5


class Refused(Exception):
    """An answer other than 202: ``status``, a message and optional details/headers."""

    def __init__(self, status: int, message: str, *, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": str(self)}
        if self.errors is not None:
            body["errors"] = self.errors
        return JSONResponse(body, status_code=self.status, headers=self.headers)


class IntakeHandler:
    """State of one intake: answers cache, in-flight keys, the backlog estimate."""

    def __init__(self, strategy: WebhookStrategy) -> None:
        self.strategy = strategy
        self._answers: collections.OrderedDict[str, tuple[int, dict[str, Any]]] = (
            collections.OrderedDict())
        self._inflight: dict[str, anyio.Lock] = {}
        self._backlog = 0
        self._backlog_at = float("-inf")

    async def handle(self, request: Request) -> Response:
        campaign = request.path_params.get("campaign", self.strategy.campaign)
        if campaign != self.strategy.campaign:
            return Refused(404, f"no campaign {campaign!r} at this intake").response()
        try:
            return await self._handle(request)
        except Refused as refused:
            self.strategy.count_refusal(refused.status)
            log.info("webhook refused", status=refused.status, error=str(refused),
                     strategy=self.strategy.name)
            return refused.response()

    async def _handle(self, request: Request) -> Response:
        strategy = self.strategy
        headers = request.headers
        now = strategy.clock.now()
        try:
            strategy.auth.before_body(headers, now=now)
        except Exception as exc:
            raise Refused(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise Refused(415, "Content-Type must be application/json")
        try:
            check_declared_length(headers, strategy.max_body_bytes)
            body = await read_limited(request.stream(), strategy.max_body_bytes)
        except BodyTooLarge as exc:
            raise Refused(413, str(exc)) from None
        try:
            strategy.auth.after_body(headers, body, now=now)
        except Exception as exc:
            raise Refused(401, str(exc)) from None
        key = headers.get("webhook-id") or headers.get("idempotency-key")
        if key is None:
            return await self._accept(body, None)
        lock = self._inflight.setdefault(key, anyio.Lock())
        try:
            async with lock:  # a concurrent duplicate waits for the first answer
                first = await self._answer_of(key)
                if first is not None:
                    strategy.count_replay()
                    return JSONResponse(first[1], status_code=first[0],
                                        headers={"Idempotent-Replayed": "true"})
                return await self._accept(body, key)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._inflight.pop(key, None)

    async def _answer_of(self, key: str) -> tuple[int, dict[str, Any]] | None:
        cached = self._answers.get(key)
        if cached is not None:
            return cached
        store = self.strategy.store_or_fail()
        return await lookup_answer(store.engine, self.strategy.key, key)

    def _remember(self, key: str, answer: tuple[int, dict[str, Any]]) -> None:
        self._answers[key] = answer
        while len(self._answers) > _CACHE_SIZE:
            self._answers.popitem(last=False)

    async def _accept(self, body: bytes, key: str | None) -> Response:
        strategy = self.strategy
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Refused(400, f"malformed JSON: {exc}") from None
        try:
            records = parse_batch(data, region=strategy.default_region,
                                  id_prefix=None if key is None else f"{key}-")
        except BatchInvalid as exc:
            raise Refused(422, "invalid records", errors=exc.errors) from None
        await self._check_backlog(len(records))
        now = strategy.clock.now()
        answer_body: dict[str, Any] = {"campaign": strategy.campaign,
                                       "accepted": len(records),
                                       "ids": [record.id for record in records]}
        ops = [insert_intake(source=strategy.key, record_id=record.id,
                             record=record.model_dump(mode="json", exclude={"default_region"}),
                             now=now) for record in records]
        if key is not None:
            ops.append(insert_idempotency(source=strategy.key, key=key, status_code=202,
                                          body=answer_body, now=now))
        await strategy.store_or_fail().write(ops)  # committed before anyone hears "202"
        self._backlog += len(records)
        if key is not None:
            self._remember(key, (202, answer_body))
        strategy.accepted(len(records))
        return JSONResponse(answer_body, status_code=202)

    async def _check_backlog(self, adding: int) -> None:
        strategy = self.strategy
        now = strategy.clock.now()
        if now - self._backlog_at > _BACKLOG_TTL_S:
            self._backlog = await pending_count(strategy.store_or_fail().engine, strategy.key)
            self._backlog_at = now
        if self._backlog + adding > strategy.max_pending:
            retry = str(max(1, round(strategy.retry_after_s)))
            raise Refused(429, f"campaign {strategy.campaign!r} has {self._backlog} records "
                          f"pending (limit {strategy.max_pending})",
                          headers={"Retry-After": retry})


def build_app(strategy: WebhookStrategy) -> Starlette:
    """The Starlette app of ``strategy``'s intake."""
    handler = IntakeHandler(strategy)
    return Starlette(routes=[
        Route("/v1/records", handler.handle, methods=["POST"]),
        Route("/v1/campaigns/{campaign}/records", handler.handle, methods=["POST"]),
    ])
