"""Shared helpers: local wall times to epoch seconds, a fake attempt log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.compliance import ComplianceSettings, DialContext


def at(local: str, zone: str, fold: int = 0) -> float:
    """Epoch seconds of local wall time ``local`` (ISO) in ``zone``."""
    return dt.datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone), fold=fold).timestamp()


def local(epoch_s: float | None, zone: str) -> str:
    """``epoch_s`` as local ISO wall time with offset (for readable asserts)."""
    assert epoch_s is not None
    return dt.datetime.fromtimestamp(epoch_s, ZoneInfo(zone)).isoformat()


class FakeAttempts:
    """AttemptLog over explicit lists."""

    def __init__(self, by_phone: Mapping[str, Sequence[float]] | None = None,
                 by_campaign: Mapping[str, Sequence[float]] | None = None) -> None:
        self.by_phone = dict(by_phone or {})
        self.by_campaign = dict(by_campaign or {})

    def phone_attempts_since(self, phone: str, since_s: float) -> Sequence[float]:
        return sorted(t for t in self.by_phone.get(phone, ()) if t > since_s)

    def campaign_attempts_since(self, campaign: str, since_s: float) -> Sequence[float]:
        return sorted(t for t in self.by_campaign.get(campaign, ()) if t > since_s)


def ctx(now_s: float, phone: str, settings: ComplianceSettings | None = None,
        attempts: FakeAttempts | None = None, **fields: Any) -> DialContext:
    return DialContext(now_s=now_s, phone=phone, record_id="r1",
                       settings=settings or ComplianceSettings(),
                       attempts=attempts or FakeAttempts(), fields=fields)
