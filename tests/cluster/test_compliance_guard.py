"""Several dispatchers on PostgreSQL do not run the admission step yet: a hub asked to
apply calling hours there is refused before it stores or dials anything (never a
silent bypass); with ``compliance=None`` the same campaign runs (positive control)."""

from __future__ import annotations

import pytest

from dispatch.clock import SystemClock
from dispatch.compliance import ComplianceSettings
from dispatch.errors import PreflightError
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.testing import MemoryDialer, MemoryStrategy

pytestmark = pytest.mark.anyio

PHONE = "+14155550100"


async def test_compliance_on_a_shared_database_is_refused_before_any_dial(pg_url: str) -> None:
    clock = SystemClock()
    dialer = MemoryDialer(clock)
    refused = DispatchHub(dialer, [MemoryStrategy([Record(id="a", phone=PHONE)])],
                          db=pg_url, campaign="guard", clock=clock,
                          compliance=ComplianceSettings())
    with pytest.raises(PreflightError, match="--no-compliance") as info:
        await refused.run(until_idle=True)
    assert info.value.option == "--db"
    assert dialer.dials == []

    allowed = DispatchHub(dialer, [MemoryStrategy([Record(id="a", phone=PHONE)])],
                          db=pg_url, campaign="guard", clock=clock)
    await allowed.run(until_idle=True)
    assert [d.to for d in dialer.dials] == [PHONE]
