"""Per-call correlation of dials (protocol §3.7; fixes §9 weak points 1-3).

A :class:`PendingDial` enters its agent's *unbound* queue when its ``call.dialing``
frame has been written to an open socket. ``call.dialing`` binds the oldest
matching one — by the ``dispatch_attempt`` metadata echo when present, otherwise in
order with the same ``to`` — and from then on the dial is found **only** by
``call_id`` (a dict lookup). Nothing else ever settles someone else's dial.

A dial may carry a :class:`RateToken` (``dispatch.hub`` passes one): the writer
spends it right before the frame is written, in the same step, and every path on
which the frame never leaves releases it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from dispatch.compliance.refusals import RefusalKind
from dispatch.reasons import Reason
from dispatch.sdk.errors import DialFailed, DialRefused
from dispatch.sdk.reasons import classify_dial_refusal, refusal_reason, retry_after_s

if TYPE_CHECKING:
    from dispatch.sdk.call import Call

__all__ = ["DialBook", "PendingDial", "RateToken", "dial_error"]

ATTEMPT_KEY = "dispatch_attempt"


class RateToken(Protocol):
    """A pacing token a dial holds until its frame leaves (one of the two is called once)."""

    def spend(self) -> None:
        """The frame is being written now: count the dial at this instant."""
        ...

    def release(self) -> None:
        """The frame never left: give the token back unused."""
        ...


def dial_error(frame: dict[str, Any], text: str, *, code: str | None, call_id: str | None,
               to: str | None) -> DialFailed:
    """The error a ``call.error`` / ``error`` frame settles a dial with: a
    :class:`DialRefused` when it is one of the platform's refusals, else a plain
    :class:`DialFailed` (``error``) keeping the text and code."""
    kind = classify_dial_refusal(frame, text)
    if kind is RefusalKind.OTHER:
        return DialFailed(Reason.ERROR, text, call_id=call_id, code=code, to=to)
    return DialRefused(kind, refusal_reason(kind), text, retry_after_s=retry_after_s(frame),
                       call_id=call_id, code=code, to=to)


class PendingDial:
    """One ``agent.dial`` between its frame and its outcome."""

    __slots__ = (
        "_timeout_s", "_watch", "abandoned", "agent_id", "attempt_id", "call", "done", "error",
        "frame", "on_dialing", "sent_at", "to", "token",
    )

    def __init__(self, attempt_id: str, agent_id: str, to: str, frame: dict[str, Any],
                 on_dialing: Any = None, token: RateToken | None = None) -> None:
        self.attempt_id = attempt_id
        self.agent_id = agent_id
        self.to = to
        self.frame = frame
        self.on_dialing = on_dialing
        self.token = token
        self.call: Call | None = None
        self.error: BaseException | None = None
        self.abandoned = False
        self.sent_at: float | None = None  # event-loop time the frame was written
        self.done = anyio.Event()   # answered or failed
        self._watch: anyio.CancelScope | None = None
        self._timeout_s = math.inf

    @property
    def call_id(self) -> str | None:
        return self.call.id if self.call is not None else None

    @property
    def settled(self) -> bool:
        return self.done.is_set()

    def spend_token(self) -> None:
        """Called by the writer in the step that writes the frame."""
        token, self.token = self.token, None
        if token is not None:
            token.spend()

    def release_token(self) -> None:
        """The frame will never be written (no-op once spent)."""
        token, self.token = self.token, None
        if token is not None:
            token.release()

    def watch(self, scope: anyio.CancelScope, timeout_s: float) -> None:
        """``scope`` (the caller's wait for :attr:`done`) ends ``timeout_s`` after the
        frame is written: its deadline is set then, not while the frame is queued."""
        self._watch, self._timeout_s = scope, timeout_s
        if self.sent_at is not None:
            scope.deadline = self.sent_at + timeout_s

    def mark_sent(self) -> None:
        self.sent_at = anyio.current_time()
        if self._watch is not None:
            self._watch.deadline = self.sent_at + self._timeout_s

    def resolve(self) -> None:
        """The callee answered: ``agent.dial`` returns ``self.call``."""
        if not self.done.is_set():
            self.done.set()

    def fail(self, error: BaseException) -> None:
        """The dial failed (or was given up): ``agent.dial`` raises ``error``."""
        if not self.done.is_set():
            self.error = error
            self.done.set()


class DialBook:
    """Every pending dial of one client, indexed for O(1) routing."""

    def __init__(self) -> None:
        self._by_attempt: dict[str, PendingDial] = {}
        self._unbound: dict[str, OrderedDict[str, PendingDial]] = {}
        self._by_call: dict[str, PendingDial] = {}

    def __len__(self) -> int:
        return len(self._by_attempt) + len(self._by_call)

    def add_written(self, dial: PendingDial) -> None:
        """The frame is on the wire: the dial waits for its ``call.dialing``."""
        self._by_attempt[dial.attempt_id] = dial
        self._unbound.setdefault(dial.agent_id, OrderedDict())[dial.attempt_id] = dial

    def bind(self, agent_id: str | None, frame: dict[str, Any], *,
             by_to: bool) -> PendingDial | None:
        """The unbound dial that ``frame`` answers; indexes it under the frame's call id."""
        dial = self.match_unbound(agent_id, frame, by_to=by_to)
        call_id = frame.get("call_id")
        if dial is not None and isinstance(call_id, str):
            self._unlink(dial)
            self._by_call[call_id] = dial
        return dial

    def match_unbound(self, agent_id: str | None, frame: dict[str, Any], *,
                      by_to: bool) -> PendingDial | None:
        """By the metadata echo when the frame has one; otherwise (``by_to``) the oldest
        unbound dial of the agent to the frame's ``to``."""
        meta = frame.get("metadata")
        if isinstance(meta, dict):
            attempt = meta.get(ATTEMPT_KEY)
            if isinstance(attempt, str):
                # an echoed attempt id is authoritative: an unknown one (a dial of an
                # earlier connection, or already bound) never falls back to `to`
                return self._by_attempt.get(attempt)
        queue = self._unbound.get(agent_id or "") if by_to else None
        to = frame.get("to")
        if not queue or not isinstance(to, str):
            return None
        for dial in queue.values():  # the one allowed scan: unbound dials only
            if dial.to == to:
                return dial
        return None

    def oldest_unbound(self, agent_id: str) -> PendingDial | None:
        """The agent's oldest dial still waiting for its ``call.dialing``."""
        queue = self._unbound.get(agent_id)
        return next(iter(queue.values()), None) if queue else None

    def take_unbound(self, dial: PendingDial) -> None:
        """Forget an unbound dial that was settled without a call id (``call.error``)."""
        self._unlink(dial)

    def by_call(self, call_id: str) -> PendingDial | None:
        return self._by_call.get(call_id)

    def forget_call(self, call_id: str) -> None:
        self._by_call.pop(call_id, None)

    def drain(self, agent_id: str | None = None) -> Iterator[PendingDial]:
        """Remove and yield every dial (of ``agent_id`` when given)."""
        for dial in list(self._by_attempt.values()) + list(self._by_call.values()):
            if agent_id is None or dial.agent_id == agent_id:
                self._unlink(dial)
                if dial.call is not None:
                    self._by_call.pop(dial.call.id, None)
                yield dial

    def _unlink(self, dial: PendingDial) -> None:
        self._by_attempt.pop(dial.attempt_id, None)
        queue = self._unbound.get(dial.agent_id)
        if queue is not None:
            queue.pop(dial.attempt_id, None)
