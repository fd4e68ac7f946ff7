"""ControlServer: uvicorn in the caller's task group, signals left to the host process."""

from __future__ import annotations

import signal
import socket

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from dispatch.control import BindRefused, ControlServer

pytestmark = pytest.mark.anyio


def tiny_app() -> Starlette:
    async def hello(_: object) -> PlainTextResponse:
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)])


async def test_serves_on_loopback_and_leaves_signal_handlers_alone() -> None:
    def mine(signum: int, frame: object) -> None:  # the daemon's own handler
        raise AssertionError("not called here")

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        async with anyio.create_task_group() as tg:
            server = ControlServer(tiny_app(), port=0)
            url = await tg.start(server.run)
            assert url == f"http://127.0.0.1:{server.bound_port()}"
            async with httpx.AsyncClient() as client:
                assert (await client.get(url + "/")).text == "hello"
            assert signal.getsignal(signal.SIGTERM) is mine  # uvicorn.serve alone swaps it
            server.stop()
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_refuses_a_public_bind_without_token_and_reports_a_taken_port() -> None:
    with pytest.raises(BindRefused, match="without a token"):
        ControlServer(tiny_app(), host="0.0.0.0", port=0)
    ControlServer(tiny_app(), host="0.0.0.0", port=0, token_set=True)  # allowed with a token
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ControlServer(tiny_app(), port=port)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"), \
                anyio.fail_after(10):
            await server.run()
