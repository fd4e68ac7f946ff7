"""A real stack for the control-plane tests: embedded sandbox, SDK agent, DispatchHub on
a SQLite file, the control app under uvicorn on a loopback port, an httpx client."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from dispatch.control import ControlServer, HubsTarget, create_app
from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox, Scenario
from dispatch.sdk import Pinecall
from dispatch.store import Store, open_store
from dispatch.testing import MemoryStrategy

#: answered calls of about a second: a campaign lasts long enough to steer it
CALLS = Scenario.from_toml("[defaults]\nring_s = 0.3\ntalk_s = [0.8, 1.2]\n"
                            "no_answer_ring_s = 0.3\nbusy_ring_s = 0.2\nfailed_ring_s = 0.2\n")
CAMPAIGN = "reminders"


def answered(n: int, prefix: str = "r", start: int = 0) -> list[Record]:
    """``n`` records whose numbers the sandbox answers (last two digits < 60)."""
    return [Record(id=f"{prefix}{i}", phone=f"+1555{i:05d}{i % 60:02d}")
            for i in range(start, start + n)]


def unanswered(n: int, prefix: str = "na") -> list[Record]:
    """``n`` records that ring out (``no_answer``: last two digits 60-74)."""
    return [Record(id=f"{prefix}{i}", phone=f"+1556{i:05d}{60 + i % 15:02d}") for i in range(n)]


@dataclasses.dataclass
class Stack:
    sandbox: Sandbox
    store: Store
    hub: DispatchHub
    client: httpx.AsyncClient
    url: str
    tg: anyio.abc.TaskGroup
    agent: Any
    target: HubsTarget
    #: set when the hub's run() has returned
    hub_done: anyio.Event

    async def wait_hub_done(self, timeout_s: float = 30.0) -> None:
        with anyio.fail_after(timeout_s):
            await self.hub_done.wait()

    def dials(self) -> int:
        return len(self.sandbox.dials)

    async def campaign(self) -> dict[str, Any]:
        response = await self.client.get(f"/v1/campaigns/{CAMPAIGN}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def wait_for(self, predicate: Callable[[], Any], timeout_s: float = 20.0,
                       what: str = "condition") -> None:
        with anyio.fail_after(timeout_s):
            while not predicate():  # noqa: ASYNC110 - polling observable state
                await anyio.sleep(0.02)

    async def wait_acked(self, state: str, timeout_s: float = 10.0) -> None:
        with anyio.fail_after(timeout_s):
            while (await self.campaign())["acked_state"] != state:  # noqa: ASYNC110
                await anyio.sleep(0.05)

    async def wait_row(self) -> None:
        with anyio.fail_after(20):
            path = f"/v1/campaigns/{CAMPAIGN}"
            while (await self.client.get(path)).status_code != 200:  # noqa: ASYNC110
                await anyio.sleep(0.05)


@contextlib.asynccontextmanager
async def control_stack(
    tmp_path: Path, records: list[Record], *, token: str | None = None, run_hub: bool = True,
    until_idle: bool = False, **hub_options: Any,
) -> AsyncIterator[Stack]:
    """Everything running; on exit the hub stops (live calls hung up) and uvicorn exits."""
    hub_options = {"max_concurrent": 3, "max_calls_per_minute": 600, **hub_options}
    async with contextlib.AsyncExitStack() as stack:
        sandbox = await stack.enter_async_context(Sandbox(seed=7, scenario=CALLS))
        pc = await stack.enter_async_context(Pinecall(url=sandbox.url))
        agent = pc.agent("ctl", phone_number=SANDBOX_NUMBER)
        await agent.ready()
        store = await stack.enter_async_context(open_store(tmp_path / "ctl.db"))
        hub = DispatchHub(agent, [MemoryStrategy(records)], from_=SANDBOX_NUMBER, db=store,
                          campaign=CAMPAIGN, poll_interval_s=0.5, drain_timeout_s=5.0,
                          hangup_grace_s=2.0, callback_drain_s=2.0, **hub_options)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with anyio.create_task_group() as tg:
            target = HubsTarget([hub], store)
            server = ControlServer(create_app(target, token=token), port=0)
            url = await tg.start(server.run)
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as client:
                hub_done = anyio.Event()

                async def run() -> None:
                    try:
                        await hub.run(until_idle=until_idle)
                    finally:
                        hub_done.set()

                if run_hub:
                    tg.start_soon(run)
                try:
                    yield Stack(sandbox, store, hub, client, url, tg, agent, target, hub_done)
                finally:
                    with anyio.CancelScope(shield=True), anyio.move_on_after(15):
                        await hub.stop(drain=False)
                    server.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclasses.dataclass
class RunShaped:
    """A campaign handle shaped like ``dispatch.daemon``'s: ``id`` and ``hub``."""

    id: str
    hub: DispatchHub


@dataclasses.dataclass
class DaemonShaped:
    """A target shaped like ``dispatch.daemon.Daemon`` (no CampaignHandle objects)."""

    runs: list[RunShaped]
    store: Store | None
    draining: bool = False
    agent_registered: bool = True
    last_tick_at: float = 0.0
    reloads: int = 0

    def campaigns(self) -> list[RunShaped]:
        return list(self.runs)

    def request_reload(self) -> None:
        self.reloads += 1
