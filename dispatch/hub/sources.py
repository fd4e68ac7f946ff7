"""Health of each strategy's ``poll()``: backoff after failures, and when to give up.

A ``poll()`` that raises is retried after 1 s, 2 s, 4 s... doubling up to 60 s (or
the poll interval when that is longer), on the hub's clock. A one-shot run
(``until_idle``) never calls a failing source "done": once nothing else is left
to do and the source has failed :data:`GIVE_UP_AFTER` times in a row, the run
ends with :class:`~dispatch.errors.SourceFailing`. A daemon retries forever.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from dispatch.errors import PreflightError, SourceFailing, SourceUnusable
from dispatch.log import get_logger, redact
from dispatch.strategy import Strategy

__all__ = [
    "FIRST_RETRY_S",
    "GIVE_UP_AFTER",
    "MAX_RETRY_S",
    "SourceFailure",
    "SourceHealth",
    "preflight",
]

log = get_logger("dispatch.hub")

#: the first retry of a failed poll, doubled at each further failure
FIRST_RETRY_S = 1.0
#: the longest wait between two retries (unless the poll interval is longer)
MAX_RETRY_S = 60.0
#: consecutive failures after which a one-shot run with nothing else to do gives up
GIVE_UP_AFTER = 5
#: error texts are cut to this many characters
_ERROR_CHARS = 300


@dataclasses.dataclass(frozen=True, slots=True)
class SourceFailure:
    """A failing strategy, as :meth:`DispatchHub.statistics` shows it.

    ``next_retry_at`` is on the hub's clock (epoch seconds).
    """

    strategy: str
    consecutive_failures: int
    last_error: str
    next_retry_at: float


def describe(exc: BaseException) -> str:
    """``OSError: disk gone``, secrets masked, cut to a readable length."""
    text = redact(f"{type(exc).__name__}: {exc}")
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


@dataclasses.dataclass(eq=False)
class SourceHealth:
    """The poll record of one strategy (one per strategy, in the hub's order)."""

    name: str
    failures: int = 0
    last_error: str | None = None
    next_retry_at: float | None = None
    unusable: SourceUnusable | None = None

    def failed(self, exc: BaseException, now: float, poll_interval_s: float) -> float:
        """Count a failure; return the delay (s) before the next try."""
        self.failures += 1
        self.last_error = describe(exc)
        self.unusable = exc if isinstance(exc, SourceUnusable) else None
        cap_s = max(MAX_RETRY_S, poll_interval_s)
        delay_s = min(cap_s, FIRST_RETRY_S * 2.0 ** min(self.failures - 1, 30))
        self.next_retry_at = now + delay_s
        return delay_s

    def succeeded(self) -> bool:
        """Reset after a good poll; True when the source had been failing."""
        recovered = self.failures > 0
        self.failures, self.last_error, self.next_retry_at = 0, None, None
        self.unusable = None
        return recovered

    def due(self, now: float) -> bool:
        """May it be polled at ``now`` (not waiting out a backoff)?"""
        return self.next_retry_at is None or now >= self.next_retry_at

    @property
    def failing(self) -> bool:
        return self.failures > 0

    @property
    def given_up(self) -> bool:
        """Failed often enough that a one-shot run with nothing else to do must end."""
        return self.failures >= GIVE_UP_AFTER

    def error(self) -> SourceFailing:
        return SourceFailing(
            f"strategy {self.name!r}: poll() failed {self.failures} times in a row; "
            f"last error: {self.last_error}",
            source=self.name,
        )

    def snapshot(self) -> SourceFailure | None:
        if not self.failing or self.next_retry_at is None:
            return None
        return SourceFailure(self.name, self.failures, self.last_error or "", self.next_retry_at)


async def preflight(
    strategies: Sequence[Strategy], *, until_idle: bool, default_region: str | None = None
) -> dict[int, str]:
    """Run every strategy's ``preflight()`` before anything is stored or dialled.

    A :class:`PreflightError` is raised as is; a :class:`SourceUnusable` too in a
    one-shot run, while a daemon logs it once and polls on (the source may appear):
    the warnings given are returned by strategy index, so that the same error from
    the first polls is not logged again. Any other exception becomes a one-line
    :class:`PreflightError` naming the strategy. A ``--region`` refusal (phones
    without a country code) does not apply when the hub has a ``default_region``: the
    hub reads national numbers with it.
    """
    warned: dict[int, str] = {}
    for index, strategy in enumerate(strategies):
        try:
            await strategy.preflight()
        except SourceUnusable as exc:
            if until_idle:
                raise
            warned[index] = describe(exc)
            log.warning("source unusable", strategy=strategy.name, error=warned[index])
        except PreflightError as exc:
            if exc.option == "--region" and default_region:
                continue
            raise
        except Exception as exc:
            raise PreflightError(
                f"strategy {strategy.name!r}: preflight failed: {describe(exc)}") from exc
    return warned
