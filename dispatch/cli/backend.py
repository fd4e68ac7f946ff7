"""Wiring for ``dispatch run``: voice server (sandbox or real), agent, CSV, hub."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from rich.console import Console

from dispatch.cli.errors import CliError
from dispatch.log import get_logger

__all__ = ["Campaign", "open_campaign"]

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
        rows = await self.store.report_rows()
        reasons = Counter(str(r["last_reason"]) for r in rows if r.get("last_reason"))
        return counts, dict(reasons)


@contextlib.asynccontextmanager
async def open_campaign(args: argparse.Namespace, console: Console) -> AsyncIterator[Campaign]:
    from dispatch.hub import DispatchHub
    from dispatch.sdk import AuthenticationError, Pinecall, PinecallError, RegistrationError
    from dispatch.store import StoreError, open_store
    from strategies import CsvStrategy

    key = os.environ.get("PINECALL_API_KEY") or None
    async with contextlib.AsyncExitStack() as stack:
        try:
            store = await stack.enter_async_context(open_store(args.db))
        except StoreError as exc:
            raise CliError(str(exc), 2) from exc
        _check_not_running(store)
        url, key, from_ = await _voice_server(args, key, console, stack)
        pc = Pinecall(api_key=key, url=url, auto_reconnect=True)
        try:
            await stack.enter_async_context(pc)
            agent = pc.agent(args.agent, **_agent_options(args, from_))
            await agent.ready()
        except AuthenticationError as exc:
            raise CliError(f"the voice server refused the API key: {exc}", 3) from exc
        except RegistrationError as exc:
            raise CliError(f"agent {args.agent!r} could not register: {exc}", 3) from exc
        except PinecallError as exc:
            raise CliError(f"cannot reach the voice server at {url}: {exc}", 3) from exc
        csv = CsvStrategy(
            args.file,
            greeting=args.greeting,
            default_region=args.region,
            write_back="status" if args.write_back else None,
            encoding=args.encoding,
            delimiter="\t" if args.delimiter == "tab" else args.delimiter,
        )
        stack.push_async_callback(csv.aclose)
        hub = DispatchHub(
            agent,
            [csv],
            from_=from_,
            max_calls_per_minute=args.rate,
            max_concurrent=args.concurrency,
            retry_attempts=args.retries,
            retry_policy=_retry_policy(args),
            poll_interval_s=args.poll,
            db=store,
            default_region=args.region,
            **_log_callbacks(),
        )
        mode = "sandbox" if key is None else "live"
        yield Campaign(hub=hub, store=store, title=f"dispatch [{mode}] {args.file}")


async def _voice_server(
    args: argparse.Namespace, key: str | None, console: Console, stack: contextlib.AsyncExitStack
) -> tuple[str, str | None, str | None]:
    """Decide where calls go: (url, api key, caller id)."""
    if args.sandbox or (key is None and args.url is None):
        from dispatch.sandbox import SANDBOX_NUMBER, Sandbox, ScenarioError

        try:
            sandbox = Sandbox(scenario=args.scenario, speed=args.sandbox_speed)
        except ScenarioError as exc:
            raise CliError(f"bad --scenario: {exc}", 2) from exc
        await stack.enter_async_context(sandbox)
        console.print(f"[bold yellow]{SANDBOX_BANNER}[/]", soft_wrap=True)
        log.info("sandbox started", url=sandbox.url)
        return sandbox.url, None, args.from_ or SANDBOX_NUMBER
    if key is not None and not args.from_:
        raise CliError("--from is required when dialing for real (your Pinecall number)", 2)
    return args.url or DEFAULT_URL, key, args.from_


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


def _retry_policy(args: argparse.Namespace) -> Any:
    """``--retry-delay`` sets one delay for every retryable reason; else the hub's defaults."""
    if args.retry_delay is None:
        return None
    from dispatch.hub import RetryPolicy
    from dispatch.hub.retry import DEFAULT_DELAYS_S, MIN_INFRA_DELAY_S

    delay_s = max(args.retry_delay, MIN_INFRA_DELAY_S)
    return RetryPolicy(
        delays_s={reason: delay_s for reason in DEFAULT_DELAYS_S},
        max_attempts=max(RetryPolicy.max_attempts, 1 + args.retries),
    )


def _agent_options(args: argparse.Namespace, from_: str | None) -> dict[str, Any]:
    options = {
        "voice": args.voice,
        "language": args.language,
        "stt": args.stt,
        "llm": args.llm,
        "prompt": args.prompt,
        "phone_number": from_,
    }
    return {k: v for k, v in options.items() if v is not None}


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
