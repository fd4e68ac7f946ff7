"""``GET /metrics``: Prometheus text, named by the conventions in the design notes.

Each app owns a :class:`~prometheus_client.CollectorRegistry` holding one custom
collector. A scrape first reads the database (one aggregate query per table, see
:mod:`dispatch.control.queries`) and the hubs' live statistics, then renders:
counters come from the database, so they match it and survive restarts; gauges
come from the running hubs. The only labels are the campaign id, a reason and an
error code -- never a phone number or a record id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from dispatch import __version__
from dispatch.control.queries import (
    AttemptTallies,
    Histogram,
    attempt_tallies,
    retries_by_reason,
    skipped_by_reason,
)
from dispatch.control.target import ControlTarget
from dispatch.hub import HubStatistics
from dispatch.store import campaigns

__all__ = ["DispatchCollector", "Scrape", "metrics_endpoint", "read_scrape"]


@dataclasses.dataclass(frozen=True, slots=True)
class Scrape:
    """Everything one scrape renders, read beforehand (the collector does no I/O)."""

    rows: list[campaigns.Campaign]
    pending: dict[str, int]
    tallies: dict[str, AttemptTallies]
    skipped: dict[str, dict[str, int]]
    retries: dict[str, dict[str, int]]
    live: dict[str, HubStatistics]
    voice_connected: bool


async def read_scrape(target: ControlTarget) -> Scrape:
    engine = target.store.engine
    counts = await campaigns.record_counts(engine)
    return Scrape(
        rows=await campaigns.list_all(engine),
        pending={cid: by.get("pending", 0) + by.get("scheduled", 0)
                 for cid, by in counts.items()},
        tallies=await attempt_tallies(engine),
        skipped=await skipped_by_reason(engine),
        retries=await retries_by_reason(engine),
        live={h.campaign_id: h.statistics() for h in target.campaigns()},
        voice_connected=target.agent_registered,
    )


def _histogram(family: HistogramMetricFamily, campaign: str, hist: Histogram) -> None:
    buckets = [(repr(float(bound)), float(n)) for bound, n in hist.buckets]
    buckets.append(("+Inf", float(hist.count)))
    family.add_metric([campaign], buckets, hist.sum)


class DispatchCollector:
    """Renders the last :class:`Scrape` given to :meth:`set`."""

    def __init__(self) -> None:
        self._scrape: Scrape | None = None

    def set(self, scrape: Scrape) -> None:
        self._scrape = scrape

    def describe(self) -> list[Metric]:
        return []  # families are dynamic; registering must not call collect()

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("dispatch_build", "dispatch build metadata")
        info.add_metric([], {"version": __version__})
        yield info
        scrape = self._scrape
        if scrape is None:
            return
        yield from self._counters(scrape)
        yield from self._gauges(scrape)
        yield from self._histograms(scrape)

    def _counters(self, s: Scrape) -> Iterator[Metric]:
        dials = CounterMetricFamily("dispatch_dials", "Dials whose frame was sent",
                                    labels=["campaign"])
        ended = CounterMetricFamily("dispatch_calls_ended", "Calls ended, by reason",
                                    labels=["campaign", "reason"])
        skipped = CounterMetricFamily("dispatch_records_skipped",
                                      "Records skipped (never dialled), by reason",
                                      labels=["campaign", "reason"])
        retries = CounterMetricFamily("dispatch_retries_scheduled",
                                      "Retries scheduled, by the reason of the failed attempt",
                                      labels=["campaign", "reason"])
        for row in s.rows:
            tally = s.tallies.get(row.id)
            dials.add_metric([row.id], tally.dials if tally else 0)
            for family, by_reason in (
                    (ended, tally.ended_by_reason if tally else {}),
                    (skipped, s.skipped.get(row.id, {})), (retries, s.retries.get(row.id, {}))):
                for reason, n in sorted(by_reason.items()):
                    family.add_metric([row.id, reason], n)
        yield from (dials, ended, skipped, retries)

    def _gauges(self, s: Scrape) -> Iterator[Metric]:
        def gauge(name: str, text: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=["campaign"])

        live = gauge("dispatch_calls_live", "Calls live now")
        window = gauge("dispatch_rate_window_starts", "Dials started in the last 60 s")
        per_minute = gauge("dispatch_rate_limit_per_minute", "Dials allowed per 60 s")
        concurrency = gauge("dispatch_concurrency_limit", "Calls allowed live at once")
        pending = gauge("dispatch_records_pending", "Records waiting to be dialled")
        paused = gauge("dispatch_campaign_paused", "1 while the campaign is paused")
        behind = gauge("dispatch_callbacks_pending",
                       "Lifecycle events waiting for their callbacks (admission waits past "
                       "max_pending_callbacks)")
        for row in s.rows:
            stats = s.live.get(row.id)
            live.add_metric([row.id], stats.live_calls if stats else 0)
            window.add_metric([row.id], stats.dials_last_60s if stats else 0)
            if row.max_per_minute is not None:
                per_minute.add_metric([row.id], row.max_per_minute)
            if row.max_concurrent is not None:
                concurrency.add_metric([row.id], row.max_concurrent)
            pending.add_metric([row.id], s.pending.get(row.id, 0))
            paused.add_metric([row.id], 1 if row.state == "paused" else 0)
            behind.add_metric([row.id], stats.callbacks_pending if stats else 0)
        voice = GaugeMetricFamily("dispatch_voice_connected",
                                  "1 while the voice server is connected and the agent registered")
        voice.add_metric([], 1 if s.voice_connected else 0)
        yield from (live, window, per_minute, concurrency, pending, paused, behind, voice)

    def _histograms(self, s: Scrape) -> Iterator[Metric]:
        latency = HistogramMetricFamily("dispatch_dial_latency_seconds",
                                        "Claim to call.dialing", labels=["campaign"])
        duration = HistogramMetricFamily("dispatch_call_duration_seconds",
                                         "Duration of ended calls", labels=["campaign"])
        for row in s.rows:
            tally = s.tallies.get(row.id)
            if tally is not None:
                _histogram(latency, row.id, tally.dial_latency)
                _histogram(duration, row.id, tally.call_duration)
        yield from (latency, duration)


def new_registry() -> tuple[CollectorRegistry, DispatchCollector]:
    registry = CollectorRegistry(auto_describe=False)
    collector = DispatchCollector()
    registry.register(collector)  # type: ignore[arg-type]
    return registry, collector


async def metrics_endpoint(request: Request) -> Response:
    target: ControlTarget = request.app.state.target
    registry: CollectorRegistry = request.app.state.registry
    collector: DispatchCollector = request.app.state.collector
    collector.set(await read_scrape(target))
    # rendering is pure CPU over a few dozen families: cheap enough for the loop
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
