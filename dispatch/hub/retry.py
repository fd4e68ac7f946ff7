"""When to dial a record again: :class:`RetryPolicy`.

One knob: ``RetryPolicy(max_attempts=N)`` gives a record up to N dials in total.
The hub's ``retry_attempts=K`` (the JS library's option) is shorthand for
``max_attempts=K + 1`` for ordinary failures (busy, no answer, failed, timeout);
without a policy the hub keeps the default lifetime cap (5) above it so that
attempts cut by our side (a crash, a lost connection: ``interrupted``, unanswered
``disconnected``) are still retried, within that cap, and never immediately.
Answered calls are never retried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from dispatch.reasons import Reason

__all__ = ["DEFAULT_DELAYS_S", "MIN_INFRA_DELAY_S", "RetryPolicy", "resolve_retry_settings"]

#: reasons that retry by default, and the delay before the next dial
DEFAULT_DELAYS_S: Mapping[Reason, float] = MappingProxyType(
    {
        Reason.BUSY: 120.0,
        Reason.NO_ANSWER: 600.0,
        Reason.FAILED: 900.0,
        Reason.TIMEOUT: 600.0,
        Reason.INTERRUPTED: 300.0,
        Reason.DISCONNECTED: 120.0,
    }
)

#: reasons that are not the callee's doing
INFRA_REASONS = frozenset({Reason.INTERRUPTED, Reason.DISCONNECTED})
#: "never immediately": the smallest delay accepted for an infrastructure reason
MIN_INFRA_DELAY_S = 1.0


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Which outcomes retry, after how long, and how many dials a record gets in total.

    ``delays_s`` maps each retryable reason to its base delay; ``backoff`` multiplies
    the delay by ``backoff ** (attempts - 1)``, capped at ``max_delay_s``.
    ``max_attempts`` is the lifetime cap on dials of one record (across runs).
    ``infra_reasons`` retry up to ``max_attempts`` regardless of ``retry_attempts``.
    ``retry_unknown``: see the field (default: such a record is ``failed``/``unknown``).
    Raises ``ValueError`` for negative delays, an infra delay below 1 s, or a cap < 1.
    """

    delays_s: Mapping[Reason, float] = dataclasses.field(default_factory=lambda: DEFAULT_DELAYS_S)
    max_attempts: int = 5
    backoff: float = 1.0
    max_delay_s: float = 6 * 3600.0
    infra_reasons: frozenset[Reason] = INFRA_REASONS
    #: an attempt cut by a crash whose outcome the voice server cannot tell (reason
    #: ``unknown``) is redialled (as ``interrupted``) only when this is set
    retry_unknown: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.backoff < 1.0:
            raise ValueError(f"RetryPolicy.backoff must be >= 1, got {self.backoff}")
        for reason, delay_s in self.delays_s.items():
            if delay_s < 0:
                raise ValueError(f"RetryPolicy delay for {reason} is negative: {delay_s}")
            if reason in self.infra_reasons and delay_s < MIN_INFRA_DELAY_S:
                raise ValueError(
                    f"RetryPolicy delay for {reason} must be >= {MIN_INFRA_DELAY_S} s "
                    "(never redial immediately after an interruption)"
                )

    def delay_s(self, reason: Reason, attempts: int) -> float:
        """The wait before the next dial after ``attempts`` dials ended with ``reason``."""
        base = self.delays_s[reason]
        return min(self.max_delay_s, base * self.backoff ** max(0, attempts - 1))

    def next_delay_s(
        self, reason: Reason, *, answered: bool, attempts: int, retry_attempts: int | None = None
    ) -> float | None:
        """Seconds until the next dial, or ``None`` when the record is given up.

        ``attempts`` is how many dials the record has had (including this one).
        ``retry_attempts`` (the hub's, when set) narrows the dials for callee
        outcomes to ``1 + retry_attempts``; ``None``: ``max_attempts`` alone.
        """
        if answered or reason not in self.delays_s or attempts >= self.max_attempts:
            return None
        if (reason not in self.infra_reasons and retry_attempts is not None
                and attempts >= 1 + retry_attempts):
            return None
        return self.delay_s(reason, attempts)


def resolve_retry_settings(
    retry_attempts: int | None, retry_policy: RetryPolicy | None
) -> tuple[int | None, RetryPolicy]:
    """One knob: ``retry_attempts=N`` is shorthand for ``max_attempts=N + 1`` dials.

    Without a policy, ``retry_attempts`` (default 0) sets the dials for callee
    outcomes and the default policy's lifetime cap (5) still lets attempts cut by a
    crash or a dropped line be retried. With a policy, its ``max_attempts`` rules;
    ``retry_attempts`` may only narrow it (asking for more dials than the policy
    allows is a ``ValueError``).
    """
    if retry_attempts is not None and retry_attempts < 0:
        raise ValueError(f"retry_attempts must be >= 0, got {retry_attempts}")
    if retry_policy is None:
        wanted = retry_attempts or 0
        # the default lifetime cap must never cut the retries the caller asked for
        cap = max(RetryPolicy.max_attempts, 1 + wanted)
        return wanted, RetryPolicy(max_attempts=cap)
    if retry_attempts is not None and 1 + retry_attempts > retry_policy.max_attempts:
        raise ValueError(
            f"retry_attempts={retry_attempts} asks for {1 + retry_attempts} dials per record "
            f"but retry_policy.max_attempts={retry_policy.max_attempts}; set only "
            "RetryPolicy(max_attempts=...)")
    return retry_attempts, retry_policy
