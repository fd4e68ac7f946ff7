"""A DispatchHub with the admission step on a shared PostgreSQL database (in process,
MemoryDialer): compliance on a shared store runs (no refusal any more); only the
embedded sandbox's simulated clock is refused there, in one line naming the option;
an all-deferred campaign sleeps until the opening instead of claiming every poll floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.cluster import pg
from dispatch.cluster.claims import claim_batch
from dispatch.cluster.options import ClusterOptions
from dispatch.cluster.pg import PgCoordinator
from dispatch.compliance import ComplianceSettings
from dispatch.errors import PreflightError
from dispatch.hub import DispatchHub
from dispatch.hub.admission import Compliance
from dispatch.records import Record
from dispatch.store import Store
from dispatch.testing import Answer, MemoryDialer, MemoryStrategy
from tests.compliance.helpers import at

from .compliance_child import ShiftedClock

pytestmark = pytest.mark.anyio

LA, NY = "America/Los_Angeles", "America/New_York"
CLUSTER = ClusterOptions(lease_ttl_s=2.0, poll_floor_s=0.2, sweep_interval_s=0.3)


def _clock(local: str, zone: str) -> ShiftedClock:
    import time

    return ShiftedClock(1.0, time.time(), at(local, zone))


def _hub(pg_url: str, clock: Any, dialer: MemoryDialer, recs: list[Record],
         compliance: Compliance | None, campaign: str) -> DispatchHub:
    return DispatchHub(dialer, [MemoryStrategy(recs)], db=pg_url, campaign=campaign,
                       clock=clock, compliance=compliance, poll_interval_s=0.5,
                       cluster=CLUSTER, drain_timeout_s=None)


async def test_compliance_runs_on_a_shared_database(pg_url: str, tmp_path: Path) -> None:
    dnc_file = tmp_path / "dnc.txt"
    dnc_file.write_text("+12125550102\n", encoding="utf-8")
    clock = _clock("2026-03-10T10:00:00", NY)
    dialer = MemoryDialer(clock, default=Answer(1))
    recs = [Record(id="a", phone="+12125550101"), Record(id="b", phone="+12125550102")]
    hub = _hub(pg_url, clock, dialer, recs, Compliance(dnc_files=[dnc_file]), "shared")
    with anyio.fail_after(60):
        await hub.run(until_idle=True)
    assert [d.to for d in dialer.dials] == ["+12125550101"]  # b is on the file
    stats = hub.statistics()
    assert stats is not None


async def test_the_simulated_sandbox_clock_is_refused_on_a_shared_database(
        pg_url: str) -> None:
    clock = _clock("2026-03-10T10:00:00", NY)
    dialer = MemoryDialer(clock)
    recs = [Record(id="a", phone="+12125550101")]
    simulated = Compliance(sandbox_time_s=at("2026-03-10T10:00:00", NY))
    refused = _hub(pg_url, clock, dialer, recs, simulated, "simulated")
    with pytest.raises(PreflightError, match="--sandbox-time real") as info:
        await refused.run(until_idle=True)
    assert info.value.option == "--sandbox-time"
    assert "\n" not in str(info.value)
    assert dialer.dials == []
    real = _hub(pg_url, clock, dialer, recs, Compliance(), "simulated")  # positive control
    with anyio.fail_after(60):
        await real.run(until_idle=True)
    assert [d.to for d in dialer.dials] == ["+12125550101"]


async def test_an_all_deferred_campaign_sleeps_until_the_opening(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    claims: list[float] = []  # claim transactions

    async def counted(coord: PgCoordinator, core: Any, room: int) -> Any:
        claims.append(core.clock.now())
        return await claim_batch(coord, core, room)

    monkeypatch.setattr(pg, "claim_batch", counted)
    async with await Store.open(pg_url):
        pass  # the schema first: the clock starts when the hub is about to
    clock = _clock("2026-03-10T07:59:57", LA)  # Los Angeles opens in 3 s
    opening = at("2026-03-10T08:00:00", LA)
    dialer = MemoryDialer(clock, default=Answer(1))
    recs = [Record(id="la", phone="+12135550101")]
    hub = _hub(pg_url, clock, dialer, recs, Compliance(settings=ComplianceSettings()), "sleep")
    with anyio.fail_after(60):
        await hub.run(until_idle=True)
    assert [d.to for d in dialer.dials] == ["+12135550101"]  # dialled at the opening
    assert dialer.dials[0].at >= opening
    waiting = [t for t in claims if t < opening]
    # one claim defers it, one more finds nothing due and sleeps until the opening;
    # polling every 0.2 s floor would have made ~15 claims in those 3 s
    assert 1 <= len(waiting) <= 4, waiting
