"""dispatch as a library inside a scheduler (APScheduler) with a custom strategy.

Every morning at 09:00 a job calls the patients whose appointment is tomorrow.
The records come from the application's own database through a small custom
:class:`~dispatch.Strategy`; the hub's SQLite state makes the job idempotent: if
it runs twice (a restart, a manual run), nobody is called twice, because record
ids ("appt-<id>") are never dispatched again.

    python examples/scheduled_reminders.py --once   # run the job now and exit (sandbox)
    python examples/scheduled_reminders.py          # run daily at 09:00 until Ctrl-C
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from dispatch import DispatchHub, Pinecall, Reason, Record, RetryPolicy, Strategy
from dispatch.sandbox import SANDBOX_NUMBER, Sandbox

APP_DB = Path("clinic.db")  # the application's own data, not dispatch's


class DueAppointments(Strategy):
    """Appointments of tomorrow that have not been reminded yet."""

    name = "due-appointments"

    def __init__(self, path: Path) -> None:
        self.path = path

    async def poll(self) -> Sequence[Record]:
        rows = await asyncio.to_thread(self._query)  # sqlite3 blocks: keep it off the loop
        return [
            Record(
                id=f"appt-{appt_id}",
                phone=phone,
                greeting=f"Hi {name}, this is Acme Clinic reminding you of your appointment "
                f"tomorrow at {time}.",
                metadata={"appointment_id": appt_id},
                prompt_vars={"patient": name, "time": time},
            )
            for appt_id, name, phone, time in rows
        ]

    def _query(self) -> list[tuple[int, str, str, str]]:
        tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
        with contextlib.closing(sqlite3.connect(self.path)) as conn:
            return conn.execute(
                "SELECT id, name, phone, time FROM appointments WHERE day = ? AND reminded = 0",
                (tomorrow,),
            ).fetchall()

    async def record_outcome(self, outcome: object) -> None:
        # A real application would mark the appointment reminded here
        # (outcome.record.metadata["appointment_id"], outcome.status, outcome.reason).
        return None


@contextlib.asynccontextmanager
async def voice_server() -> AsyncIterator[tuple[str, str | None, str]]:
    """(url, api key, caller id): real with PINECALL_API_KEY, else the sandbox."""
    key = os.environ.get("PINECALL_API_KEY")
    if key:
        yield "wss://voice.pinecall.io", key, os.environ["DISPATCH_FROM"]
        return
    async with Sandbox(speed=20) as sandbox:
        yield sandbox.url, None, SANDBOX_NUMBER


async def reminder_job() -> None:
    async with voice_server() as (url, key, from_), Pinecall(api_key=key, url=url) as pc:
        agent = pc.agent("reminders", phone_number=from_,
                         prompt="Remind {{patient}} of the appointment at {{time}}.")
        # per-outcome retries: a busy line is tried again after 20 s, an unanswered call
        # after a minute; anything else (failed, answered) is final
        policy = RetryPolicy(delays_s={Reason.BUSY: 20.0, Reason.NO_ANSWER: 60.0})
        hub = DispatchHub(agent, [DueAppointments(APP_DB)], from_=from_,
                          max_calls_per_minute=20, max_concurrent=3, retry_attempts=1,
                          retry_policy=policy, db="reminders-dispatch.db")
        await hub.run(until_idle=True)
        stats = hub.statistics()
        print(f"reminders: {stats.completed} completed, {stats.failed} failed, "
              f"{stats.skipped} skipped")


def seed_demo_data() -> None:
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    with contextlib.closing(sqlite3.connect(APP_DB)) as conn, conn:
        conn.execute("CREATE TABLE IF NOT EXISTS appointments (id INTEGER PRIMARY KEY, "
                     "name TEXT, phone TEXT, day TEXT, time TEXT, reminded INTEGER DEFAULT 0)")
        conn.executemany(
            "INSERT OR IGNORE INTO appointments (id, name, phone, day, time) VALUES (?,?,?,?,?)",
            [(1, "Maria", "+14155550101", tomorrow, "10:00"),
             (2, "Carlos", "+14155550175", tomorrow, "11:30"),
             (3, "Aisha", "+14155550104", tomorrow, "15:00")],
        )


async def main(once: bool) -> None:
    seed_demo_data()
    if once:
        await reminder_job()
        return
    scheduler = AsyncIOScheduler()
    # one run at a time; a missed 09:00 (machine off) runs once when it is back
    scheduler.add_job(reminder_job, "cron", hour=9, minute=0, max_instances=1, coalesce=True,
                      misfire_grace_time=3600)
    scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown(wait=False)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Daily appointment reminders.")
    parser.add_argument("--once", action="store_true", help="run the job now and exit")
    asyncio.run(main(parser.parse_args().once))
