"""create_app also takes a daemon-shaped target: handles with ``id``/``hub``, a store
that may still be ``None``, ``last_tick_at`` for ``/healthz``, ``request_reload``."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from dispatch.control import ControlServer, create_app
from tests.control.conftest import CAMPAIGN, DaemonShaped, RunShaped, answered, control_stack

pytestmark = pytest.mark.anyio


async def test_a_daemon_shaped_target_is_served(tmp_path: Path) -> None:
    async with control_stack(tmp_path, answered(20)) as stack:
        await stack.wait_for(lambda: stack.dials() >= 2, what="first dials")
        daemon = DaemonShaped([RunShaped(CAMPAIGN, stack.hub)], None,
                              last_tick_at=anyio.current_time())
        async with anyio.create_task_group() as tg:
            server = ControlServer(create_app(daemon, token=None), port=0)
            url = await tg.start(server.run)
            async with httpx.AsyncClient(base_url=url) as client:
                early = await client.get(f"/v1/campaigns/{CAMPAIGN}")
                assert early.status_code == 503 and "not open yet" in early.json()["detail"]
                assert (await client.get("/readyz")).status_code == 503

                daemon.store = stack.store
                view = (await client.get(f"/v1/campaigns/{CAMPAIGN}")).json()
                assert view["live"] is not None and view["counts_from"] == "hub"
                assert (await client.get("/readyz")).status_code == 200
                patched = await client.patch(f"/v1/campaigns/{CAMPAIGN}",
                                             json={"max_concurrent": 2})
                assert patched.json()["limits_applied_live"] is True  # the row drives it

                reload = await client.post("/v1/reload")
                assert reload.status_code == 202 and daemon.reloads == 1

                healthy = (await client.get("/healthz")).json()
                assert healthy["loop_tick_age_s"] < 30
                daemon.last_tick_at = anyio.current_time() - 120.0  # wedged loops
                stale = await client.get("/healthz")
                assert stale.status_code == 503 and "not turned" in stale.json()["detail"]
            server.stop()
