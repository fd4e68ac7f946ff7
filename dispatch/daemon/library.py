"""``dispatch.run_campaign``: one campaign of a config, for code that is not async.

A thin synchronous facade (``anyio.run``) over the same parts ``dispatch serve``
uses: the voice connection (the embedded sandbox without a key), the campaign's
hub built from its config, the store. Typical use is a scheduler job that runs a
campaign window (``examples/apscheduler_reminders.py``)::

    result = dispatch.run_campaign("dispatch.toml", campaign="reminders",
                                   max_duration_s=8 * 3600)

It must not be called from inside a running event loop (``RuntimeError``); async
code uses :class:`~dispatch.DispatchHub` directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from dispatch.config import CampaignConfig, DispatchConfig, load_config
from dispatch.config.build import build_hub
from dispatch.daemon.voice import FatalError, Voice

__all__ = ["CampaignResult", "run_campaign"]


@dataclasses.dataclass(frozen=True, slots=True)
class CampaignResult:
    """What a :func:`run_campaign` call did: counts by status at its end."""

    campaign: str
    counts: dict[str, int]
    duration_s: float
    #: True when ``max_duration_s`` ended the run before every record was terminal
    stopped_early: bool

    @property
    def unfinished(self) -> int:
        return sum(n for s, n in self.counts.items() if s not in ("completed", "failed",
                                                                   "skipped"))


def run_campaign(config: DispatchConfig | str | os.PathLike[str], *,
                 campaign: str | None = None, until_idle: bool = True,
                 max_duration_s: float | None = None,
                 environ: Mapping[str, str] | None = None, **hub_extra: Any) -> CampaignResult:
    """Run ``campaign`` (default: the first) of ``config`` (a model or a TOML path).

    Returns when every record is terminal and the source has nothing new
    (``until_idle``), or after ``max_duration_s`` (then new dials stop and live calls
    get the campaign's ``drain_timeout_s`` before they are hung up and recorded
    ``interrupted``). Records not dialled stay pending for the next call: running it
    again never calls anyone twice. ``hub_extra`` goes to the hub (callbacks...).
    Raises :class:`~dispatch.config.ConfigError` for a bad file, ``ValueError`` for an
    unknown campaign or a missing caller id, ``RuntimeError`` when the voice server
    refuses the key or agent, and the hub's own errors (see :meth:`DispatchHub.run`).
    """
    env = os.environ if environ is None else environ
    cfg = config if isinstance(config, DispatchConfig) else load_config(Path(config), env)
    chosen = cfg.campaigns[0] if campaign is None else _campaign(cfg, campaign)
    result: CampaignResult = anyio.run(_run, cfg, chosen, until_idle, max_duration_s, env,
                                       hub_extra)
    return result


def _campaign(cfg: DispatchConfig, name: str) -> CampaignConfig:
    try:
        return cfg.campaign(name)
    except KeyError:
        names = ", ".join(c.name for c in cfg.campaigns)
        raise ValueError(f"no campaign {name!r} in the config (campaigns: {names})") from None


async def _run(cfg: DispatchConfig, campaign: CampaignConfig, until_idle: bool,
               max_duration_s: float | None, env: Mapping[str, str],
               hub_extra: dict[str, Any]) -> CampaignResult:
    started = time.monotonic()
    timed_out = False
    async with contextlib.AsyncExitStack() as stack:
        try:
            voice = Voice(cfg, env)
            await voice.open(stack)
            agent = await voice.agent(campaign)
        except FatalError as exc:
            raise (ValueError(str(exc)) if exc.exit_code == 2 else RuntimeError(str(exc))) \
                from None
        hub = build_hub(campaign, agent, db=cfg.store, from_=voice.caller_id(campaign),
                        embedded=voice.embedded, **hub_extra)
        async with anyio.create_task_group() as tg:
            if max_duration_s is not None:
                async def stop_later() -> None:
                    nonlocal timed_out
                    await anyio.sleep(max_duration_s)
                    timed_out = True
                    hub.request_stop(drain=True, timeout_s=campaign.drain_timeout_s)

                tg.start_soon(stop_later)
            await hub.run(until_idle=until_idle)
            tg.cancel_scope.cancel()
    stats = hub.statistics()
    counts = {"pending": stats.pending, "scheduled": stats.scheduled, "dialing": stats.dialing,
              "completed": stats.completed, "failed": stats.failed, "skipped": stats.skipped}
    return CampaignResult(hub.campaign, {k: v for k, v in counts.items() if v},
                          time.monotonic() - started, timed_out)
