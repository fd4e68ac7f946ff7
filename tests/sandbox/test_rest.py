"""The call-log REST endpoint, over real HTTP on the WebSocket's own port."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dispatch.sandbox import Sandbox

from .helpers import RawClient, ended, open_client

pytestmark = pytest.mark.anyio

HANGS_UP = "+15550000012"  # answers, one line, hangs up
NO_HANGUP = "+15550000097"
RINGS_OUT = "+15550000061"
AUTH = {"Authorization": "Bearer k"}


def _http(sandbox: Sandbox, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    base = sandbox.url.replace("ws://", "http://")
    return httpx.AsyncClient(base_url=base, headers=AUTH if headers is None else headers)


async def _state(sandbox: Sandbox, call_id: str) -> dict[str, Any]:
    async with _http(sandbox) as http:
        response = await http.get(f"/v1/calls/{call_id}/state")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _state_when_idle(sandbox: Sandbox, call_id: str) -> dict[str, Any]:
    """The call's REST state once the sandbox has no live call left."""
    await sandbox.wait_until(lambda s: s.live_calls == 0, timeout_s=20)
    return await _state(sandbox, call_id)


async def test_state_events_and_agent_calls_of_an_ended_call(
    sandbox: Sandbox, client: RawClient
) -> None:
    meta = {"dispatch_attempt": "da_test_1", "dispatch_record_id": "r1", "dispatch_attempt_no": 2}
    await client.dial(HANGS_UP, metadata=meta)
    call_id = (await client.expect("call.dialing"))["call_id"]
    end = (await client.until(ended(call_id)))[-1]

    state = await _state(sandbox, call_id)
    assert state["live"] is False and state["state"] == "ended"
    assert state["answered"] is True and state["end_reason"] == "hangup"
    assert state["duration_seconds"] == end["duration_seconds"] > 0
    assert state["attempt_id"] == "da_test_1" and state["metadata"] == meta
    assert state["to"] == HANGS_UP and state["agent"] == "reminder"

    async with _http(sandbox) as http:
        log = (await http.get(f"/v1/calls/{call_id}/events", params={"after": 0})).json()
        types = [e["type"] for e in log["events"]]
        assert types[:2] == ["call.dialing", "call.started"]
        assert types[-2:] == ["call.ended", "call.summary"] and log["sealed"] is True
        assert [e["seq"] for e in log["events"]] == list(range(1, log["last_seq"] + 1))
        first = log["events"][0]
        assert set(first) == {"seq", "ts", "call", "agent", "type", "ephemeral", "data"}
        page = (await http.get(f"/v1/calls/{call_id}/events?after=2&limit=1")).json()
        assert [e["seq"] for e in page["events"]] == [3] and page["next_after"] == 3
        bad = await http.get(f"/v1/calls/{call_id}/events?after=x")
        assert bad.status_code == 400 and "after" in bad.json()["error"]

        async def found(**params: Any) -> list[str]:
            body = (await http.get("/v1/agents/Reminder/calls", params=params)).json()
            return [c["call_id"] for c in body["calls"]]

        assert await found(attempt="da_test_1") == [call_id]
        assert await found(**{"meta.dispatch_record_id": "r1", "meta.dispatch_attempt_no": 2}) \
            == [call_id]
        assert await found(attempt="da_other") == []
        assert await found(**{"meta.dispatch_attempt_no": 3}) == []


async def test_bad_key_is_401_unknown_id_is_404() -> None:
    async with Sandbox(api_key="secret-key") as sb:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "secret-key"}):
            async with _http(sb, headers) as http:
                response = await http.get("/v1/calls/CAnope/state")
            assert response.status_code == 401, headers
            assert "secret-key" not in response.text
        async with _http(sb, {"Authorization": "Bearer secret-key"}) as http:
            assert (await http.get("/v1/calls/CAnope/state")).status_code == 404
            assert (await http.get("/v1/calls/CAnope/events")).status_code == 404
            assert (await http.get("/v1/nothing/here")).status_code == 404
            calls = await http.get("/v1/agents/nobody/calls")
            assert calls.status_code == 200 and calls.json()["calls"] == []


async def test_a_keyless_sandbox_accepts_any_key_like_its_socket(sandbox: Sandbox) -> None:
    for headers in ({}, {"Authorization": "Bearer anything"}):
        async with _http(sandbox, headers) as http:
            assert (await http.get("/v1/calls/CAnope/state")).status_code == 404


async def test_socket_drop_ends_live_calls_as_app_detached(sandbox: Sandbox) -> None:
    c = await open_client(sandbox)
    await c.handshake()
    await c.register()
    await c.dial(NO_HANGUP)
    call_id = (await c.expect("call.dialing"))["call_id"]
    await c.until(lambda f: f["event"] == "call.started")
    live = await _state(sandbox, call_id)
    assert live["live"] is True and live["state"] == "in_progress" and live["answered"]
    await c.ws.close()
    state = await _state_when_idle(sandbox, call_id)
    assert state["end_reason"] == "app_detached" and state["answered"] is True


async def test_calls_can_outlive_their_socket() -> None:
    async with Sandbox(speed=50, seed=7, keep_calls_on_disconnect=True) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register()
        await c.dial(RINGS_OUT)
        call_id = (await c.expect("call.dialing"))["call_id"]
        await c.ws.close()
        await sb.wait_until(lambda s: s.connections == 0)
        detached = await _state(sb, call_id)
        assert detached["live"] is True and detached["app_connected"] is False
        state = await _state_when_idle(sb, call_id)
        assert state["end_reason"] == "no-answer" and state["answered"] is False
        assert sb.dials[-1].outcome == "no-answer"


async def test_the_call_record_is_bounded() -> None:
    async with Sandbox(speed=1000, seed=7, max_calls_kept=2) as sb:
        c = await open_client(sb)
        await c.handshake()
        await c.register()
        ids = []
        for _ in range(4):
            await c.dial(HANGS_UP)
            call_id = (await c.expect("call.dialing"))["call_id"]
            await c.until(ended(call_id))
            ids.append(call_id)
        async with _http(sb) as http:
            codes = [(await http.get(f"/v1/calls/{i}/state")).status_code for i in ids]
        assert codes == [404, 404, 200, 200]
        await c.ws.close()
