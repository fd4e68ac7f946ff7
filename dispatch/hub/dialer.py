"""The only thing the hub needs from a voice platform: :class:`Dialer`.

``dispatch.sdk.Agent`` satisfies it structurally; ``dispatch.testing.MemoryDialer``
implements it in memory (``mypy`` proves both in :mod:`dispatch.hub.conformance`).
Contract of :meth:`Dialer.dial`:

- returns once the callee answered, with a :class:`CallLike`;
- calls ``on_dialing(call)`` (sync or async) when the platform assigned a call id;
- calls ``rate_token.spend()`` in the step that sends the dial (no ``await`` between
  the two), or ``rate_token.release()`` when it will never send it (bad arguments,
  offline, cancelled before sending). The hub's rate limits hold at that instant. A
  dialer that does neither is charged the token when ``on_dialing`` runs or ``dial``
  ends, since the hub cannot know whether the dial left;
- raises ``DialFailed`` (``.reason``, ``.raw_reason``, ``.call_id``) when the call was
  not answered, ``ConnectionLost``/other ``PinecallConnectionError`` when the link
  failed, ``ConfigurationError`` for bad arguments (nothing was sent).

``AuthenticationError``, ``RegistrationError`` and ``ConfigurationError`` are taken as
campaign-wide (the same for every record, see :mod:`dispatch.hub.campaign`): the record
stays ``pending`` and the hub stops dialling once the pattern is clear.

A dial that has not returned ``timeout_s`` plus ``DIAL_GRACE_S`` (30 s) of the hub's
clock after it started is cancelled by the hub: the call (if ``on_dialing`` gave one)
is hung up and the attempt ends with reason ``timeout`` (raw ``dial_deadline``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from dispatch.reasons import Reason
from dispatch.sdk.dialing import RateToken

__all__ = ["CallLike", "Dialer", "OnDialing", "RateToken"]


@runtime_checkable
class CallLike(Protocol):
    """What the hub reads from a call."""

    @property
    def id(self) -> str: ...

    @property
    def end_reason(self) -> Reason | None: ...

    @property
    def end_reason_raw(self) -> str | None: ...

    @property
    def duration_s(self) -> float | None: ...

    @property
    def started_at(self) -> float | None: ...

    @property
    def ended_at(self) -> float | None: ...

    @property
    def tool_results(self) -> list[dict[str, Any]]: ...

    @property
    def disposition(self) -> str | None: ...

    async def wait_ended(self) -> Any:
        """Return once the call has ended (``end_reason`` is then set)."""
        ...

    async def set_prompt_vars(self, variables: dict[str, str], /) -> Any:
        """Replace ``{{name}}`` placeholders of the agent prompt for this call."""
        ...

    async def hangup(self) -> Any:
        """Ask the platform to end the call (ringing or answered)."""
        ...


#: ``on_dialing(call)``: sync or async; its result is awaited when awaitable
OnDialing = Callable[[Any], Any]


@runtime_checkable
class Dialer(Protocol):
    """Places one outbound call."""

    async def dial(
        self,
        to: str,
        *,
        from_: str | None = ...,
        greeting: str | None = ...,
        metadata: dict[str, Any] | None = ...,
        config: dict[str, Any] | None = ...,
        detect_turn_end: bool = ...,
        timeout_s: float = ...,
        on_dialing: OnDialing | None = ...,
        rate_token: RateToken | None = ...,
    ) -> CallLike:
        """Dial ``to``; see the module docstring for the contract."""
        ...
