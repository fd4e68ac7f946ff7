"""Counters of a webhook intake (``WebhookStrategy.statistics()``)."""

from __future__ import annotations

import dataclasses

__all__ = ["WebhookStatistics"]


@dataclasses.dataclass(slots=True)
class WebhookStatistics:
    """Records accepted, requests accepted, replays answered, refusals by status."""

    accepted: int = 0
    requests_accepted: int = 0
    replayed: int = 0
    refused: dict[int, int] = dataclasses.field(default_factory=dict)

    def copy(self) -> WebhookStatistics:
        return dataclasses.replace(self, refused=dict(self.refused))
