"""Wiring for ``dispatch run``: voice server (sandbox or real), agent, CSV, hub."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator
from typing import Any

from dispatch.cli import sql_source
from dispatch.cli.errors import CliError
from dispatch.cli.output import Output
from dispatch.log import get_logger

__all__ = ["Campaign", "check_target", "csv_strategy", "embedded_sandbox", "open_campaign"]

log = get_logger("dispatch.cli")
DEFAULT_URL = "wss://voice.pinecall.io"
SANDBOX_BANNER = (
    "SANDBOX MODE: no real calls are placed. Callees are simulated by the embedded sandbox "
    "voice server. Set PINECALL_API_KEY to dial for real."
)


@dataclasses.dataclass
class Campaign:
    """A running campaign's parts, for the run command."""

    hub: Any
    store: Any
    title: str

    async def summary(self) -> tuple[dict[str, int], dict[str, int]]:
        """Counts by status and by last reason, read back from the store."""
        counts: dict[str, int] = await self.store.counts()
        reasons: dict[str, int] = await self.store.reason_counts()
        return counts, reasons


def csv_strategy(args: argparse.Namespace) -> Any:
    """The run command's lead source: a :class:`~strategies.CsvStrategy` over ``args.file``
    (built from the config model the flags map onto, as ``serve`` builds its sources)."""
    from dispatch.config.build import build_strategies

    return build_strategies(_campaign_config(args))[0]


def _campaign_config(args: argparse.Namespace) -> Any:
    """The one campaign ``run``'s flags stand for (``args.config``, mapped once by ``run``)."""
    from dispatch.config.from_args import config_from_run_args

    config = getattr(args, "config", None) or config_from_run_args(args)
    return config.campaigns[0]


def embedded_sandbox(args: argparse.Namespace, key: str | None) -> bool:
    """True when calls go to the sandbox started in this process."""
    return bool(args.sandbox) or (key is None and args.url is None)


def check_target(args: argparse.Namespace, key: str | None) -> None:
    """Refuse, before connecting, a remote voice server without a caller id.

    (Without ``--from`` every dial would fail the same way: the agent has no number.)
    """
    if embedded_sandbox(args, key) or args.from_:
        return
    where = "when dialing for real" if key is not None else f"with --url {args.url}"
    raise CliError(f"no caller id: pass --from with your Pinecall number (required {where})",
                   2, option="--from")


@contextlib.asynccontextmanager
async def open_campaign(
    args: argparse.Namespace, output: Output, strategy: Any
) -> AsyncIterator[Campaign]:
    """Open the store, the voice server (sandbox or real) and the agent; build the hub."""
    from dispatch.hub import DispatchHub
    from dispatch.store import StoreError, open_store

    key = os.environ.get("PINECALL_API_KEY") or None
    async with contextlib.AsyncExitStack() as stack:
        try:
            store = await stack.enter_async_context(open_store(args.db))
        except StoreError as exc:
            raise CliError(str(exc), 2) from exc
        _check_not_running(store)
        embedded = embedded_sandbox(args, key)
        compliance = _compliance(args, embedded, output)
        url, key, from_ = await _voice_server(args, key, output, stack)
        agent = await _ready_agent(args, url, key, from_, stack)
        # the hub is built from the config the flags map onto (one source of truth)
        from dispatch.cli import webhook_options
        from dispatch.config.build import build_hub

        webhooks = webhook_options.attach(args)
        hub: DispatchHub = build_hub(_campaign_config(args), agent, db=store,
                                     strategies=[strategy, *webhooks["extra_strategies"]],
                                     from_=from_, embedded=embedded,
                                     result_webhooks=webhooks["result_webhooks"],
                                     compliance=compliance,
                                     **_log_callbacks())
        mode = "sandbox" if key is None else "live"
        yield Campaign(hub=hub, store=store,
                       title=f"dispatch [{mode}] {sql_source.label(args, strategy)} "
                       f"(campaign {hub.campaign})")


async def _ready_agent(args: argparse.Namespace, url: str, key: str | None, from_: str | None,
                       stack: contextlib.AsyncExitStack) -> Any:
    from dispatch.config.build import agent_options
    from dispatch.sdk import AuthenticationError, Pinecall, PinecallError, RegistrationError

    pc = Pinecall(api_key=key, url=url, auto_reconnect=True)
    try:
        await stack.enter_async_context(pc)
        agent = pc.agent(args.agent, **agent_options(_campaign_config(args), from_))
        await agent.ready()
    except AuthenticationError as exc:
        raise CliError(f"the voice server refused the API key: {exc}", 3) from exc
    except RegistrationError as exc:
        raise CliError(f"agent {args.agent!r} could not register: {exc}", 3) from exc
    except PinecallError as exc:
        raise CliError(f"cannot reach the voice server at {url}: {exc}", 3) from exc
    return agent


async def _voice_server(
    args: argparse.Namespace, key: str | None, output: Output, stack: contextlib.AsyncExitStack
) -> tuple[str, str | None, str | None]:
    """Decide where calls go: (url, api key, caller id)."""
    if embedded_sandbox(args, key):
        from dispatch.sandbox import SANDBOX_NUMBER, Sandbox, ScenarioError

        try:
            sandbox = Sandbox(scenario=args.scenario, speed=args.sandbox_speed)
        except ScenarioError as exc:
            raise CliError(f"bad --scenario: {exc}", 2, option="--scenario") from exc
        await stack.enter_async_context(sandbox)
        output.notice("sandbox mode", SANDBOX_BANNER, url=sandbox.url)
        return sandbox.url, None, args.from_ or SANDBOX_NUMBER
    check_target(args, key)
    return args.url or DEFAULT_URL, key, args.from_


def _compliance(args: argparse.Namespace, embedded: bool, output: Output) -> Any:
    """Issue 9: the admission settings; on the embedded sandbox, say which time it uses."""
    import datetime as dt
    import time

    from dispatch.cli.compliance_opts import build_compliance

    if not hasattr(args, "max_per_phone_24h"):  # a caller's namespace without the options
        return None
    if args.no_compliance:
        output.notice("compliance off", "--no-compliance: calling hours, do-not-call lists "
                      "and caps are NOT applied to this run", compliance=False)
        return None
    compliance = build_compliance(args, embedded=embedded, now_s=time.time())
    if compliance.sandbox_time_s is not None:
        start = dt.datetime.fromtimestamp(compliance.sandbox_time_s, dt.UTC)
        output.notice("sandbox time", f"Calling hours are checked on simulated time starting "
                      f"{start:%Y-%m-%d %H:%M} UTC (--sandbox-time); waits for an opening are "
                      "skipped.", sandbox_time=start.isoformat())
    return compliance


def _check_not_running(store: Any) -> None:
    """Fail before calling anyone when another process runs a campaign on this database.

    (The hub takes the lock itself when it starts; this only gives the one-line error
    early, before the agent registers with the voice server.)
    """
    from dispatch.store import RunLock, StoreLocked

    probe = RunLock(store.url)
    try:
        probe.acquire()
    except StoreLocked as exc:
        raise CliError(str(exc), 2) from exc
    finally:
        probe.release()


def _retry_policy(args: argparse.Namespace, embedded: bool) -> Any:
    """``--retry-delay`` sets one delay for every retryable reason; else the hub's defaults
    (see :func:`dispatch.config.build.retry_policy`, which this delegates to)."""
    from dispatch.config.build import retry_policy
    from dispatch.config.model import RetryConfig

    return retry_policy(RetryConfig(retries=args.retries, delay_s=args.retry_delay),
                        embedded=embedded)



def _log_callbacks() -> dict[str, Any]:
    def dispatched(record: Any, call: Any) -> None:
        log.info("dialing", record_id=record.id, phone=record.phone, call_id=call.id)

    def completed(record: Any, call_id: str, reason: Any) -> None:
        log.info("completed", record_id=record.id, call_id=call_id, reason=str(reason))

    def failed(record: Any, error: BaseException) -> None:
        log.info("failed", record_id=record.id, error=str(error))

    def skipped(record: Any, reason: Any) -> None:
        log.info("skipped", record_id=record.id, reason=str(reason))

    return {
        "on_dispatched": dispatched,
        "on_completed": completed,
        "on_failed": failed,
        "on_skipped": skipped,
    }
