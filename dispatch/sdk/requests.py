"""Request/ack pairs on a call's history channel (``history.set_vars`` -> ``history.updated``).

Acks are matched by ``request_id`` only (protocol §9.20): an ack without one is
ignored, so two concurrent requests on one call can never resolve each other.
"""

from __future__ import annotations

import itertools
import secrets
from typing import TYPE_CHECKING, Any

import anyio

from dispatch.sdk.errors import ConnectionLost, RequestFailed

if TYPE_CHECKING:
    from dispatch.sdk.client import Pinecall

__all__ = ["RequestBook"]


class _Pending:
    __slots__ = ("done", "error", "reply")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.reply: dict[str, Any] | None = None
        self.error: str | None = None


class RequestBook:
    """Requests waiting for their ack, by ``request_id``."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._suffix = secrets.token_hex(3)

    def __len__(self) -> int:
        return len(self._pending)

    async def request(self, client: Pinecall, frame: dict[str, Any]) -> dict[str, Any]:
        """Send ``frame`` with a fresh ``request_id``; return the ack frame.

        Raises :class:`RequestFailed` (``REQUEST_REJECTED`` / ``REQUEST_TIMEOUT``),
        :class:`NotConnected`, :class:`ConnectionLost`.
        """
        request_id = f"rq_{next(self._ids):x}_{self._suffix}"
        pending = _Pending()
        self._pending[request_id] = pending
        try:
            client.send({**frame, "request_id": request_id})
            with anyio.move_on_after(self.timeout_s):
                await pending.done.wait()
        finally:
            self._pending.pop(request_id, None)
        if pending.error is not None:
            raise ConnectionLost(f"{frame['event']} lost: {pending.error}")
        if pending.reply is None:
            raise RequestFailed(f"no ack for {frame['event']} within {self.timeout_s} s",
                                code="REQUEST_TIMEOUT")
        if pending.reply.get("error") is not None:
            raise RequestFailed(str(pending.reply["error"]), code="REQUEST_REJECTED")
        return pending.reply

    def resolve(self, frame: dict[str, Any]) -> bool:
        """An ack arrived; ``False`` when its ``request_id`` is unknown or missing."""
        pending = self._pending.get(str(frame.get("request_id", "")))
        if pending is None or pending.done.is_set():
            return False
        pending.reply = frame
        pending.done.set()
        return True

    def fail_all(self, reason: str) -> None:
        """The socket dropped: every waiting request raises :class:`ConnectionLost`."""
        for pending in self._pending.values():
            if not pending.done.is_set():
                pending.error = reason
                pending.done.set()
