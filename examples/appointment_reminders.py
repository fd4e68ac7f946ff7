"""Appointment reminders: the ``@pinecall/dispatch`` outbound example, ported.

Each patient in a CSV gets a reminder call with a personal greeting. The agent's
prompt receives the appointment details as per-call prompt variables, and the
agent calls the ``confirm_appointment`` tool when the patient confirms, cancels
or asks to reschedule. The tool's result becomes the attempt's *disposition*: it
is stored in the database (``dispatch report`` shows it) and written back to the
CSV's ``status`` column. Calls that end without the tool (no answer, busy) get
their reason written back instead.

A patient who asks not to be called again gets the ``opt_out`` tool: its result
(disposition ``do_not_call``) puts the number on the do-not-call list before the
call's outcome is settled, and no later row for that number is dialled (status
``dnc``). Here the list is a plain file next to the CSV (``<name>.dnc.txt``, one
number per line: the format ``dispatch`` reads suppression files in).

Without ``PINECALL_API_KEY`` it runs on the embedded sandbox with
``reminders_scenario.toml``, whose simulated patients confirm, cancel and
reschedule. Write-back edits the CSV in place, so work on a copy::

    cp examples/appointments.csv /tmp/appointments.csv
    python examples/appointment_reminders.py /tmp/appointments.csv
    python -m dispatch report --db /tmp/appointments.db
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel, Field

from dispatch import DispatchHub, Pinecall, Record, tool
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox
from dispatch.strategies import CsvStrategy

HERE = Path(__file__).resolve().parent

PROMPT = """You are Mara, the scheduling assistant of Acme Clinic. You are calling a patient to
remind them of an appointment:

{{appointment_details}}

Ask whether they will attend. When they confirm, cancel, or ask to move the appointment, call
confirm_appointment with the matching status, then thank them and say goodbye. If they ask not
to be called again, call opt_out, apologise, and say goodbye."""


class AppointmentAnswer(BaseModel):
    """Arguments of the confirm_appointment tool, validated before it runs."""

    status: Literal["confirmed", "cancelled", "reschedule"]
    notes: str | None = Field(default=None, description="what the patient asked for, if anything")


def confirm_appointment(args: AppointmentAnswer, call: object) -> dict[str, str]:
    # A real clinic would update its booking system here. The "disposition" key makes
    # the SDK record this result as the call's disposition.
    return {"disposition": args.status, "notes": args.notes or ""}


class OptOut(BaseModel):
    """Arguments of the opt_out tool."""

    reason: str | None = Field(default=None, description="what the patient said, briefly")


def opt_out(args: OptOut, call: object) -> dict[str, str]:
    # disposition do_not_call: the hub adds the number to the do-not-call list before it
    # settles the call, and skips every later record for that number
    return {"disposition": "do_not_call", "notes": args.reason or ""}


def dnc_file_sink(path: Path) -> Callable[[str, str, str, str], Awaitable[None]]:
    """An opt-out sink appending ``phone`` lines to ``path`` (a suppression file)."""

    async def add(phone: str, campaign: str, record_id: str, source: str) -> None:
        async with await anyio.open_file(path, "a", encoding="utf-8") as out:
            await out.write(f"{phone}\n")

    return add


def map_row(row: dict[str, str | None]) -> Record | None:
    """One CSV row -> one record; None skips the row (already handled)."""
    if not row.get("phone") or row.get("status"):
        return None
    name, service = row.get("name") or "there", row.get("service") or "appointment"
    date, time = row.get("date") or "", row.get("time") or ""
    return Record(
        # content-based id: the same appointment listed twice is called once
        id=f"{row['phone']}-{service}-{date}",
        phone=row["phone"] or "",
        greeting=f"Hi {name}, this is Mara from Acme Clinic with a reminder about your "
        f"{service} appointment on {date} at {time}.",
        metadata={"name": name, "service": service, "date": date, "time": time},
        prompt_vars={
            "appointment_details": f"Name: {name}\nService: {service}\nDate: {date}\nTime: {time}"
        },
    )


async def main(csv_path: Path) -> None:
    key = os.environ.get("PINECALL_API_KEY")
    async with contextlib.AsyncExitStack() as stack:
        if key:
            url, from_ = os.environ.get("PINECALL_URL", "wss://voice.pinecall.io"), os.environ[
                "DISPATCH_FROM"
            ]
        else:
            sandbox = Sandbox(scenario=HERE / "reminders_scenario.toml", speed=10)
            await stack.enter_async_context(sandbox)
            url, from_ = sandbox.url, SANDBOX_NUMBER
            print("sandbox mode: no real calls are placed", file=sys.stderr)
        pc = await stack.enter_async_context(Pinecall(api_key=key, url=url))
        agent = pc.agent(
            "reminder-agent",
            voice="elevenlabs/sarah",
            llm="openai/gpt-4.1-mini",
            prompt=PROMPT,
            phone_number=from_,
            tools=[
                tool(
                    name="confirm_appointment",
                    description="Record the patient's answer about the appointment.",
                    schema=AppointmentAnswer,
                    execute=confirm_appointment,
                ),
                tool(
                    name="opt_out",
                    description="The patient asks not to be called again.",
                    schema=OptOut,
                    execute=opt_out,
                ),
            ],
            session_limits={"max_duration_seconds": 180},
        )
        csv = CsvStrategy(csv_path, map_row=map_row, write_back="status")
        stack.push_async_callback(csv.aclose)
        csv.on_completed = lambda record, call_id, reason: print(
            f"  {record.metadata['name']:<16} {record.metadata['service']:<16} call ended: {reason}"
        )
        csv.on_failed = lambda record, error: print(
            f"  {record.metadata['name']:<16} {record.metadata['service']:<16} not reached: "
            f"{error.reason}"
        )
        hub = DispatchHub(
            agent,
            [csv],
            from_=from_,
            max_calls_per_minute=30,
            max_concurrent=3,
            retry_attempts=0,
            poll_interval_s=1.0,
            db=csv_path.with_suffix(".db"),
        )
        hub.opt_out_sink = dnc_file_sink(csv_path.with_suffix(".dnc.txt"))
        await hub.run(until_idle=True)
    print(f"done: see the status column of {csv_path}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/appointment_reminders.py APPOINTMENTS.csv")
    anyio.run(main, Path(sys.argv[1]))
