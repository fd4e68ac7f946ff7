"""The call-log REST client: against the sandbox over loopback, and its error edges."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from dispatch.reasons import Reason
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox
from dispatch.sdk import (
    AuthenticationError,
    CallLogUnavailable,
    CallsApi,
    DialFailed,
    Pinecall,
)
from dispatch.sdk.calls_api import call_state_from_wire, rest_base

pytestmark = pytest.mark.anyio
KEY = "pk_calls_api_secret"


async def test_lookup_and_find_a_dialled_call_through_the_agent() -> None:
    async with Sandbox(speed=500, seed=1, api_key=KEY) as sb, Pinecall(KEY, sb.url) as pc:
        agent = await pc.agent("Lookup Bot", phone_number=SANDBOX_NUMBER).ready()
        call = await agent.dial("+15550000012", metadata={"dispatch_record_id": "r7"})
        await call.wait_ended()
        state = await agent.lookup_call(call.id)
        assert state is not None and state.call_id == call.id
        assert (state.live, state.answered, state.end_reason) == (False, True, Reason.HANGUP)
        assert state.end_reason_raw == "hangup" and state.duration_s == call.duration_s
        assert state.attempt_id is not None and state.attempt_id.startswith("da_")
        assert state.answered_at is not None and state.ended_at is not None

        by_attempt = await agent.find_call(state.attempt_id)
        by_meta = await agent.find_call(metadata={"dispatch_record_id": "r7"})
        assert by_attempt == by_meta == state
        assert await agent.find_call(metadata={"dispatch_record_id": "r8"}) is None
        assert await agent.lookup_call("CAunknown") is None

        with pytest.raises(DialFailed) as info:
            await agent.dial("+15550000077")  # busy
        assert info.value.call_id is not None
        busy = await agent.lookup_call(info.value.call_id)
        assert busy is not None and not busy.answered and busy.end_reason is Reason.BUSY


async def test_refused_key_is_authentication_error_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Sandbox(api_key="the-right-key") as sb:
        api = CallsApi(sb.url + "/client", KEY)
        try:
            with pytest.raises(AuthenticationError) as info:
                await api.state("CA1")
        finally:
            await api.aclose()
    assert info.value.code == "INVALID_KEY"
    assert KEY not in str(info.value) and KEY not in repr(api)
    assert KEY not in caplog.text


def _api(handler: object) -> CallsApi:
    return CallsApi("wss://voice.example", KEY, timeout_s=0.5,
                    transport=httpx.MockTransport(handler))  # type: ignore[arg-type]


async def test_timeouts_server_errors_and_bad_bodies_are_call_log_unavailable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    cases = [timeout, refused, lambda r: httpx.Response(503, text="down"),
             lambda r: httpx.Response(200, text="not json"),
             lambda r: httpx.Response(200, json=[1]),
             lambda r: httpx.Response(200, json={"state": "ended"})]
    for handler in cases:
        api = _api(handler)
        with pytest.raises(CallLogUnavailable) as info:
            await api.state("CA1")
        assert KEY not in str(info.value)
        await api.aclose()


async def test_request_shape_key_header_and_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"agent": "a", "calls": []})

    api = _api(handler)
    assert await api.find("Lead Bot", attempt_id="da_1", metadata={"n": 2}) == []
    await api.aclose()
    request = seen[0]
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.url.scheme == "https" and request.url.path == "/v1/agents/lead-bot/calls"
    assert request.url.params["attempt"] == "da_1" and request.url.params["meta.n"] == "2"


@pytest.mark.parametrize(
    ("socket_url", "base"),
    [("ws://127.0.0.1:9/client", "http://127.0.0.1:9"), ("wss://voice.pinecall.io", "https://voice.pinecall.io"),
     ("wss://h/client/", "https://h")],
)
def test_rest_base_follows_the_socket_url(socket_url: str, base: str) -> None:
    assert rest_base(socket_url) == base


@pytest.mark.parametrize(
    ("body", "live", "answered", "reason"),
    [
        ({"call_id": "c", "state": "ended", "live": False, "end_reason": "no-answer"},
         False, False, Reason.NO_ANSWER),
        ({"call_id": "c", "state": "ended", "end_reason": "caller_hangup",
          "answered_at": 1.0}, False, True, Reason.HANGUP),
        ({"call_id": "c", "state": "ended", "live": False, "answered": True,
          "end_reason": "app_detached"}, False, True, Reason.DISCONNECTED),
        ({"call_id": "c", "state": "ended", "live": False}, False, False, Reason.UNKNOWN),
        ({"call_id": "c", "state": "ringing", "live": True}, True, False, None),
    ],
)
def test_wire_to_domain_mapping(body: dict[str, object], live: bool, answered: bool,
                                reason: Reason | None) -> None:
    state = call_state_from_wire(body)
    assert (state.live, state.answered, state.end_reason) == (live, answered, reason)
    assert json.dumps(body)  # bodies are plain JSON
