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
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from dispatch.reasons import Reason
from dispatch.records import Record

if TYPE_CHECKING:
    from dispatch.store import Store

__all__ = [
    "Callback",
    "Outcome",
    "RecordFailed",
    "Strategy",
    "call_maybe_async",
    "check_unique_keys",
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
    _key: str | None = None

    on_dispatched: Callback | None = None
    on_completed: Callback | None = None
    on_failed: Callback | None = None
    on_skipped: Callback | None = None

    @property
    def key(self) -> str:
        """This source's stable identity: a record is ``(key, record id)``.

        The same id from two strategies with different keys is two records, each
        dialled, each outcome delivered to its own strategy, also after a restart.
        Two strategies of one hub must have different keys (``DispatchHub`` refuses
        them). Default: :attr:`name`; ``CsvStrategy`` uses ``csv:<resolved path>``.
        Assign it (``strategy.key = "leads-2026"``) to keep a source's records when
        its location changes: a new key is a new source, whose records are all new.
        """
        return self.name if self._key is None else self._key

    @key.setter
    def key(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"strategy key must be a non-empty string, got {value!r}")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError(f"strategy key {value!r} contains a control character")
        self._key = value

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

    # a strategy may serve something inside the hub's tasks
    async def serve(
        self, store: Store, wake: Callable[[], None], *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run a push source (an HTTP intake) for as long as the hub dials.

        The hub starts it in its task tree (``await tg.start(strategy.serve, store,
        wake)``) once the store is open, and cancels it when it stops. ``store`` is the
        hub's open store (write through it, so what is acknowledged is committed);
        ``wake()`` makes the hub poll at once instead of at the next poll interval.
        Call ``task_status.started()`` once ready. Default: nothing to serve.
        """
        task_status.started()

    @property
    def has_more(self) -> bool:
        """True when :meth:`poll` has more records ready right now (batched sources)."""
        return False

    async def record_outcome(self, outcome: Outcome) -> None:
        """Persist a record's terminal outcome at the source. Default: nothing."""

    async def aclose(self) -> None:
        """Release files, connections and flush pending write-backs."""


def check_unique_keys(strategies: Sequence[Strategy]) -> None:
    """Raise ``ValueError`` naming both strategies when two share a :attr:`~Strategy.key`."""
    first: dict[str, int] = {}
    for index, strategy in enumerate(strategies):
        key = strategy.key
        if not isinstance(key, str) or not key:
            raise ValueError(f"strategy {index} ({type(strategy).__name__}) has no key: "
                             f"{key!r}")
        if key in first:
            other = first[key]
            raise ValueError(
                f"strategies {other} ({type(strategies[other]).__name__}) and {index} "
                f"({type(strategy).__name__}) have the same key {key!r}; records are told "
                "apart by their strategy's key: give each source its own "
                "(strategy.key = ...)")
        first[key] = index
