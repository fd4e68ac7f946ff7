"""``python -m dispatch sandbox`` starts, answers a handshake, logs dials, stops on SIGINT."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio
import pytest
from websockets.asyncio.client import connect

from .helpers import RawClient

pytestmark = pytest.mark.anyio


async def test_cli_serves_and_stops(tmp_path: Path) -> None:
    dial_log = tmp_path / "dials.jsonl"
    scenario = Path(__file__).with_name("reminder.toml")
    cmd = [
        sys.executable,
        "-m",
        "dispatch",
        "sandbox",
        "--port",
        "0",
        "--speed",
        "500",
        "--seed",
        "4",
        "--scenario",
        str(scenario),
        "--dial-log",
        str(dial_log),
    ]
    async with await anyio.open_process(cmd) as proc:
        assert proc.stdout is not None
        line = b""
        with anyio.fail_after(30):
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive(1)
        text = line.decode().strip()
        assert text.startswith("sandbox listening on ws://127.0.0.1:")
        url = text.rsplit(" ", 1)[-1]
        async with connect(url + "/client", compression=None) as ws:
            c = RawClient(ws)
            await c.handshake()
            await c.register()
            await c.dial("+15550400001", metadata={"n": 1})
            end = (await c.until(lambda f: f["event"] == "call.ended"))[-1]
            assert end["reason"] == "busy"
        proc.send_signal(signal.SIGINT)
        with anyio.fail_after(30):
            assert await proc.wait() == 0
    lines = [json.loads(x) for x in dial_log.read_text().splitlines()]
    assert [x["event"] for x in lines] == ["dial", "end"]
    assert lines[0]["metadata"] == {"n": 1}


async def test_cli_rejects_bad_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rules]]\nmatch = "+1*"\noutcome = "maybe"\n')
    result = await anyio.run_process(
        [sys.executable, "-m", "dispatch", "sandbox", "--scenario", str(bad)], check=False
    )
    assert result.returncode == 2
    assert b"rules[0].outcome" in result.stderr
