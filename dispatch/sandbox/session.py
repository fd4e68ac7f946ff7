"""One client connection: handshake, the frame reader, the single writer, teardown.

Command handlers (``dispatch.sandbox.commands``) are synchronous: they only queue
frames with :meth:`Session.emit`, so replies leave in the order the commands
arrived (``call.dialing`` in dial order) and per-frame work stays small. The one
writer task applies the frame faults (delay, noise, drop after N frames).

When the connection closes (either side), the session's agent ids and phone numbers
are freed for other sockets, and its live calls either end as ``app_detached`` (the
default: they run in the session's task group, which is cancelled) or, with
``Sandbox(keep_calls_on_disconnect=True)``, carry on to their natural end in the
sandbox's own task group, like a platform call that survives its app's socket
(their frames are then dropped; the REST call log still follows them).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from dispatch.log import get_logger
from dispatch.sandbox.commands import dispatch_frame
from dispatch.sandbox.registration import release_session
from dispatch.sandbox.state import SandboxState
from dispatch.sdk.transport import Connection, TransportClosed
from dispatch.streams import bursts

if TYPE_CHECKING:
    from dispatch.sandbox.calls import SimCall
    from dispatch.sandbox.registration import AgentState

__all__ = ["Session"]


def log() -> Any:
    """The sandbox logger, looked up per use so that it follows ``configure_logging``
    called after import (``get_logger`` binds the configuration at call time)."""
    return get_logger("dispatch.sandbox")


_NOISE = json.dumps({"event": "sandbox.noise", "note": "unknown event; ignore me"})
_GARBAGE = "this is not json {"


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


#: how long closing an overflowed connection may take (its peer does not read)
_OVERFLOW_CLOSE_S = 1.0


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


class Session:
    """Server side of one ``/client`` connection; see :meth:`run`."""

    def __init__(self, state: SandboxState, conn: Connection) -> None:
        self.state, self.conn = state, conn
        self.id = state.next_connection
        state.next_connection += 1
        self.authed = False
        self.closing = False
        self.agents: dict[str, AgentState] = {}
        self.calls: dict[str, SimCall] = {}
        self.reply_streams: dict[str, list[str]] = {}  # bot.reply.stream text, bounded
        self.frames_sent = self.frames_received = self.dials_received = 0
        self._out_send, self._out_receive = anyio.create_memory_object_stream[str | _Close](
            state.max_outbox_frames
        )
        self._tg: TaskGroup | None = None
        #: the client stopped reading and the outbox filled: closed with 1013
        self.overflowed = False

    # -- used by commands and calls -----------------------------------------------

    def emit(self, frame: dict[str, Any]) -> None:
        """Queue ``frame`` for the writer (never blocks; dropped once closed; a full
        outbox closes the connection, see :meth:`_overflow`)."""
        try:
            self._out_send.send_nowait(dumps(frame))
        except anyio.WouldBlock:
            self._overflow()
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def _overflow(self) -> None:
        """The client reads slower than the sandbox writes: stop serving it (its calls
        end as on any disconnect) rather than queue without end."""
        if self.overflowed:
            return
        self.overflowed = self.closing = True
        log().warning("sandbox.client_too_slow", connection=self.id,
                      queued=self.state.max_outbox_frames)
        if self._tg is not None:
            self._tg.cancel_scope.cancel()

    def close_soon(self, code: int, reason: str) -> None:
        """Close the socket after the frames queued so far; ignore later client frames."""
        if not self.closing:
            self.closing = True
            try:
                self._out_send.send_nowait(_Close(code, reason))
            except anyio.WouldBlock:
                self._overflow()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass

    def start_call(self, call: SimCall) -> None:
        """Run ``call`` in this connection's task group (or the sandbox's, see above)."""
        group = self.state.call_group if self.state.keep_calls_on_disconnect else None
        group = group or self._tg
        assert group is not None
        self.calls[call.call_id] = call
        group.start_soon(call.run, name=f"call {call.call_id}")

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``fn`` for the life of this connection (a reply being spoken)."""
        if self._tg is not None:
            self._tg.start_soon(fn)

    def forget(self, call_id: str) -> None:
        self.calls.pop(call_id, None)

    def drop_fault(self) -> None:
        """A drop fault fired: disarm it (unless repeating) and close soon."""
        faults = self.state.faults
        code, reason = faults.drop_code, faults.drop_reason
        faults.disarm_drops()
        log().info("sandbox.fault_drop", connection=self.id, code=code)
        self.close_soon(code, reason)

    # -- lifecycle ----------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes; then end its calls and free its names."""
        self.state.sessions.add(self)
        self.state.notify()
        log().info("sandbox.connection_opened", connection=self.id)
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                tg.start_soon(self._writer)
                tg.start_soon(self._handshake_deadline)
                await self._reader()
                tg.cancel_scope.cancel()
            if self.overflowed:
                with anyio.CancelScope(shield=True), anyio.move_on_after(_OVERFLOW_CLOSE_S):
                    await self.conn.close(1013, "client too slow")
        finally:
            self._out_send.close()
            self._out_receive.close()
            release_session(self)
            for call in self.calls.values():
                if call.entry is not None:
                    call.entry.detached = True
            self.state.sessions.discard(self)
            self.state.notify()
            log().info("sandbox.connection_closed", connection=self.id)

    def on_authenticated(self) -> None:
        """Handshake done: start the per-connection timers the faults/settings ask for."""
        self.authed = True
        assert self._tg is not None
        if self.state.faults.drop_after_s is not None:
            self._tg.start_soon(self._drop_after, self.state.faults.drop_after_s)
        if self.state.ping_interval_s:
            self._tg.start_soon(self._pinger, self.state.ping_interval_s)

    async def _reader(self) -> None:
        while True:
            try:
                text = await self.conn.recv()
            except TransportClosed:
                return
            self.frames_received += 1
            self.state.frames_received += 1
            if self.closing:
                continue
            frame = _parse(text)
            if frame is None:
                log().debug("sandbox.unparsable_frame", connection=self.id)
                continue
            dispatch_frame(self, frame)
            limit = self.state.faults.drop_after_received
            if limit is not None and self.frames_received >= limit:
                self.drop_fault()

    async def _writer(self) -> None:
        async with contextlib.aclosing(bursts(self._out_receive)) as items:
            async for item in items:  # what is queued goes out in one turn of the loop
                if not await self._write(item):
                    return

    async def _write(self, item: str | _Close) -> bool:
        """Send one queued item; ``False`` once the connection is done."""
        if isinstance(item, _Close):
            await self.conn.close(item.code, item.reason)
            return False
        try:
            await self._send(item)
        except TransportClosed:
            return False
        limit = self.state.faults.drop_after_frames
        if limit is not None and self.frames_sent >= limit and not self.closing:
            self.drop_fault()
        return True

    async def _send(self, text: str) -> None:
        faults = self.state.faults
        if faults.frame_delay_s > 0:
            await anyio.sleep(faults.frame_delay_s)
        if faults.unknown_events:
            await self.conn.send(_NOISE)
        if faults.garbage_frames:
            await self.conn.send(_GARBAGE)
        await self.conn.send(text)
        self.frames_sent += 1
        self.state.frames_sent += 1

    async def _handshake_deadline(self) -> None:
        await anyio.sleep(self.state.handshake_timeout_s)
        if not self.authed:
            self.close_soon(1008, "handshake timeout")

    async def _drop_after(self, delay_s: float) -> None:
        await anyio.sleep(delay_s)
        self.drop_fault()

    async def _pinger(self, interval_s: float) -> None:
        while True:
            await anyio.sleep(interval_s)
            self.emit({"event": "ping"})

    async def drop(self, code: int, reason: str) -> None:
        """Close the socket now (``Sandbox.drop_connections``)."""
        self.closing = True
        await self.conn.close(code, reason)


def _parse(text: str) -> dict[str, Any] | None:
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        return None
    return frame
