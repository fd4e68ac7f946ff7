"""The live panel: next dial, ETA and the draining line, rendered from statistics fields."""

from __future__ import annotations

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


def test_the_eta_is_the_hubs_own_and_unknown_before_anything_was_read() -> None:
    assert progress.campaign_eta({}) is None
    assert progress.campaign_eta({"completed": 3}) == 0.0
    assert progress.campaign_eta({"pending": 5, "campaign_eta_s": 30.0}) == 30.0
    assert progress.campaign_eta({"pending": 5, "campaign_eta_s": None}) is None


def test_a_failing_source_is_shown_in_the_panel() -> None:
    failure = {"strategy": "csv", "consecutive_failures": 4, "last_error": "OSError: gone",
               "next_retry_at": 0.0}
    text = _text({"pending": 1, "failing_sources": [failure]}, None)
    assert "source 'csv' failing (4 in a row): OSError: gone" in text


def test_drain_message_names_the_live_calls_and_the_second_signal() -> None:
    text = progress.drain_message("SIGINT", 3, 600.0)
    assert text == ("Ctrl-C: draining. No new dials; 3 live call(s) left to finish by "
                    "themselves (hung up after 10 min). To hang up on them now, press Ctrl-C "
                    "again.")
    assert "send SIGTERM again" in progress.drain_message("SIGTERM", 0, None)
