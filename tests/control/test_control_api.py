"""The control plane over real loopback HTTP, steering a real hub on the embedded sandbox."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from dispatch.control import BindRefused, check_bind
from dispatch.store import RunLock, campaigns
from tests.control.conftest import CAMPAIGN, Stack, answered, control_stack, unanswered

pytestmark = pytest.mark.anyio

#: real seconds the hub needs to settle claims it made before it saw a pause
SETTLE_S = 0.5
#: how long "no new dial" is watched; before the pause the same span held several dials
QUIET_S = 2.5


async def pause_and_settle(stack: Stack) -> int:
    """Pause over HTTP, wait for the hub's acknowledgement and for claims made before
    it to leave; return the sandbox's dial count then."""
    response = await stack.client.post(f"/v1/campaigns/{CAMPAIGN}/pause")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "paused"
    await stack.wait_acked("paused")
    await stack.wait_for(lambda: stack.hub.statistics().dialing == 0, what="claims leave")
    await anyio.sleep(SETTLE_S)
    return stack.dials()


async def test_pause_stops_new_dials_live_calls_continue_resume_dials_again(
        tmp_path: Path) -> None:
    async with control_stack(tmp_path, answered(60)) as stack:
        await stack.wait_for(lambda: stack.dials() >= 4, what="first dials")
        before = stack.dials()
        await anyio.sleep(QUIET_S)
        assert stack.dials() > before  # positive control: the campaign dials in this span
        paused_at = await pause_and_settle(stack)
        live_at_pause = [d.call_id for d in stack.sandbox.dials if d.outcome is None]
        await anyio.sleep(QUIET_S)
        assert stack.dials() == paused_at  # no new dial while paused
        ended = {d.call_id: d.outcome for d in stack.sandbox.dials}
        assert all(ended[c] == "hangup" for c in live_at_pause)  # live calls ran to their end
        view = await stack.campaign()
        assert view["state"] == "paused" and view["waiting_on"] == "paused"
        row = await campaigns.get(stack.store.engine, CAMPAIGN)
        assert row is not None and row.state == "paused"  # persisted in the campaign row

        response = await stack.client.post(f"/v1/campaigns/{CAMPAIGN}/resume")
        assert response.status_code == 200 and response.json()["state"] == "running"
        await stack.wait_for(lambda: stack.dials() > paused_at, timeout_s=10, what="dials again")

        again = await stack.client.post(f"/v1/campaigns/{CAMPAIGN}/resume")
        assert again.status_code == 409  # resume needs paused
        assert again.headers["content-type"].startswith("application/problem+json")
        assert "cannot resume" in again.json()["detail"]


async def test_cancel_closes_the_rest_cancelled_and_lets_live_calls_finish(
        tmp_path: Path) -> None:
    n = 40
    async with control_stack(tmp_path, answered(n)) as stack:
        await stack.wait_for(lambda: stack.dials() >= 4, what="first dials")
        response = await stack.client.post(f"/v1/campaigns/{CAMPAIGN}/cancel")
        assert response.status_code == 200 and response.json()["state"] == "cancelled"
        await stack.wait_hub_done()
        dialled = stack.dials()
        assert 4 <= dialled < n
        assert all(d.outcome == "hangup" for d in stack.sandbox.dials)  # none cut short
        view = await stack.campaign()
        assert view["records"] == {"completed": dialled, "skipped": n - dialled}
        reasons = await stack.store.reason_counts()
        assert reasons.get("campaign_cancelled") == n - dialled
        await anyio.sleep(1.0)
        assert stack.dials() == dialled


async def test_bearer_token_required_and_never_echoed(tmp_path: Path) -> None:
    token = "s3cret-Token-value"
    async with control_stack(tmp_path, answered(3), token=token) as stack:
        await stack.wait_row()
        client = stack.client
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                        {"Authorization": f"Basic {token}"}, {"Authorization": f"Bearer {token}x"}):
            for method, path in (("GET", "/v1/campaigns"), ("GET", "/metrics"),
                                 ("POST", f"/v1/campaigns/{CAMPAIGN}/pause"),
                                 ("GET", "/openapi.json")):
                response = await client.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json()["status"] == 401
                assert token not in response.text
        row = await campaigns.get(stack.store.engine, CAMPAIGN)
        assert row is not None and row.state == "running"  # the refused pause changed nothing
        assert (await client.get("/v1/campaigns")).status_code == 200  # the right token
        assert (await client.get("/healthz", headers={"Authorization": ""})).status_code == 200
        page = await client.get("/", headers={"Authorization": ""})
        assert page.status_code == 200 and token not in page.text


def test_check_bind_refuses_non_loopback_without_token() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        check_bind(host, None)
    for host in ("0.0.0.0", "10.0.0.5", "::", "example.org"):
        with pytest.raises(BindRefused, match="without a token"):
            check_bind(host, None)
        check_bind(host, "t0ken")
    with pytest.raises(BindRefused, match="empty"):
        check_bind("0.0.0.0", "  ")


async def test_patch_limits_persisted_and_validated(tmp_path: Path) -> None:
    async with control_stack(tmp_path, answered(3)) as stack:
        await stack.wait_row()
        with anyio.fail_after(20):  # the dispatch loop is turning (the hub is fully up)
            while stack.hub.heartbeat[0] == 0:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        path = f"/v1/campaigns/{CAMPAIGN}"
        response = await stack.client.patch(path, json={"max_per_minute": 30,
                                                        "max_concurrent": 2})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["limits"] == {"max_per_minute": 30, "max_per_second": None,
                                  "max_concurrent": 2}
        assert body["limits_applied_live"] is True
        core = stack.hub._core  # the running hub's own limits changed at once
        assert core is not None
        assert (core.options.max_calls_per_minute, core.options.max_concurrent) == (30, 2)
        row = await campaigns.get(stack.store.engine, CAMPAIGN)
        assert row is not None and (row.max_per_minute, row.max_concurrent) == (30, 2)
        alias = await stack.client.patch(path, json={"max_calls_per_second": 5})
        assert alias.status_code == 200 and alias.json()["limits"]["max_per_second"] == 5

        bad = await stack.client.patch(path, json={"max_concurrent": 0})
        assert bad.status_code == 422 and bad.json()["field"] == "max_concurrent"
        assert "max_concurrent" in bad.json()["detail"]
        unknown = await stack.client.patch(path, json={"max_calls": 3})
        assert unknown.status_code == 422 and unknown.json()["field"] == "max_calls"
        not_json = await stack.client.patch(path, content=b"{nope")
        assert not_json.status_code == 400
        missing = await stack.client.patch("/v1/campaigns/nope", json={"max_concurrent": 2})
        assert missing.status_code == 404 and "'nope'" in missing.json()["detail"]
        row = await campaigns.get(stack.store.engine, CAMPAIGN)
        assert row is not None and (row.max_concurrent, row.max_per_second) == (2, 5)


async def test_requeue_uses_the_cli_filters_and_needs_the_hub_stopped(tmp_path: Path) -> None:
    records = answered(4) + unanswered(3)
    async with control_stack(tmp_path, records, retry_attempts=0) as stack:
        await stack.wait_row()
        path = f"/v1/campaigns/{CAMPAIGN}/requeue"
        busy = await stack.client.post(path, json={"reason": ["no_answer"]})
        assert busy.status_code == 409 and "is running" in busy.json()["detail"]
        await stack.wait_for(lambda: stack.hub.statistics().failed == 3, what="no answers")
        await stack.hub.stop()
        await stack.wait_hub_done()
        other = RunLock(stack.store.url)  # as another process running on the database
        other.acquire()
        try:
            held = await stack.client.post(path, json={"reason": ["no_answer"]})
            assert held.status_code == 409 and "in use" in held.json()["detail"]
        finally:
            other.release()
        dry = await stack.client.post(path, json={"reason": "no_answer", "dry_run": True})
        assert dry.status_code == 200, dry.text
        assert dry.json()["count"] == 3 and dry.json()["dry_run"] is True
        assert (await stack.campaign())["records"].get("pending", 0) == 0
        done = await stack.client.post(path, json={"reason": ["no_answer"]})
        assert done.status_code == 200 and done.json()["count"] == 3
        assert sorted(done.json()["first_ids"]) == ["na0", "na1", "na2"]
        assert (await stack.campaign())["records"] == {"completed": 4, "pending": 3}
        bad = await stack.client.post(path, json={"status": ["pending"]})
        assert bad.status_code == 422 and "pending" in bad.json()["detail"]
        none = await stack.client.post(path, json={})
        assert none.status_code == 422 and "filter" in none.json()["detail"]
        wrong = await stack.client.post(path, json={"reason": ["nope"]})
        assert wrong.status_code == 422 and wrong.json()["field"] == "reason"


async def test_probes_list_and_openapi(tmp_path: Path) -> None:
    async with control_stack(tmp_path, answered(2)) as stack:
        await stack.wait_row()
        assert (await stack.client.get("/healthz")).json()["status"] == "ok"
        ready = await stack.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        listing = (await stack.client.get("/v1/campaigns")).json()["campaigns"]
        assert [c["id"] for c in listing] == [CAMPAIGN]
        assert listing[0]["live"]["applied_limits"]["max_concurrent"] == 3
        doc = (await stack.client.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.")
        assert {"/v1/campaigns", "/v1/campaigns/{id}", "/v1/campaigns/{id}/pause",
                "/v1/campaigns/{id}/requeue", "/metrics", "/readyz"} <= set(doc["paths"])
        stack.target.begin_drain()
        draining = await stack.client.get("/readyz")
        assert draining.status_code == 503 and "draining" in draining.json()["detail"]
        missing = await stack.client.get("/v1/campaigns/nope")
        assert missing.status_code == 404 and missing.json()["title"] == "Not Found"
        bad_action = await stack.client.post(f"/v1/campaigns/{CAMPAIGN}/explode")
        assert bad_action.status_code == 404
        reload = await stack.client.post("/v1/reload")  # HubsTarget has no config to reload
        assert reload.status_code == 501 and "reload" in reload.json()["detail"]
        wrong_method = await stack.client.delete(f"/v1/campaigns/{CAMPAIGN}")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["content-type"].startswith("application/problem+json")
