"""An agent registered on the client's socket, and its outbound dials."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from dispatch.phone import is_dialable
from dispatch.reasons import Reason
from dispatch.sdk.backoff import ConflictBackoff
from dispatch.sdk.call import Call
from dispatch.sdk.calls_api import CallState
from dispatch.sdk.dialing import ATTEMPT_KEY, PendingDial, RateToken
from dispatch.sdk.emitter import Emitter, Handler
from dispatch.sdk.errcopy import clone_error
from dispatch.sdk.errors import ConfigurationError, DialFailed, NotConnected, RegistrationError
from dispatch.sdk.registration import agent_create_frame

if TYPE_CHECKING:
    from dispatch.sdk.client import Pinecall

__all__ = ["Agent", "AgentState"]

RETRYABLE_CONFLICTS = frozenset({"AGENT_CONFLICT", "AGENT_IN_USE"})


class AgentState(enum.StrEnum):
    UNREGISTERED = "unregistered"  # waiting for a connection
    REGISTERING = "registering"  # agent.create / channel.add sent, acks pending
    READY = "ready"
    FAILED = "failed"  # refused; retried on the next connection
    DISPLACED = "displaced"  # another registration took the name: never re-registered


class Agent:
    """An agent: its configuration, its registration state and :meth:`dial`.

    Obtain one with :meth:`Pinecall.agent`. Registration is automatic on every
    (re)connection; frames for the agent wait until ``agent.created`` (and every
    ``channel.added``) arrived.
    """

    def __init__(self, client: Pinecall, agent_id: str, config: dict[str, Any],
                 phone_numbers: list[str], tools: dict[str, Any]) -> None:
        self._client = client
        self.id = agent_id
        self.phone_numbers = phone_numbers
        self.tools = tools
        self._config = config
        self.state = AgentState.UNREGISTERED
        self.error: RegistrationError | None = None
        self._pending_channels: set[str] = set()
        self._acked = False
        self._conflict: ConflictBackoff | None = None
        self._retry_scheduled = False
        self._changed = anyio.Event()
        self.events = Emitter(client.spawn, f"agent {agent_id}")

    def __repr__(self) -> str:
        return f"<Agent {self.id} {self.state.value}>"

    def on(self, name: str, handler: Handler) -> Handler:
        """Subscribe to this agent's ``call.dialing``/``call.started``/``call.ended`` (payload:
        the :class:`Call`) and ``displaced`` (payload: the frame)."""
        return self.events.on(name, handler)

    async def ready(self, timeout_s: float | None = None) -> Agent:
        """Wait until the agent is registered (``agent.created`` and every ``channel.added``).

        Raises :class:`RegistrationError` (with the server's ``code``) when refused,
        :class:`NotConnected` when the client is closed or still offline at the deadline,
        the client's fatal error (e.g. :class:`AuthenticationError`) when it gave up.
        """
        await self._wait_ready(timeout_s)
        return self

    async def dial(
        self,
        to: str,
        from_: str | None = None,
        greeting: str | None = None,
        metadata: dict[str, Any] | None = None,
        config: dict[str, Any] | None = None,
        detect_turn_end: bool = False,
        timeout_s: float = 70.0,
        on_dialing: Handler | None = None,
        rate_token: RateToken | None = None,
    ) -> Call:
        """Place an outbound call; returns the :class:`Call` once the callee answers.

        ``timeout_s`` counts from the moment the frame is written to an open socket. A
        dial that times out or whose caller is cancelled is hung up (``call.hangup``) as
        soon as its call id is known, and is never replayed after a reconnect.
        ``on_dialing(call)`` (sync or async) runs when ``call.dialing`` binds the call id.
        ``rate_token.spend()`` runs in the step that writes the frame (a refusal after
        that keeps it spent); ``release()`` wherever the frame is never written.

        Raises :class:`ConfigurationError` (``to`` not E.164, no/ambiguous ``from_``;
        nothing sent), :class:`DialFailed` (``reason``: busy, no_answer, failed,
        canceled, timeout, error), :class:`ConnectionLost` (socket dropped),
        :class:`NotConnected` (offline past the client's ``dial_ready_wait_s``),
        :class:`RegistrationError` (agent refused or displaced).
        """
        try:
            dial = await self._submit(to, from_, greeting, metadata, config, detect_turn_end,
                                      timeout_s, on_dialing, rate_token)
        except BaseException:
            if rate_token is not None:
                rate_token.release()  # nothing was queued: the frame never leaves
            raise
        try:
            with anyio.CancelScope() as wait:  # one wake-up: answered, failed or timed out
                dial.watch(wait, timeout_s)
                await dial.done.wait()
        except BaseException:
            dial.release_token()  # still queued: the writer will skip it (no-op once sent)
            self._client.give_up(dial, DialFailed(
                Reason.CANCELED, "cancelled_by_caller", call_id=dial.call_id, to=to))
            raise
        if not dial.settled:
            self._client.give_up(dial, DialFailed(
                Reason.TIMEOUT, "dial_timeout", call_id=dial.call_id, to=to))
        if dial.error is not None:
            raise dial.error
        assert dial.call is not None
        return dial.call

    async def _submit(self, to: str, from_: str | None, greeting: str | None,
                      metadata: dict[str, Any] | None, config: dict[str, Any] | None,
                      detect_turn_end: bool, timeout_s: float, on_dialing: Handler | None,
                      rate_token: RateToken | None) -> PendingDial:
        """Validate, wait until registered and online, queue the frame for the writer."""
        frame = self._dial_frame(to, from_, greeting, metadata, config, detect_turn_end)
        if timeout_s <= 0:
            raise ConfigurationError(f"timeout_s must be > 0, got {timeout_s}")
        await self._wait_ready(self._client.dial_ready_wait_s)
        dial = PendingDial(frame["metadata"][ATTEMPT_KEY], self.id, to, frame, on_dialing,
                           rate_token)
        self._client.submit_dial(dial)
        return dial

    async def lookup_call(self, call_id: str) -> CallState | None:
        """What the platform's call log says of ``call_id`` (``None``: unknown id).

        Raises :class:`AuthenticationError` (key refused) or ``CallLogUnavailable``.
        """
        return await self._client.calls_api.state(call_id)

    async def find_call(self, attempt_id: str | None = None, *,
                        metadata: Mapping[str, Any] | None = None) -> CallState | None:
        """The newest call of this agent whose dial carried ``attempt_id`` and every
        ``metadata`` item, or ``None``. Same errors as :meth:`lookup_call`."""
        found = await self._client.calls_api.find(
            self.id, attempt_id=attempt_id, metadata=metadata, limit=1)
        return found[0] if found else None

    def _dial_frame(self, to: str, from_: str | None, greeting: str | None,
                    metadata: dict[str, Any] | None, config: dict[str, Any] | None,
                    detect_turn_end: bool) -> dict[str, Any]:
        if not is_dialable(to):
            raise ConfigurationError(f"invalid destination {to!r}: must be E.164 (+ and 7-15 "
                                     "digits, no leading zero) or a sip: URI")
        frame: dict[str, Any] = {"event": "call.dial", "agent_id": self.id, "to": to,
                                 "from": self._resolve_from(from_)}
        if greeting:
            frame["greeting"] = greeting
        frame["metadata"] = {**(metadata or {}), ATTEMPT_KEY: self._client.new_attempt_id()}
        if config:
            frame["config"] = config
        if detect_turn_end:
            frame["detect_turn_end"] = True
        return frame

    def _resolve_from(self, from_: str | None) -> str:
        if from_:
            if not is_dialable(from_):
                raise ConfigurationError(f"invalid caller id {from_!r}: must be E.164 (+ and "
                                         "7-15 digits) or a sip: URI")
            return from_
        if not self.phone_numbers:
            raise ConfigurationError(
                f"No phone numbers registered on agent {self.id!r}. Add one with "
                "phone_number= or pass from_ to dial().")
        if len(self.phone_numbers) > 1:
            numbers = ", ".join(self.phone_numbers)
            raise ConfigurationError(
                f"Multiple phone channels registered ({numbers}). Pass from_ to dial() "
                "to choose the caller id.")
        return self.phone_numbers[0]

    async def _wait_ready(self, timeout_s: float | None) -> None:
        self._raise_if_unusable()
        if self.state is AgentState.READY and self._client.online:
            return  # the common case: no cancel scope, no loop turn
        with anyio.move_on_after(timeout_s):
            while True:
                self._raise_if_unusable()
                if self.state is AgentState.READY and self._client.online:
                    return
                await self._changed.wait()
        if not self._client.online:
            raise NotConnected(f"not connected after {timeout_s} s")
        raise RegistrationError(f"agent {self.id!r} not registered after {timeout_s} s",
                                code="AGENT_NOT_REGISTERED", agent_id=self.id)

    def _raise_if_unusable(self) -> None:
        self._client.raise_if_unusable()
        if self.state in (AgentState.FAILED, AgentState.DISPLACED) and self.error is not None:
            raise clone_error(self.error)

    # -- registration, driven by the client and the router --------------------------

    def notify(self) -> None:
        """Wake every waiter (state or connection changed)."""
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def register(self) -> None:
        """Connected: send ``agent.create`` (not for a displaced agent)."""
        if self.state is AgentState.DISPLACED:
            return
        self.state = AgentState.REGISTERING
        self.error = None
        self._acked = False
        self._client.send(self.create_frame())
        self.notify()

    def create_frame(self) -> dict[str, Any]:
        return agent_create_frame(self.id, self._config, list(self.tools.values()))

    def on_created(self) -> None:
        """``agent.created``/``agent.resumed``: add the phone channels."""
        if self.state is not AgentState.REGISTERING:
            return
        self._conflict = None
        self._acked = True
        self._pending_channels = set(self.phone_numbers)
        for ref in self.phone_numbers:
            self._client.send(
                {"event": "channel.add", "agent_id": self.id, "type": "phone", "ref": ref})
        self._maybe_ready()

    @property
    def awaiting_ack(self) -> bool:
        """``agent.create`` sent (or being retried) and not yet acknowledged."""
        return self.state is AgentState.REGISTERING and not self._acked

    def on_channel_added(self, ref: str) -> None:
        self._pending_channels.discard(ref)
        self._maybe_ready()

    def _maybe_ready(self) -> None:
        if self.state is AgentState.REGISTERING and not self._pending_channels:
            self.state = AgentState.READY
            self.notify()

    def on_error(self, code: str, text: str, frame: dict[str, Any]) -> bool:
        """A registration ``error`` frame for this agent; ``False`` if not a registration one."""
        if code in RETRYABLE_CONFLICTS:
            self._on_conflict(frame)
            return True
        if self.state is not AgentState.REGISTERING and code != "PHONE_IN_USE":
            return False
        self.fail(RegistrationError(text, code=code or "REGISTRATION_ERROR", agent_id=self.id))
        return True

    def fail(self, error: RegistrationError) -> None:
        self.state = AgentState.FAILED
        self.error = error
        self._conflict = None
        self.notify()

    def on_displaced(self, reason: str) -> None:
        self.state = AgentState.DISPLACED
        self.error = RegistrationError(f"agent {self.id!r} displaced: {reason}",
                                       code="AGENT_DISPLACED", agent_id=self.id)
        self.notify()

    def reset(self) -> None:
        """The socket closed: registration is gone with it."""
        if self.state is not AgentState.DISPLACED:
            self.state = AgentState.UNREGISTERED
        self._conflict = None
        self._retry_scheduled = False
        self.notify()

    def _on_conflict(self, frame: dict[str, Any]) -> None:
        holder_alive = frame.get("holder_alive")
        if self._conflict is None:
            self._conflict = self._client.new_conflict_backoff()
        elif holder_alive is False:
            self._conflict.restart()
        if self._retry_scheduled:
            return
        retry_after = frame.get("retry_after_s")
        delay = self._conflict.next_delay_s(
            float(retry_after) if isinstance(retry_after, int | float) else None,
            holder_alive if isinstance(holder_alive, bool) else None)
        if delay is None:
            self.fail(RegistrationError(
                f"agent id {self.id!r} still held by another connection; retry budget spent",
                code="RETRY_BUDGET_EXHAUSTED", agent_id=self.id))
            return
        self._retry_scheduled = True
        self._client.spawn_in_session(lambda: self._retry_create(delay))

    async def _retry_create(self, delay_s: float) -> None:
        await anyio.sleep(delay_s)
        self._retry_scheduled = False
        if self.state is AgentState.REGISTERING and self._conflict is not None:
            try:
                self._client.send(self.create_frame())
            except NotConnected:
                pass
