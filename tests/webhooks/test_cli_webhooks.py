"""``dispatch run --webhook-intake ... --result-webhook ...`` as a real process: a pushed
record is dialled on the embedded sandbox, every outcome reaches the receiver signed,
``dispatch status`` shows the deliveries; secrets never show in any output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from .helpers import OTHER, SECRET, body_of, eventually, rec, signed_headers
from .receiver import Receiver

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CSV = "name,phone\nMaria,+14155550101\nCarlos,+14155550102\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _drain(stream: anyio.abc.ByteReceiveStream | None) -> str:
    data = b""
    if stream is not None:
        async for chunk in stream:
            data += chunk
    return data.decode()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PINECALL_API_KEY"}
    return {**env, "PYTHONUNBUFFERED": "1", "DISPATCH_WEBHOOK_SECRET": SECRET}


async def test_run_with_intake_and_result_webhooks(tmp_path: Path):
    leads, db = tmp_path / "leads.csv", tmp_path / "run.db"
    leads.write_text(CSV)
    result_secret = tmp_path / "result.secret"
    result_secret.write_text(OTHER + "\n")
    port = _free_port()
    receiver = Receiver(OTHER, fail_first=1)
    async with receiver.serving():
        argv = [sys.executable, "-m", "dispatch", "run", str(leads), "--db", str(db),
                "--sandbox-speed", "inf", "--poll", "30",
                "--webhook-intake", f"127.0.0.1:{port}",
                "--result-webhook", receiver.url,
                "--result-webhook-secret-file", str(result_secret)]
        child = await anyio.open_process(argv, env=_env(), stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
        body = body_of(rec(9, metadata={"name": "Pushed"}))
        with anyio.fail_after(60):
            while True:
                try:
                    async with httpx.AsyncClient() as client:
                        response = await client.post(
                            f"http://127.0.0.1:{port}/v1/campaigns/leads/records",
                            content=body, headers=signed_headers(body))
                    break
                except httpx.ConnectError:
                    await anyio.sleep(0.1)
        assert response.status_code == 202, response.text
        await eventually(lambda: len(receiver.successes) == 3, timeout_s=60)
        child.send_signal(signal.SIGTERM)
        with anyio.fail_after(60):
            await child.wait()
        out, err = await _drain(child.stdout), await _drain(child.stderr)
    ids = {b["data"]["record_id"] for b in receiver.bodies.values()}
    assert "w9" in ids and len(ids) == 3
    assert receiver.bad_signatures == 0
    for text in (out, err):
        assert SECRET not in text and OTHER not in text and "s3cret-in-query" not in text
    status = await anyio.run_process([sys.executable, "-m", "dispatch", "status", "--db",
                                      str(db)], env=_env())
    assert status.returncode == 0
    assert "result webhooks: 0 pending, 3 delivered, 0 failed, 0 disabled" in (
        status.stdout.decode())


def test_intake_without_a_secret_is_refused_naming_the_option(tmp_path: Path):
    leads = tmp_path / "leads.csv"
    leads.write_text(CSV)
    env = {k: v for k, v in _env().items() if k != "DISPATCH_WEBHOOK_SECRET"}
    bad = tmp_path / "bad.secret"
    bad.write_text("whsec_!!not-base64 " + SECRET[6:20] + "\n")
    for extra in ([], ["--webhook-secret-file", str(bad)]):
        done = subprocess.run(
            [sys.executable, "-m", "dispatch", "run", str(leads), "--db",
             str(tmp_path / "x.db"), "--webhook-intake", "127.0.0.1:0", *extra],
            capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 2
        assert "--webhook" in done.stderr
        assert SECRET[6:20] not in done.stderr + done.stdout
