"""The daemon hosts the control plane's Starlette app with uvicorn, in its own task
tree and without taking over its signals (the real app comes from ``dispatch.control``;
a stand-in module with the same two functions is used here)."""

from __future__ import annotations

import importlib
import signal
import socket
import sys
import types
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def control_host(monkeypatch: pytest.MonkeyPatch) -> Any:
    seen: dict[str, Any] = {}

    def check_bind(host: str, token: str | None) -> None:
        if host not in ("127.0.0.1", "::1") and not token:
            raise ValueError(f"refusing to bind {host} without a token")

    def create_app(target: Any, *, token: str | None) -> Starlette:
        seen.update(target=target, token=token)

        async def campaigns(request: Any) -> PlainTextResponse:
            return PlainTextResponse(",".join(target.names))

        return Starlette(routes=[Route("/v1/campaigns", campaigns)])

    fake = types.ModuleType("dispatch.control")
    fake.check_bind = check_bind  # type: ignore[attr-defined]
    fake.create_app = create_app  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dispatch.control", fake)
    monkeypatch.delitem(sys.modules, "dispatch.daemon.control_host", raising=False)
    module = importlib.import_module("dispatch.daemon.control_host")
    module.seen = seen
    return module


async def test_the_app_is_served_and_the_signals_stay_the_daemons(control_host: Any) -> None:
    target = types.SimpleNamespace(names=["alpha", "beta"])
    port = _free_port()
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    async with anyio.create_task_group() as tg:
        await tg.start(control_host.serve_control, target, "127.0.0.1", port, "tok")
        async with httpx.AsyncClient() as client:
            with anyio.fail_after(20):
                while True:
                    try:
                        response = await client.get(f"http://127.0.0.1:{port}/v1/campaigns")
                        break
                    except httpx.ConnectError:
                        await anyio.sleep(0.05)
        assert (response.status_code, response.text) == (200, "alpha,beta")
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
        tg.cancel_scope.cancel()
    assert control_host.seen == {"target": target, "token": "tok"}


async def test_a_bind_off_loopback_without_a_token_is_refused(control_host: Any) -> None:
    with pytest.raises(ValueError, match="without a token"):
        await control_host.serve_control(object(), "0.0.0.0", _free_port(), None)


async def test_a_port_in_use_is_a_fatal_configuration_error(control_host: Any) -> None:
    from dispatch.daemon.voice import FatalError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BaseExceptionGroup) as info:
            async with anyio.create_task_group() as tg:
                await tg.start(control_host.serve_control, object(), "127.0.0.1", port, None)
                await anyio.sleep(30)
    fatal = info.value.exceptions[0]
    while isinstance(fatal, BaseExceptionGroup):
        fatal = fatal.exceptions[0]
    assert isinstance(fatal, FatalError) and fatal.exit_code == 2
    assert f"control.bind 127.0.0.1:{port}: cannot listen" in str(fatal)
