"""A campaign window every weekday, from APScheduler, with ``dispatch.run_campaign``.

At 09:00 Monday to Friday (in ``--zone``) a job runs the campaign of a config file for
``--hours`` hours: it dials until every record is done or the window ends, then new
dials stop and live calls get the campaign's ``drain_timeout_s``. Records not reached
stay pending for tomorrow's window; nobody is called twice (the SQLite state). This is
the library form of ``dispatch serve``'s schedule windows, for an application that
already runs APScheduler.

    python examples/apscheduler_reminders.py --once        # one window now, then exit
    python examples/apscheduler_reminders.py               # weekdays 09:00, until Ctrl-C

Without ``PINECALL_API_KEY`` the calls go to the embedded sandbox (no real calls).
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

import dispatch

HERE = Path(__file__).parent


def reminder_window(config: Path, campaign: str | None, hours: float) -> None:
    """One window: the scheduler's job (synchronous, on a worker thread)."""
    result = dispatch.run_campaign(config, campaign=campaign, max_duration_s=hours * 3600)
    ended = "window over" if result.stopped_early else "all done"
    print(f"campaign {result.campaign}: {ended} after {result.duration_s:.1f}s; "
          f"{result.counts}; {result.unfinished} left for the next window", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=HERE / "dispatch.toml")
    parser.add_argument("--campaign", help="campaign name (default: the first)")
    parser.add_argument("--cron", default="0 9 * * mon-fri", help="window start (crontab)")
    parser.add_argument("--zone", default="Europe/Madrid", help="time zone of --cron")
    parser.add_argument("--hours", type=float, default=8.0, help="window length")
    parser.add_argument("--once", action="store_true", help="run one window now and exit")
    args = parser.parse_args(argv)

    scheduler = BlockingScheduler(timezone=args.zone)
    job_args = (args.config, args.campaign, args.hours)
    failures: list[str] = []
    if args.once:
        scheduler.add_job(reminder_window, DateTrigger(dt.datetime.now(dt.UTC)), args=job_args,
                          id="window-now", misfire_grace_time=60)

        def stop(event: JobExecutionEvent) -> None:
            if event.exception is not None:
                failures.append(str(event.exception))
            scheduler.shutdown(wait=False)

        scheduler.add_listener(stop, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    else:
        trigger = CronTrigger.from_crontab(args.cron, timezone=args.zone)
        # a window that is still running when the next one is due is not started twice
        scheduler.add_job(reminder_window, trigger, args=job_args, id="reminder-window",
                          max_instances=1, coalesce=True, misfire_grace_time=3600)
        print(f"next window: {trigger.get_next_fire_time(None, dt.datetime.now(dt.UTC))}",
              flush=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    if failures:
        raise SystemExit(f"the window failed: {failures[0]}")


if __name__ == "__main__":
    main()
