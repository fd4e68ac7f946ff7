"""The daemon's voice side: one connection (real or the embedded sandbox), one agent
per distinct agent name, shared by the campaigns that name it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

from dispatch.config import CampaignConfig, DispatchConfig
from dispatch.config.build import agent_options
from dispatch.log import get_logger

__all__ = ["FatalError", "Voice", "api_key"]

log = get_logger("dispatch.daemon")
DEFAULT_URL = "wss://voice.pinecall.io"


class FatalError(Exception):
    """The daemon cannot run: ``exit_code`` 2 (configuration), 3 (the voice server refused
    the key or an agent) or 1 (it cannot be reached: systemd restarts the unit). The
    message never holds a secret."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def api_key(config: DispatchConfig, environ: Mapping[str, str]) -> str | None:
    """``PINECALL_API_KEY``, else the content of ``voice.api_key_file``, else ``None``
    (registered with :func:`dispatch.log.register_secret`: masked in every log line)."""
    from dispatch.log import register_secret

    key = environ.get("PINECALL_API_KEY") or None
    if key is None and config.voice.api_key_file is not None:
        try:
            key = config.voice.api_key_file.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise FatalError(f"voice.api_key_file: cannot read {config.voice.api_key_file}: "
                             f"{exc.strerror}", 2) from None
    register_secret(key)
    return key


class Voice:
    """Opened with :meth:`open` inside the daemon's exit stack."""

    def __init__(self, config: DispatchConfig, environ: Mapping[str, str]) -> None:
        self.key = api_key(config, environ)
        self.embedded = config.voice.sandbox or (self.key is None and config.voice.url is None)
        self.config = config
        self.client: Any = None
        self.agents: dict[str, Any] = {}
        self.sandbox_number: str | None = None

    async def open(self, stack: contextlib.AsyncExitStack) -> None:
        from dispatch.sdk import Pinecall

        url = self.config.voice.url or DEFAULT_URL
        key = self.key
        if self.embedded:
            from dispatch.sandbox import SANDBOX_NUMBER, Sandbox, ScenarioError

            try:
                sandbox = Sandbox(scenario=self.config.voice.scenario,
                                  speed=self.config.voice.sandbox_speed)
            except ScenarioError as exc:
                raise FatalError(f"voice.scenario: {exc}", 2) from None
            await stack.enter_async_context(sandbox)
            log.warning("sandbox mode: no real calls are placed", url=sandbox.url)
            url, key, self.sandbox_number = sandbox.url, None, SANDBOX_NUMBER
        from dispatch.sdk import AuthenticationError, PinecallError

        self.client = Pinecall(api_key=key, url=url, auto_reconnect=True)
        try:
            await stack.enter_async_context(self.client)
        except AuthenticationError as exc:
            raise FatalError(f"the voice server refused the API key: {exc}", 3) from None
        except PinecallError as exc:  # maybe transient: exit 1, systemd restarts the unit
            raise FatalError(f"cannot reach the voice server: {exc}", 1) from None

    def caller_id(self, campaign: CampaignConfig) -> str | None:
        return campaign.agent.caller_id or self.sandbox_number

    def check(self, campaign: CampaignConfig) -> None:
        if self.caller_id(campaign) is None:
            raise FatalError(f"campaign {campaign.name!r}: agent.from (caller id) is required "
                             "when dialing for real", 2)

    async def agent(self, campaign: CampaignConfig) -> Any:
        """The registered agent of ``campaign`` (registered on first use)."""
        from dispatch.sdk import AuthenticationError, PinecallError, RegistrationError

        name = campaign.agent.name
        if name in self.agents:
            return self.agents[name]
        self.check(campaign)
        try:
            agent = self.client.agent(name, **agent_options(campaign, self.caller_id(campaign)))
            await agent.ready()
        except AuthenticationError as exc:
            raise FatalError(f"the voice server refused the API key: {exc}", 3) from None
        except RegistrationError as exc:
            raise FatalError(f"agent {name!r} could not register: {exc}", 3) from None
        except PinecallError as exc:
            raise FatalError(f"cannot reach the voice server: {exc}", 1) from None
        except OSError as exc:
            raise FatalError(f"campaign {campaign.name!r}: agent.prompt_file: {exc}", 2) from None
        self.agents[name] = agent
        return agent

    @property
    def registered(self) -> bool:
        online = bool(getattr(self.client, "online", False))
        return online and bool(self.agents)


def environ() -> Mapping[str, str]:
    return os.environ
