"""The state shared by the hub's loops and call tasks (:class:`HubCore`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from dispatch.clock import Clock
from dispatch.cluster.coordinator import Coordinator, LocalCoordinator
from dispatch.errors import CampaignError
from dispatch.hub.admission import HubCompliance
from dispatch.hub.campaign import CampaignGuard
from dispatch.hub.campaign_state import CampaignWatch
from dispatch.hub.dialer import Dialer
from dispatch.hub.eta import SlotTimes
from dispatch.hub.limiter import ConcurrencyGate, DialPacer, SlidingWindowLimiter
from dispatch.hub.notify import Notifier
from dispatch.hub.refusals import PlatformThrottle
from dispatch.hub.retry import RetryPolicy
from dispatch.hub.scheduling import DialQueue
from dispatch.hub.sources import SourceHealth
from dispatch.hub.state import Book, RecordEntry
from dispatch.hub.waiting import clock_seconds_per_real_s, wait_event_until
from dispatch.records import Record
from dispatch.store import Store, WriteOp
from dispatch.strategy import Outcome, Strategy

__all__ = ["DispatchOps", "HubCore", "HubOptions", "OutcomeOps", "Signal"]

#: claim-ahead (real seconds): a rate-bound dial is claimed up to this long before its
#: token frees, so the claim's commit is done when the window lets the frame leave
CLAIM_LEAD_REAL_S = 0.05

#: ops to commit with a terminal outcome (e.g. result-webhook outbox rows),
#: called with the outcome, the record's stored source and the last call's duration
OutcomeOps = Callable[[Outcome, str, float | None], list[WriteOp]]
#: ops to commit with a dial's ``dialing`` state: (record, source, call id,
#: attempt number)
DispatchOps = Callable[[Record, str, str, int], list[WriteOp]]


class Signal:
    """A wake-up flag with one waiter: ``set()`` from anywhere, ``wait`` resets it."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        self._event.set()

    async def wait(self, clock: Clock, deadline: float | None = None) -> None:
        await wait_event_until(self._event, clock, deadline)
        if self._event.is_set():
            self._event = anyio.Event()


@dataclasses.dataclass(frozen=True, slots=True)
class HubOptions:
    """Settings fixed for a hub's life."""

    from_: str | None
    max_calls_per_minute: int | None
    max_concurrent: int | None
    retry_attempts: int | None
    retry_policy: RetryPolicy
    poll_interval_s: float
    default_region: str | None
    dial_timeout_s: float
    detect_turn_end: bool
    claim_batch_size: int
    hangup_grace_s: float
    callback_drain_s: float
    drain_timeout_s: float | None
    max_record_bytes: int | None = 65_536
    max_calls_per_second: int | None = None
    pace_margin_s: float = 0.0

    def summary(self, strategies: Sequence[Strategy]) -> dict[str, Any]:
        """JSON-safe config for the ``runs`` table (no secrets)."""
        return {
            "from": self.from_,
            "max_calls_per_minute": self.max_calls_per_minute,
            "max_calls_per_second": self.max_calls_per_second,
            "pace_margin_s": self.pace_margin_s,
            "max_concurrent": self.max_concurrent,
            "retry_attempts": self.retry_attempts,
            "retry_delays_s": {str(k): v for k, v in self.retry_policy.delays_s.items()},
            "retry_max_attempts": self.retry_policy.max_attempts,
            "poll_interval_s": self.poll_interval_s,
            "dial_timeout_s": self.dial_timeout_s,
            "default_region": self.default_region,
            "max_record_bytes": self.max_record_bytes,
            "strategies": [s.name for s in strategies],
        }


@dataclasses.dataclass(eq=False)
class StopMode:
    drain: bool = True
    timeout_s: float | None = None


@dataclasses.dataclass(eq=False)
class HubCore:
    """Everything the hub's tasks share. Only touched from the event loop thread."""

    agent: Dialer
    store: Store
    clock: Clock
    strategies: Sequence[Strategy]
    options: HubOptions
    notifier: Notifier
    until_idle: bool = False
    run_id: int | None = None
    queue: DialQueue = dataclasses.field(default_factory=DialQueue)
    book: Book = dataclasses.field(default_factory=Book)
    #: the per-minute log (starts of earlier runs are preloaded into it)
    window: SlidingWindowLimiter = dataclasses.field(init=False)
    #: both rate limits, with the tokens of claimed dials not yet sent
    pace: DialPacer = dataclasses.field(init=False)
    gate: ConcurrencyGate = dataclasses.field(init=False)
    dispatch_signal: Signal = dataclasses.field(default_factory=Signal)
    poll_signal: Signal = dataclasses.field(default_factory=Signal)
    ended_signal: Signal = dataclasses.field(default_factory=Signal)
    calls_tg: TaskGroup | None = None
    control_scope: anyio.CancelScope | None = None
    stop_mode: StopMode | None = None
    polled_dry: bool = False
    #: requeued records held until the first poll round may refresh them (.requeued)
    held: dict[str, RecordEntry] = dataclasses.field(default_factory=dict)
    idle_reached: bool = False
    slot_times: SlotTimes = dataclasses.field(default_factory=SlotTimes)
    campaign: CampaignGuard = dataclasses.field(default_factory=CampaignGuard)
    #: the campaign row's state as last read (.campaign_state)
    watch: CampaignWatch = dataclasses.field(default_factory=CampaignWatch)
    #: the campaign-wide error that ended the run (raised by ``run()`` after draining)
    fatal: CampaignError | None = None
    # the platform's refusals and opt-outs (.refusals)
    #: ``(phone, campaign, record_id, source)`` -> the internal DNC list, durably
    opt_out_sink: Callable[[str, str, str, str], Awaitable[None]] | None = None
    #: numbers put on the internal list during this run (never dialled again by it)
    suppressed: set[str] = dataclasses.field(default_factory=set)
    #: the pace the platform allows after its rate refusals
    throttle: PlatformThrottle = dataclasses.field(init=False)
    #: extra ops written in the same commit as a terminal outcome (outbox rows)
    outcome_ops: list[OutcomeOps] = dataclasses.field(default_factory=list)
    dispatch_ops: list[DispatchOps] = dataclasses.field(default_factory=list)
    #: the admission step and the internal do-not-call list (``add_opt_out``)
    compliance: HubCompliance = dataclasses.field(default_factory=lambda: HubCompliance(None))
    #: cluster: the other dispatchers of this database (local: no-ops)
    coordinator: Coordinator = dataclasses.field(default_factory=LocalCoordinator)
    #: claim-ahead, in clock seconds: how long before its rate token frees a dial may
    #: be claimed (0 on a clock that does not follow real time)
    claim_lead_s: float = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        margin_s = self.options.pace_margin_s
        self.window = SlidingWindowLimiter(self.options.max_calls_per_minute, 60.0 + margin_s)
        per_second = None
        if self.options.max_calls_per_second is not None:
            per_second = SlidingWindowLimiter(self.options.max_calls_per_second, 1.0 + margin_s,
                                              name="max_calls_per_second")
        self.pace = DialPacer(self.clock, self.window, per_second,
                              on_release=self.dispatch_signal.set)
        rate = clock_seconds_per_real_s(self.clock)
        self.claim_lead_s = 0.0 if rate is None else CLAIM_LEAD_REAL_S * rate
        self.gate = ConcurrencyGate(self.options.max_concurrent)
        self.throttle = PlatformThrottle(self.window)
        self.health = [SourceHealth(strategy.name) for strategy in self.strategies]

    def terminal_ops(self, outcome: Outcome, source: str,
                     duration_s: float | None = None) -> list[WriteOp]:
        """Extra rows written in the same commit as a terminal outcome (result-webhook
        outbox rows): every path that ends a record adds them."""
        return [op for hook in self.outcome_ops for op in hook(outcome, source, duration_s)]

    @property
    def stopping(self) -> bool:
        return self.stop_mode is not None

    def phone_of(self, record_id: str) -> str:
        return self.book.entries[record_id].record.phone

    def request_stop(self, *, drain: bool, timeout_s: float | None) -> None:
        """Stop dialling; a later ``drain=False`` escalates a running drain."""
        if self.stop_mode is None:
            self.stop_mode = StopMode(drain, timeout_s)
        elif not drain:
            self.stop_mode.drain = False
        if self.control_scope is not None:
            self.control_scope.cancel()
        self.ended_signal.set()

    def fail(self, error: CampaignError) -> None:
        """End the campaign: stop dialling, drain live calls; ``run()`` raises ``error``."""
        if self.fatal is None:
            self.fatal = error
        self.request_stop(drain=True, timeout_s=None)

    def check_idle(self) -> None:
        """In ``until_idle`` mode, stop once nothing is left and a poll found nothing new.

        A failing source is never "nothing new": the run waits for its retries and,
        once it has failed often enough, ends with :class:`SourceFailing`.
        """
        if not self.until_idle or self.stopping or self.book.active:
            return
        if not self.coordinator.idle():  # cluster: records left anywhere in the database
            return
        given_up = next((h for h in self.health if h.given_up), None)
        if given_up is not None:
            self.fail(given_up.error())
            return
        if any(h.failing for h in self.health):
            return  # the poll loop retries it on its backoff
        if self.polled_dry:
            self.idle_reached = True
            self.request_stop(drain=True, timeout_s=None)
        else:
            self.poll_signal.set()
