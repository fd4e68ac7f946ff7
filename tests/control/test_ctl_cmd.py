"""``dispatch ctl`` as a subprocess against the control plane of a running hub."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import pytest

from tests.control.conftest import CAMPAIGN, Stack, answered, control_stack

pytestmark = pytest.mark.anyio

TOKEN = "ctl-test-token-1234"


async def ctl(stack: Stack, *args: str, token_file: Path | None = None) -> tuple[int, str, str]:
    extra = ["--token-file", str(token_file)] if token_file is not None else []
    result = await anyio.run_process(
        [sys.executable, "-m", "dispatch", "ctl", *args, "--url", stack.url, *extra],
        check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_ctl_pause_resume_cancel_change_what_the_sandbox_receives(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    async with control_stack(tmp_path, answered(60), token=TOKEN) as stack:
        await stack.wait_for(lambda: stack.dials() >= 3, what="first dials")
        code, out, err = await ctl(stack, "pause", CAMPAIGN, token_file=token_file)
        assert (code, err) == (0, "") and "paused" in out
        await stack.wait_acked("paused")
        await stack.wait_for(lambda: stack.hub.statistics().dialing == 0, what="claims leave")
        await anyio.sleep(0.5)
        paused_at = stack.dials()

        code, out, _ = await ctl(stack, "status", CAMPAIGN, "--json", token_file=token_file)
        assert code == 0
        status = json.loads(out)
        assert status["state"] == "paused" and status["acked_state"] == "paused"
        assert status["records"]["completed"] + status["records"].get("in_call", 0) + \
            status["records"].get("dialing", 0) == paused_at
        code, out, _ = await ctl(stack, "status", CAMPAIGN, token_file=token_file)
        assert code == 0 and "state      paused" in out and "waiting on paused" in out
        assert stack.dials() == paused_at  # the span of two subprocesses: no dial

        code, out, _ = await ctl(stack, "resume", CAMPAIGN, token_file=token_file)
        assert code == 0 and "running" in out
        await stack.wait_for(lambda: stack.dials() > paused_at, timeout_s=10, what="dials again")

        code, out, _ = await ctl(stack, "cancel", CAMPAIGN, token_file=token_file)
        assert code == 0 and "cancelled" in out
        await stack.wait_hub_done()
        view = await stack.campaign()
        assert view["state"] == "cancelled" and "pending" not in view["records"]
        assert view["records"]["skipped"] == 60 - stack.dials()

        code, out, _ = await ctl(stack, "requeue", CAMPAIGN, "--reason", "campaign_cancelled",
                                 "--dry-run", token_file=token_file)
        assert (code, out.strip()) == (0, f"would requeue {60 - stack.dials()} record(s) of "
                                          f"campaign {CAMPAIGN!r}")


async def test_ctl_refuses_bad_token_unknown_campaign_and_no_server(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token")
    right = tmp_path / "right"
    right.write_text(TOKEN)
    async with control_stack(tmp_path, answered(2), token=TOKEN) as stack:
        await stack.wait_row()
        code, out, err = await ctl(stack, "pause", CAMPAIGN, token_file=wrong)
        assert code == 2 and out == "" and err.startswith("dispatch ctl: error: 401")
        assert "not-the-token" not in err
        code, _, err = await ctl(stack, "pause", CAMPAIGN)  # no token at all
        assert code == 2 and "401" in err
        code, _, err = await ctl(stack, "status", "nope", token_file=right)
        assert code == 2 and "unknown campaign 'nope'" in err
        code, _, err = await ctl(stack, "requeue", CAMPAIGN, token_file=right)
        assert code == 2 and "filter" in err
        code, _, err = await ctl(stack, "status", CAMPAIGN, token_file=tmp_path / "absent")
        assert code == 2 and "--token-file" in err
    gone = await anyio.run_process(
        [sys.executable, "-m", "dispatch", "ctl", "status", CAMPAIGN, "--url",
         stack.url], check=False)  # the server has exited
    assert gone.returncode == 3 and b"cannot reach" in gone.stderr
