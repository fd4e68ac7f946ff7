"""A callee who opts out during a call is suppressed at once: the number reaches the
internal list before the call's outcome is settled, and the next record for it is
never dialled (asserted from the sandbox's dial log).

The internal list here is a real SQLite table the test creates; the hub reaches it
through its seam, ``DispatchHub.opt_out_sink`` (the lead wires it to the store's
``add_opt_out``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from dispatch.hub import DispatchHub
from dispatch.records import Record
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox, Scenario
from dispatch.sdk import Pinecall, tool
from dispatch.testing import MemoryStrategy

from .helpers import read_db

pytestmark = pytest.mark.anyio

OPTS_OUT = "+15550000011"
OTHER = "+15550000012"
SCENARIO = f"""
[[rules]]
match = "{OPTS_OUT}"
outcome = "hangup"

[[rules.turns]]
say = "Please stop calling me."
tool = "opt_out"
arguments = {{ reason = "asked not to be called" }}
reply = "Understood, we will not call you again. Goodbye."
"""


class SqliteDnc:
    """The internal list: one table in a real SQLite file; each add also notes what the
    hub's own database said about the record at that instant."""

    def __init__(self, path: Path, hub_db: Path) -> None:
        self.path, self.hub_db = path, hub_db
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE dnc (phone TEXT PRIMARY KEY, campaign TEXT, "
                         "record_id TEXT, source TEXT, record_status TEXT)")

    def _add(self, phone: str, campaign: str, record_id: str, source: str) -> None:
        with sqlite3.connect(self.hub_db) as hub:
            (status,) = hub.execute("SELECT status FROM records WHERE id = ?",
                                    (record_id,)).fetchone()
        with sqlite3.connect(self.path) as conn:
            conn.execute("INSERT OR IGNORE INTO dnc VALUES (?, ?, ?, ?, ?)",
                         (phone, campaign, record_id, source, status))

    async def __call__(self, phone: str, campaign: str, record_id: str, source: str) -> None:
        await anyio.to_thread.run_sync(self._add, phone, campaign, record_id, source)

    def rows(self) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute("SELECT * FROM dnc").fetchall()


def _opt_out(args: dict[str, Any], call: object) -> dict[str, str]:
    return {"disposition": "do_not_call", "note": str(args.get("reason", ""))}


async def test_an_opt_out_during_a_call_suppresses_the_next_record_for_that_number(
        tmp_path: Path) -> None:
    hub_db = tmp_path / "hub.db"
    dnc = SqliteDnc(tmp_path / "dnc.db", hub_db)
    recs = [Record(id="first", phone=OPTS_OUT), Record(id="other", phone=OTHER),
            Record(id="second", phone=OPTS_OUT)]
    async with Sandbox(scenario=Scenario.from_toml(SCENARIO), speed=100) as sandbox, \
            Pinecall("pk_sandbox", sandbox.url, reconnect_base_s=0.05) as pc:
        agent = pc.agent("reminder", phone_number=SANDBOX_NUMBER, tools=[
            tool(name="opt_out", description="The callee asks not to be called again.",
                 execute=_opt_out)])
        hub = DispatchHub(agent, [MemoryStrategy(recs)], db=hub_db, max_concurrent=2,
                          poll_interval_s=0.2, campaign="reminders")
        hub.opt_out_sink = dnc
        with anyio.fail_after(60):
            await hub.run(until_idle=True)
        dialled = [d.to for d in sandbox.dials]
        first_call = next(d for d in sandbox.dials if d.to == OPTS_OUT)

    assert first_call.tool_results[0]["name"] == "opt_out"  # the callee really opted out
    assert dialled.count(OPTS_OUT) == 1 and dialled.count(OTHER) == 1
    # on the list before the outcome was settled (the record was still in its call)
    assert dnc.rows() == [(OPTS_OUT, "reminders", "first", "opt_out", "in_call")]
    rows, _ = await read_db(hub_db)
    assert (rows["first"]["status"], rows["first"]["disposition"]) == ("completed",
                                                                       "do_not_call")
    assert (rows["second"]["status"], rows["second"]["last_reason"]) == ("skipped", "dnc")
    assert rows["second"]["attempts"] == 0
    assert rows["other"]["status"] == "completed"


async def test_a_call_without_an_opt_out_adds_nothing(tmp_path: Path) -> None:
    hub_db = tmp_path / "hub.db"
    dnc = SqliteDnc(tmp_path / "dnc.db", hub_db)
    recs = [Record(id="a", phone=OTHER), Record(id="b", phone=OTHER)]
    async with Sandbox(speed=100) as sandbox, \
            Pinecall("pk_sandbox", sandbox.url, reconnect_base_s=0.05) as pc:
        agent = pc.agent("reminder", phone_number=SANDBOX_NUMBER)
        hub = DispatchHub(agent, [MemoryStrategy(recs)], db=hub_db, poll_interval_s=0.2)
        hub.opt_out_sink = dnc
        with anyio.fail_after(60):
            await hub.run(until_idle=True)
        dialled = [d.to for d in sandbox.dials]
    assert dnc.rows() == [] and dialled == [OTHER, OTHER]  # both dialled: the control
