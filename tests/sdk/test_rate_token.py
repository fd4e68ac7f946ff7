"""``Agent.dial(rate_token=...)``: spent in the step that writes the frame, released
on every path where the frame never leaves (real SDK, real loopback sandbox)."""

from __future__ import annotations

import time

import anyio
import pytest

from dispatch.sandbox import SANDBOX_NUMBER, Sandbox, Scenario
from dispatch.sdk import ConfigurationError, DialFailed, NotConnected, Pinecall

pytestmark = pytest.mark.anyio
QUICK = Scenario.from_toml("[defaults]\nring_s = 0.1\ntalk_s = 0.1\nbusy_ring_s = 0.1\n")


class SpyToken:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def spend(self) -> None:
        self.calls.append(("spend", time.time()))

    def release(self) -> None:
        self.calls.append(("release", time.time()))

    @property
    def what(self) -> list[str]:
        return [name for name, _at in self.calls]


async def test_spent_once_before_the_server_receives_the_frame() -> None:
    async with Sandbox(speed=100, scenario=QUICK) as sandbox, \
            Pinecall("pk", sandbox.url) as pc:
        agent = await pc.agent("a", phone_number=SANDBOX_NUMBER).ready()
        answered, busy = SpyToken(), SpyToken()
        call = await agent.dial("+15550000001", rate_token=answered)
        await call.wait_ended()
        with pytest.raises(DialFailed):
            await agent.dial("+15550000086", rate_token=busy)  # refused by the callee
        received = [d.received_at for d in sandbox.dials]
    assert answered.what == busy.what == ["spend"]
    assert answered.calls[0][1] <= received[0] and busy.calls[0][1] <= received[1]


async def test_released_when_the_frame_never_leaves() -> None:
    async with Sandbox(speed=100, scenario=QUICK) as sandbox, \
            Pinecall("pk", sandbox.url) as pc:
        agent = await pc.agent("a", phone_number=SANDBOX_NUMBER).ready()
        bad, cancelled = SpyToken(), SpyToken()
        with pytest.raises(ConfigurationError):
            await agent.dial("0123", rate_token=bad)  # not E.164: nothing sent
        waiting = pc.agent("b", phone_number="+15005550007")  # still registering
        with anyio.move_on_after(0):  # cancelled while it waits to be registered
            await waiting.dial("+15550000002", rate_token=cancelled)
        sent = SpyToken()
        call = await agent.dial("+15550000003", rate_token=sent)  # the control: it leaves
        await call.wait_ended()
        received = [d.to for d in sandbox.dials]
        await pc.close()
        offline = SpyToken()
        with pytest.raises(NotConnected):
            await agent.dial("+15550000004", rate_token=offline)
    assert bad.what == cancelled.what == offline.what == ["release"]
    assert sent.what == ["spend"]
    assert received == ["+15550000003"]  # the cancelled dial never reached the server
