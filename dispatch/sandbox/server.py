"""The sandbox voice server: a fake Pinecall ``/client`` endpoint on loopback.

Usage::

    async with Sandbox(speed=50, seed=1) as sandbox:
        client = Pinecall("any-key", url=sandbox.url)   # ws://127.0.0.1:PORT
        ...
        sandbox.dials          # every call.dial received (DialRecord)
        sandbox.statistics()   # SandboxStatistics snapshot

``Sandbox.handle_connection`` serves any :class:`~dispatch.sdk.transport.Connection`,
so ``MemoryTransport(sandbox.handle_connection, tg)`` runs the same server in memory
(no socket; ``async with`` is still needed to run the dial-log writer, but is
optional without ``dial_log``).

Connection handlers run in tasks owned by the ``websockets`` server; leaving the
``async with`` closes the server (close code 1001), waits for every handler, ends
every call still live (as ``app_detached``), then drains the dial log.

Plain HTTP ``GET /v1/...`` on the same port is the call-log REST endpoint
(``dispatch.sandbox.rest``): call state and events by call id, an agent's calls
filtered by attempt id or metadata.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from dispatch.log import get_logger, register_secret, secret_safe_logger
from dispatch.sandbox.call_log import CallLog
from dispatch.sandbox.dial_log import DialLog, DialRecord
from dispatch.sandbox.faults import Faults
from dispatch.sandbox.refusals import PlatformGuard, RefusalSettings
from dispatch.sandbox.rest import answer, is_rest_request
from dispatch.sandbox.scenario import Scenario
from dispatch.sandbox.session import Session
from dispatch.sandbox.state import SandboxState, SandboxStatistics
from dispatch.sandbox.ws import WebSocketServerConnection
from dispatch.sdk.transport import Connection

#: websockets logs frames (clients' keys included) at DEBUG: hand it a masking logger
_WS_LOGGER = secret_safe_logger("dispatch.sandbox.websockets")

__all__ = ["Sandbox"]


def log() -> Any:
    """The sandbox logger, looked up per use so that it follows ``configure_logging``
    called after import (``get_logger`` binds the configuration at call time)."""
    return get_logger("dispatch.sandbox")


def _route(state: SandboxState) -> Callable[[ServerConnection, Request], Response | None]:
    """``process_request``: REST calls are answered here; only ``/client`` upgrades."""

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if is_rest_request(request):
            return answer(state, request)
        if request.path.split("?", 1)[0].rstrip("/") != "/client":
            return connection.respond(404, "Not Found: the sandbox serves /client and /v1/\n")
        return None

    return process_request


class Sandbox:
    """A simulated voice server. Use as an async context manager.

    Args:
        host, port: where to listen (``port=0`` picks a free port; see :attr:`url`).
        scenario: a :class:`Scenario`, a path to a TOML scenario, or None (digit rule).
        speed: simulated seconds per real second (``math.inf``: every ring, talk and
            speech time is zero, for throughput benchmarks). Must be > 0.
        seed: callee randomness; each call's draw depends on seed, ``to`` and the
            number of earlier dials to ``to`` only.
        api_key: when set, ``connect`` with another key gets ``INVALID_KEY`` + close 1008.
        faults: a mutable :class:`Faults` (default: none armed).
        dial_log: path of a JSON-lines dial log (appended; see ``dial_log`` module).
        org_id: sent in ``connected``; compound_agent_ids: echo ``org_id:slug`` ids.
        conflict_retry_after_s: ``retry_after_s`` of ``AGENT_CONFLICT`` errors.
        handshake_timeout_s: close (1008) a socket that sends no ``connect`` in time.
        ping_interval_s: when set, the server sends ``{"event":"ping"}`` this often.
        keep_calls_on_disconnect: live calls outlive the socket that placed them (as on
            the platform) instead of ending ``app_detached`` when it closes.
        max_calls_kept: how many calls the REST call log remembers (oldest ended first out).
        refusals: the platform's own refusals to simulate (:class:`RefusalSettings`);
            default: the scenario's ``[refusals]`` table. See :meth:`set_refusals`.

    The call-log REST endpoint (``dispatch.sandbox.rest``) is served on the same
    host and port: ``http://HOST:PORT/v1/calls/{id}/state`` and friends.

    Raises:
        ScenarioError: from the constructor, for an invalid scenario file.
        ValueError: for ``speed <= 0``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        scenario: Scenario | str | Path | None = None,
        speed: float = 1.0,
        seed: int = 0,
        api_key: str | None = None,
        *,
        faults: Faults | None = None,
        dial_log: str | Path | None = None,
        org_id: str = "org_sandbox",
        compound_agent_ids: bool = False,
        conflict_retry_after_s: float = 5.0,
        handshake_timeout_s: float = 10.0,
        ping_interval_s: float | None = None,
        keep_calls_on_disconnect: bool = False,
        max_calls_kept: int = 100_000,
        refusals: RefusalSettings | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0 (math.inf for instant calls), got {speed}")
        if not isinstance(scenario, Scenario):
            scenario = Scenario() if scenario is None else Scenario.from_file(scenario)
        register_secret(api_key)
        self.host, self._port = host, port
        self.state = SandboxState(
            scenario=scenario,
            faults=faults or Faults(),
            dial_log=DialLog(dial_log),
            speed=speed,
            seed=seed,
            api_key=api_key,
            org_id=org_id,
            compound_agent_ids=compound_agent_ids,
            conflict_retry_after_s=conflict_retry_after_s,
            handshake_timeout_s=handshake_timeout_s,
            ping_interval_s=ping_interval_s,
            call_log=CallLog(max_calls_kept),
            keep_calls_on_disconnect=keep_calls_on_disconnect,
            refusals=PlatformGuard(refusals or scenario.model.refusals, seed=seed),
        )
        self._server: Server | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    # -- public surface -------------------------------------------------------------

    def set_refusals(self, settings: RefusalSettings) -> PlatformGuard:
        """Simulate these platform refusals from the next dial on (counters restart)."""
        self.state.refusals = PlatformGuard(settings, seed=self.state.seed)
        return self.state.refusals

    @property
    def url(self) -> str:
        """Base URL, ``ws://HOST:PORT`` (clients append ``/client``). Valid once entered."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running (use `async with Sandbox(...)`)")
        return f"ws://{self.host}:{self.port}"

    @property
    def port(self) -> int:
        """The listening port (the real one when constructed with ``port=0``)."""
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def faults(self) -> Faults:
        """The live fault settings; mutate them at any time."""
        return self.state.faults

    @property
    def scenario(self) -> Scenario:
        return self.state.scenario

    @property
    def dials(self) -> list[DialRecord]:
        """The ``call.dial`` s received, in order: the latest 100,000 (live list; do not
        mutate); ``statistics().total_dials`` counts them all, the dial log file has
        them all."""
        return self.state.dial_log.records

    def statistics(self) -> SandboxStatistics:
        """Snapshot: connections, agents, phones, live calls, dials, outcomes, frames."""
        return self.state.statistics()

    async def wait_until(
        self, predicate: Callable[[SandboxStatistics], bool], timeout_s: float = 30.0
    ) -> SandboxStatistics:
        """Wait until ``predicate(statistics())`` holds (re-checked whenever a connection
        opens or closes, or a call starts or ends); return that snapshot.

        Raises ``TimeoutError`` after ``timeout_s``. Example: ``await
        sandbox.wait_until(lambda s: s.live_calls == 0)``.
        """
        with anyio.fail_after(timeout_s):
            while not predicate(stats := self.statistics()):
                event = anyio.Event()
                self.state.waiters.append(event)
                await event.wait()
        return stats

    async def handle_connection(self, conn: Connection) -> None:
        """Serve one client connection until it closes (works for any transport)."""
        await Session(self.state, conn).run()

    async def drop_connections(self, code: int = 1011, reason: str = "sandbox drop") -> int:
        """Close every client socket now with ``code``/``reason``; returns how many."""
        sessions = list(self.state.sessions)
        async with anyio.create_task_group() as tg:
            for session in sessions:
                tg.start_soon(session.drop, code, reason)
        return len(sessions)

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        async with contextlib.AsyncExitStack() as stack:
            tg = await stack.enter_async_context(anyio.create_task_group())
            tg.start_soon(self.state.dial_log.run, name="sandbox dial log")
            stack.callback(self.state.dial_log.close)
            # calls that outlive their socket; ended (app_detached) before the log closes
            calls = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(calls.cancel_scope.cancel)
            self.state.call_group = calls
            self._server = await serve(
                self._ws_handler,
                self.host,
                self._port,
                compression=None,
                ping_interval=None,
                process_request=_route(self.state),
                max_size=2**22,
                close_timeout=2,
                logger=_WS_LOGGER,
            )
            stack.push_async_callback(self._close_server)
            self._stack = stack.pop_all()
        log().info("sandbox.listening", url=self.url, **self.state.describe())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    async def _close_server(self) -> None:
        server = self._server
        if server is not None:
            server.close()
            with anyio.CancelScope(shield=True):
                await server.wait_closed()
        self._server = None

    async def _ws_handler(self, ws: ServerConnection) -> None:
        await self.handle_connection(WebSocketServerConnection(ws))

    async def serve_forever(self) -> None:
        """Run until cancelled (for the CLI)."""
        await anyio.sleep(math.inf)
