"""A result-webhook receiver over real loopback HTTP: verifies every signature with
the Standard Webhooks package and fails the first ``fail_first`` tries of each id."""

from __future__ import annotations

import contextlib
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


class _Quiet(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


class Receiver:
    def __init__(self, secret: str, *, fail_first: int = 0, fail_status: int = 503,
                 retry_after: str | None = None) -> None:
        self.verifier = Webhook(secret)
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.tries: Counter[str] = Counter()
        self.successes: Counter[str] = Counter()
        self.bodies: dict[str, dict[str, Any]] = {}
        self.bad_signatures = 0
        self.times: dict[str, list[float]] = {}
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token=s3cret-in-query"

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        try:
            self.verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.bad_signatures += 1
            return Response(status_code=401)
        msg_id = request.headers["webhook-id"]
        self.tries[msg_id] += 1
        self.times.setdefault(msg_id, []).append(anyio.current_time())
        if self.tries[msg_id] <= self.fail_first:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return Response(status_code=self.fail_status, headers=headers)
        self.successes[msg_id] += 1
        self.bodies[msg_id] = json.loads(body)
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Receiver]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        app = Starlette(routes=[Route("/hook", self.handle, methods=["POST"])])
        server = _Quiet(uvicorn.Config(app, log_level="warning", lifespan="off",
                                       timeout_graceful_shutdown=1))
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            while not server.started:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            try:
                yield self
            finally:
                server.should_exit = True
        sock.close()
