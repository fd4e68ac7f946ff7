"""``Pinecall``: one socket to the voice server, multiplexing any number of agents.

Lifecycle: ``connect()`` opens the socket and completes the handshake (or raises);
a supervisor task then serves it, and on a drop settles everything that depended on
it (pending dials raise :class:`ConnectionLost`, live calls end ``disconnected``),
then reconnects with backoff and re-registers every agent. Frames are never queued
across connections. All tasks live in task groups owned by the client.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
from anyio.abc import TaskGroup

from dispatch.log import get_logger, register_secret
from dispatch.sdk.agent import Agent
from dispatch.sdk.backoff import ConflictBackoff
from dispatch.sdk.call import Call
from dispatch.sdk.calls_api import CallsApi
from dispatch.sdk.dialing import DialBook, PendingDial
from dispatch.sdk.emitter import AsyncFn, Emitter, Handler
from dispatch.sdk.errors import ConfigurationError, NotConnected, PinecallError
from dispatch.sdk.registration import AGENT_FIELDS, validate_phone_numbers
from dispatch.sdk.requests import RequestBook
from dispatch.sdk.router import Router
from dispatch.sdk.session import Session
from dispatch.sdk.supervisor import Supervisor
from dispatch.sdk.tools import Tool
from dispatch.sdk.transport import Transport
from dispatch.sdk.wire import encode

__all__ = ["DEFAULT_URL", "Pinecall", "endpoint_url"]

DEFAULT_URL = "wss://voice.pinecall.io"
_log = get_logger("dispatch.sdk")


def endpoint_url(base: str) -> str:
    """``https://host/`` -> ``wss://host/client`` (protocol §1.1)."""
    url = base.strip().rstrip("/")
    if url.startswith("http://") or url.startswith("https://"):
        url = "ws" + url[4:]
    return url if url.endswith("/client") else url + "/client"


class Pinecall:
    """Client of the Pinecall ``/client`` WebSocket.

    ``api_key`` defaults to ``$PINECALL_API_KEY``; it is registered as a secret and
    never appears in logs, reprs or errors. Use ``async with Pinecall(...) as pc`` or
    ``await pc.connect()`` ... ``await pc.close()`` from the same task.

    Client events (``pc.on(name, handler)``, sync or async, payload in brackets):
    ``connected`` ({org_id, reconnect}), ``disconnected`` ({code, reason, call_ids,
    dials_failed}), ``reconnecting`` ({attempt, delay_s}), ``error`` (a PinecallError),
    ``call.dialing`` / ``call.started`` / ``call.ended`` (the Call), ``agent.displaced``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        url: str = DEFAULT_URL,
        *,
        auto_reconnect: bool = True,
        transport: Transport | None = None,
        connect_timeout_s: float = 10.0,
        handshake_timeout_s: float = 10.0,
        ping_interval_s: float = 30.0,
        pong_timeout_s: float = 60.0,
        reconnect_base_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        dial_ready_wait_s: float = 30.0,
        request_timeout_s: float = 10.0,
        conflict_retry_budget_s: float = 90.0,
        conflict_base_delay_s: float = 5.0,
        close_grace_s: float = 1.0,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("PINECALL_API_KEY", "")
        register_secret(key)
        self._api_key = key
        self.url = endpoint_url(url)
        self.auto_reconnect = auto_reconnect
        if transport is None:
            from dispatch.sdk.ws import WebSocketTransport

            transport = WebSocketTransport()
        self.transport: Transport = transport
        self.connect_timeout_s = connect_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self.ping_interval_s = ping_interval_s
        self.pong_timeout_s = pong_timeout_s
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_max_s = reconnect_max_s
        self.dial_ready_wait_s = dial_ready_wait_s
        self.conflict_retry_budget_s = conflict_retry_budget_s
        self.conflict_base_delay_s = conflict_base_delay_s
        self.close_grace_s = close_grace_s
        self.agents: dict[str, Agent] = {}
        self.calls: dict[str, Call] = {}  # live or dialing, by call id
        self.book = DialBook()
        self.requests = RequestBook(request_timeout_s)
        self.session: Session | None = None
        self.org_id: str | None = None
        self.events = Emitter(self.spawn, "client")
        self._router = Router(self)
        self._supervisor = Supervisor(self)
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._closed = False
        self._attempts = itertools.count(1)
        self._attempt_prefix = secrets.token_hex(4)
        self._running_handlers = 0
        self._handlers_idle = anyio.Event()
        self._calls_api: CallsApi | None = None

    def __repr__(self) -> str:
        return f"<Pinecall {self.url} {self.state}>"

    # -- public API ---------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``idle``, ``connecting``, ``connected``, ``reconnecting``, ``closed`` or ``failed``."""
        return "closed" if self._closed and self._stack is None else self._supervisor.state

    @property
    def online(self) -> bool:
        """True while a socket is connected (handshake done) and open."""
        return self.session is not None and self.session.open

    @property
    def calls_api(self) -> CallsApi:
        """The call-log REST client on this socket's host, with the same key (what
        became of a call: ``await pc.calls_api.state(call_id)``)."""
        if self._calls_api is None:
            self._calls_api = CallsApi(self.url, self._api_key)
        return self._calls_api

    def on(self, name: str, handler: Handler) -> Handler:
        """Subscribe ``handler(payload)`` to a client event (see the class docstring)."""
        return self.events.on(name, handler)

    def agent(
        self,
        agent_id: str,
        *,
        phone_number: str | list[str] | None = None,
        tools: list[Tool] | None = None,
        extra: dict[str, Any] | None = None,
        **config: Any,
    ) -> Agent:
        """Declare an agent (idempotent by id: the same id returns the same :class:`Agent`).

        ``config`` takes ``voice``, ``language``, ``flash``, ``stt``, ``interruption``,
        ``llm``, ``prompt``, ``prompt_vars``, ``greeting``, ``greeting_in_chat``,
        ``memory``, ``timezone``, ``preparing``, ``raw_prompt``, ``skills``,
        ``session_limits``, ``config``, ``knowledge_base``, ``mode``, ``media``,
        ``allowed_origins``; ``extra`` adds raw wire keys. Unset keys are not sent.
        Registered at once when connected, else on connection. Raises
        :class:`ConfigurationError` for an unknown keyword or a non-E.164 phone number.
        """
        existing = self.agents.get(agent_id)
        if existing is not None:
            return existing
        unknown = set(config) - set(AGENT_FIELDS) - {"tools"}
        if unknown or not agent_id:
            raise ConfigurationError(f"invalid agent arguments: {sorted(unknown) or 'agent_id'}")
        numbers = validate_phone_numbers(phone_number)
        agent = Agent(self, agent_id, {**config, "extra": dict(extra or {})}, numbers,
                      {t.name: t for t in tools or ()})
        try:
            encode(agent.create_frame())
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"agent {agent_id!r} config is not JSON: {exc}") from exc
        self.agents[agent_id] = agent
        self._router.index_agent(agent)
        if self.online:
            agent.register()
        return agent

    async def connect(self) -> Pinecall:
        """Connect and authenticate (idempotent: returns at once when connected).

        Raises :class:`AuthenticationError` (``code`` from the server, not retried),
        :class:`ConnectTimeout`, :class:`PinecallConnectionError`, or
        :class:`NotConnected` once closed. After a first success, drops are retried in
        the background (``auto_reconnect``).
        """
        if self._closed:
            raise NotConnected("client is closed")
        if self._stack is None:
            stack = AsyncExitStack()
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            self._stack = stack
            self._supervisor.start(self._tg)
        try:
            await self._supervisor.wait_first_outcome()
        except BaseException:
            await self._shutdown_group()
            raise
        return self

    async def close(self) -> None:
        """Close the socket (code 1000 ``client_disconnect``); settle every dial and call.

        Must run in the task that called :meth:`connect`. Idempotent.
        """
        self._closed = True
        if self._calls_api is not None:
            await self._calls_api.aclose()
        if self._stack is None:
            return
        await self._supervisor.stop()
        with anyio.move_on_after(self.close_grace_s):
            while self._running_handlers:
                await self._handlers_idle.wait()
        await self._shutdown_group()

    async def __aenter__(self) -> Pinecall:
        return await self.connect()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # -- internal services (agents, calls, router, supervisor) ---------------------------

    def now(self) -> float:
        return time.time()

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame on the live socket; raises :class:`NotConnected` when offline."""
        session = self.session
        if session is None or not session.open:
            raise NotConnected(f"not connected; {frame.get('event')} not sent")
        try:
            session.send(frame)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{frame.get('event')} is not JSON: {exc}") from exc

    send_for_call = send

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        return await self.requests.request(self, frame)

    def submit_dial(self, dial: PendingDial) -> None:
        session = self.session
        if session is None or not session.open:
            raise NotConnected(f"not connected; dial to {dial.to} not sent")
        try:
            session.send_dial(dial)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"dial metadata/config is not JSON: {exc}") from exc

    def give_up(self, dial: PendingDial, error: PinecallError) -> None:
        """The dial's caller stopped waiting: fail it, and hang up its call if it has one."""
        dial.abandoned = True
        dial.fail(error)
        call = dial.call
        if call is not None and not call.ended:
            self.hangup_quietly(call.id)

    def hangup_quietly(self, call_id: str) -> None:
        try:
            self.send({"event": "call.hangup", "call_id": call_id})
        except NotConnected:
            pass

    def new_attempt_id(self) -> str:
        return f"da_{self._attempt_prefix}_{next(self._attempts)}"

    def new_conflict_backoff(self) -> ConflictBackoff:
        return ConflictBackoff(budget_s=self.conflict_retry_budget_s,
                               base_delay_s=self.conflict_base_delay_s)

    def raise_if_unusable(self) -> None:
        """Raise the client's terminal error (closed, auth refused, displaced)."""
        self._supervisor.raise_if_unusable()

    def route(self, frame: dict[str, Any]) -> None:
        self._router.route(frame)

    def emit_call_event(self, name: str, call: Call) -> None:
        """Emit ``name`` (``call.dialing``/``call.started``/``call.ended``) on the call's
        agent and on the client."""
        agent = self.agents.get(call.agent_id)
        if agent is not None:
            agent.events.emit(name, call)
        self.events.emit(name, call)

    def spawn(self, fn: AsyncFn) -> None:
        """Run ``fn`` in the client's task group (user handlers); never raises."""
        if self._tg is None:
            _log.warning("client not running; async handler dropped")
            return
        self._running_handlers += 1
        self._tg.start_soon(self._run_handler, fn)

    async def _run_handler(self, fn: AsyncFn) -> None:
        try:
            await fn()
        except Exception:
            _log.exception("background task failed")
        finally:
            self._running_handlers -= 1
            if not self._running_handlers:
                idle, self._handlers_idle = self._handlers_idle, anyio.Event()
                idle.set()

    def spawn_in_session(self, fn: AsyncFn) -> None:
        """Run ``fn`` for the life of the current connection (dropped when offline)."""
        if self.session is not None:
            self.session.spawn(fn)

    async def _shutdown_group(self) -> None:
        stack, self._stack = self._stack, None
        if self._tg is not None:
            self._tg.cancel_scope.cancel()
        self._tg = None
        if stack is not None:
            await stack.aclose()
