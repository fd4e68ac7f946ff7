"""The live panel: next dial, ETA and the draining line, rendered from statistics fields."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from rich.console import Console

from dispatch.cli import progress


def _text(fields: dict[str, Any], eta_s: float | None, footer: str | None = None) -> str:
    console = Console(record=True, width=200)
    console.print(progress.render_panel(fields, eta_s, title="t", footer=footer))
    return console.export_text()


@pytest.mark.parametrize(
    ("eta", "waiting_on", "shown"),
    [
        (0.0, None, "next dial now"),
        (3.24, "rate", "next dial in 3.2s"),
        (42.4, "rate", "next dial in 42s"),
        (75.0, "schedule", "next dial in 1m15s"),
        (None, "concurrency", "next dial when a call ends"),
        (None, "phone", "next dial when that number's call ends"),
        (None, None, "next dial —"),
    ],
)
def test_next_dial_says_when_or_what_it_waits_for(
    eta: float | None, waiting_on: str | None, shown: str
) -> None:
    assert shown in _text({"next_dial_eta_s": eta, "waiting_on": waiting_on}, None)


def test_a_known_eta_is_shown_and_the_drain_line_is_added() -> None:
    text = _text({"pending": 3, "live_calls": 2}, 125.0, footer="draining: 2 live call(s) left")
    assert "ETA 2m05s" in text and "draining: 2 live call(s) left" in text


def test_the_eta_is_unknown_before_anything_was_read_and_zero_when_done() -> None:
    estimator = progress.EtaEstimator()
    assert estimator.update({}, now=0.0) is None
    assert estimator.update({"completed": 3}, now=1.0) == 0.0


def test_the_hubs_own_eta_wins() -> None:
    assert progress.EtaEstimator().update({"pending": 5, "eta_s": 30.0}, now=0.0) == 30.0


class _RateBoundCampaign:
    """40 records, 10 calls per minute, 20 s calls, concurrency 10: the exact sliding
    window lets dials out in bursts of 10 at t = 0, 60, 120, 180."""

    cap, records, call_s = 10, 40, 20.0

    def fields(self, t: float) -> dict[str, Any]:
        dial_times = [60.0 * (i // self.cap) for i in range(self.records)]
        dialled = [d for d in dial_times if d <= t]
        ended = [d for d in dialled if d + self.call_s <= t]
        window = [d for d in dialled if d > t - 60.0]
        pending = self.records - len(dialled)
        next_s = (min(window) + 60.0 - t) if pending and len(window) >= self.cap else 0.0
        return {
            "pending": pending, "scheduled": 0, "dialing": 0,
            "active": len(dialled) - len(ended), "completed": len(ended), "failed": 0,
            "skipped": 0, "dials_last_60s": len(window), "dials_total": len(dialled),
            "max_calls_per_minute": self.cap, "max_concurrent": 10,
            "next_dial_eta_s": next_s if pending else None,
            "waiting_on": "rate" if pending and next_s > 0 else None,
        }


def test_the_eta_of_a_rate_bound_campaign_counts_down_to_the_last_dial() -> None:
    campaign, estimator = _RateBoundCampaign(), progress.EtaEstimator()
    last_dial_at = 180.0
    etas = []
    for step in range(0, 4 * 179):  # the live panel samples 4 times a second
        t = step / 4
        eta = estimator.update(campaign.fields(t), now=t)
        if t >= 1.0:
            assert eta == pytest.approx(last_dial_at - t, abs=0.5), t
            etas.append(eta)
    assert all(b < a for a, b in itertools.pairwise(etas)), "it never climbs"


def test_the_eta_without_a_rate_limit_follows_the_completion_rate() -> None:
    estimator = progress.EtaEstimator()
    for t in range(0, 31):  # one record finishes every second, 100 records
        fields = {"pending": 100 - t, "completed": t}
        eta = estimator.update(fields, now=float(t))
    assert eta == pytest.approx(70.0)


def test_drain_message_names_the_live_calls_and_the_second_signal() -> None:
    text = progress.drain_message("SIGINT", 3, 600.0)
    assert text == ("Ctrl-C: draining. No new dials; 3 live call(s) left to finish by "
                    "themselves (hung up after 10 min). To hang up on them now, press Ctrl-C "
                    "again.")
    assert "send SIGTERM again" in progress.drain_message("SIGTERM", 0, None)
