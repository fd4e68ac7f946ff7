"""The lead-source interface.

A strategy produces :class:`~dispatch.records.Record` objects when polled and
may react to what happened to them. Lifecycle callbacks can be assigned as
attributes, as in the JS library (``csv.on_completed = fn``); sync and async
callables both work. A callback that raises is logged with the record id and
never stops the hub.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dispatch.reasons import Reason
from dispatch.records import Record

__all__ = [
    "Callback",
    "Outcome",
    "RecordFailed",
    "Strategy",
    "call_maybe_async",
]

Callback = Callable[..., Any | Awaitable[Any]]


class RecordFailed(Exception):
    """Passed to ``on_failed``: the hub gave up on a record.

    ``reason`` is the normalised reason of the last attempt, ``attempts`` how many
    dials were made, ``last_error`` the exception of the last attempt if any.
    """

    def __init__(
        self,
        record_id: str,
        reason: Reason,
        *,
        attempts: int,
        detail: str | None = None,
        last_error: BaseException | None = None,
    ) -> None:
        text = f"record {record_id!r} failed after {attempts} attempt(s): {reason.value}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)
        self.record_id = record_id
        self.reason = reason
        self.attempts = attempts
        self.detail = detail
        self.last_error = last_error


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The terminal result of a record, given to :meth:`Strategy.record_outcome`.

    ``status`` is ``completed``, ``failed`` or ``skipped``.
    """

    record: Record
    status: str
    reason: Reason
    attempts: int
    call_id: str | None = None
    disposition: str | None = None
    detail: str | None = None


async def call_maybe_async(fn: Callback | None, *args: Any) -> Any:
    """Call ``fn(*args)``; await the result when it is awaitable. ``None`` is a no-op."""
    if fn is None:
        return None
    result = fn(*args)
    if inspect.isawaitable(result):
        return await result
    return result


class Strategy:
    """Base class for lead sources.

    Subclasses implement :meth:`poll`. The hub calls it every ``poll_interval_s``
    (and again at once while :attr:`has_more` is true). Records whose id the hub
    already knows are ignored, so a strategy may return the same record again.

    Attributes ``on_dispatched(record, call)``, ``on_completed(record, call_id,
    reason)``, ``on_failed(record, error)`` and ``on_skipped(record, reason)`` are
    user hooks; :meth:`record_outcome` is the hook for the strategy's own
    bookkeeping (CSV write-back, SQL status update) and runs before them.
    """

    #: A short name stored with every record this strategy produces.
    name: str = "strategy"

    on_dispatched: Callback | None = None
    on_completed: Callback | None = None
    on_failed: Callback | None = None
    on_skipped: Callback | None = None

    async def preflight(self) -> None:
        """Check the source and this strategy's settings before anyone is dialled.

        Raise :class:`~dispatch.errors.PreflightError` for a mistake that would be
        the same for every record (a greeting field the source does not have, phones
        that all lack a country code) and :class:`~dispatch.errors.SourceUnusable`
        when the source cannot be read at all (missing, empty, binary, no phone
        column). The hub calls this once at the start of :meth:`DispatchHub.run`.
        Default: nothing to check.
        """

    async def poll(self) -> Sequence[Record]:
        """Return records that are new since the last poll (may repeat known ones)."""
        raise NotImplementedError

    @property
    def has_more(self) -> bool:
        """True when :meth:`poll` has more records ready right now (batched sources)."""
        return False

    async def record_outcome(self, outcome: Outcome) -> None:
        """Persist a record's terminal outcome at the source. Default: nothing."""

    async def aclose(self) -> None:
        """Release files, connections and flush pending write-backs."""
