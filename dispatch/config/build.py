"""From a :class:`~dispatch.config.CampaignConfig` to a :class:`~dispatch.hub.DispatchHub`.

The one place that turns configuration into engine objects: ``dispatch run``
(through :mod:`dispatch.config.from_args`), ``dispatch serve`` and
:func:`dispatch.run_campaign` all build their hubs here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatch.config.model import (
    CampaignConfig,
    CsvSource,
    RetryConfig,
    SqlSource,
    WebhookConfig,
    WebhookSource,
)

if TYPE_CHECKING:
    from dispatch.hub import DispatchHub, RetryPolicy
    from dispatch.store import Store
    from dispatch.strategy import Strategy

__all__ = [
    "agent_options",
    "build_hub",
    "build_strategies",
    "compliance",
    "hub_kwargs",
    "retry_policy",
]


def build_strategies(campaign: CampaignConfig) -> list[Strategy]:
    """One strategy per configured source, in order."""
    return [_strategy(source) for source in campaign.sources]


def _strategy(source: CsvSource | SqlSource | WebhookSource) -> Strategy:
    if isinstance(source, SqlSource):
        return _sql_strategy(source)
    if isinstance(source, WebhookSource):
        return _webhook_strategy(source)
    from dispatch.strategies import CsvStrategy

    return CsvStrategy(
        source.path,
        greeting=source.greeting,
        default_region=source.region,
        write_back="status" if source.write_back else None,
        encoding=source.encoding,
        delimiter="\t" if source.delimiter == "tab" else source.delimiter,
    )


def _sql_strategy(source: SqlSource) -> Strategy:
    from dispatch.strategies import SqlStrategy

    return SqlStrategy(
        source.resolved_url(), table=source.table, query=source.query,
        id_column=source.id_column, phone_column=source.phone_column,
        greeting=source.greeting, cursor_column=source.cursor_column,
        not_before_column=source.not_before_column, timezone_column=source.timezone_column,
        write_back=source.write_back, default_region=source.region,
        page_size=source.page_size, cursor_overlap=source.cursor_overlap_s)


def read_secrets(path: Path, what: str) -> list[Any]:
    """The ``whsec_`` secrets in ``path``, one a line (``ValueError`` naming ``what`` and
    the file, never its content)."""
    from dispatch.webhooks import parse_secret

    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        secrets = [parse_secret(line) for line in lines if line]
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"{what}: cannot read {path}: {why}") from None
    if not secrets:
        raise ValueError(f"{what}: {path} holds no secret")
    return secrets


def _webhook_strategy(source: WebhookSource) -> Strategy:
    from dispatch.strategies import WebhookStrategy

    token = None
    if source.token_file is not None:
        try:
            token = source.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"token_file: cannot read {source.token_file}: "
                             f"{exc.strerror}") from None
    secrets = (read_secrets(source.secret_file, "secret_file")
               if source.secret_file is not None else [])
    return WebhookStrategy(host=source.host, port=source.port, secrets=secrets, token=token,
                           max_pending=source.max_pending, default_region=source.region)


def result_webhooks(webhooks: list[WebhookConfig]) -> Any:
    """The campaign's :class:`~dispatch.webhooks.ResultWebhooks` (``None`` without any)."""
    if not webhooks:
        return None
    from dispatch.webhooks import Endpoint, ResultWebhooks

    endpoints = []
    for hook in webhooks:
        if hook.secret_file is None:
            raise ValueError(f"result webhook {hook.url}: secret_file is required")
        endpoints.append(Endpoint(hook.url, read_secrets(hook.secret_file, "secret_file")[0]))
    return ResultWebhooks(endpoints)


def retry_policy(retry: RetryConfig, *, embedded: bool = False) -> RetryPolicy | None:
    """The hub's policy, or ``None`` for its defaults.

    ``delay_s`` sets one delay for every retryable reason, ``delays_s`` per reason. On
    the embedded sandbox a crashed run's calls died with its process, so an attempt the
    new sandbox cannot find is retried as ``interrupted`` (``retry_unknown``).
    """
    retry_unknown = retry.retry_unknown or embedded
    if retry.delay_s is None and retry.delays_s is None and not retry_unknown:
        return None
    from dispatch.hub import RetryPolicy
    from dispatch.hub.retry import DEFAULT_DELAYS_S, MIN_INFRA_DELAY_S
    from dispatch.reasons import Reason

    delays_s = dict(DEFAULT_DELAYS_S)
    if retry.delay_s is not None:
        delay_s = max(retry.delay_s, MIN_INFRA_DELAY_S)
        delays_s = {reason: delay_s for reason in DEFAULT_DELAYS_S}
    for name, value in (retry.delays_s or {}).items():
        reason = Reason(name)
        delays_s[reason] = max(value, MIN_INFRA_DELAY_S) if reason in (
            Reason.INTERRUPTED, Reason.DISCONNECTED) else value
    return RetryPolicy(delays_s=delays_s,
                       max_attempts=max(RetryPolicy.max_attempts, 1 + retry.retries),
                       retry_unknown=retry_unknown)


def hub_kwargs(campaign: CampaignConfig, *, from_: str | None = None,
               embedded: bool = False) -> dict[str, Any]:
    """Keyword arguments of :class:`~dispatch.hub.DispatchHub` for ``campaign``
    (everything but the agent, the strategies, the store and callbacks)."""
    region = next((s.region for s in campaign.sources if s.region), None)
    return {
        "from_": from_ if from_ is not None else campaign.agent.caller_id,
        "max_calls_per_minute": campaign.limits.max_per_minute,
        "max_calls_per_second": campaign.limits.max_per_second,
        "max_concurrent": campaign.limits.max_concurrent,
        "retry_attempts": campaign.retry.retries,
        "retry_policy": retry_policy(campaign.retry, embedded=embedded),
        "poll_interval_s": campaign.poll_interval_s,
        "dial_timeout_s": campaign.dial_timeout_s,
        "drain_timeout_s": campaign.drain_timeout_s,
        "default_region": region,
        "campaign": campaign.name,
        "compliance": compliance(campaign, region=region, embedded=embedded),
    }


def compliance(campaign: CampaignConfig, *, region: str | None = None,
               embedded: bool = False) -> Any:
    """The admission step of ``campaign`` (its ``calling_hours`` table, default 08:00-21:00
    callee-local and 3 dials per phone in 24 h; its ``dnc`` files), or ``None`` when
    ``calling_hours.enabled = false`` (the hub then says at start that nothing is
    applied). On the embedded sandbox, calling hours follow the sandbox's simulated
    clock (today 18:00 UTC), as ``dispatch run`` does, so a demo finishes at any hour."""
    from dispatch.config.timing import CallingHoursConfig
    from dispatch.hub.admission import Compliance, default_sandbox_time

    hours = campaign.calling_hours or CallingHoursConfig()
    if not hours.enabled:
        return None
    sandbox_time_s = None
    if embedded:
        import time

        sandbox_time_s = default_sandbox_time(time.time())
    return Compliance(settings=hours.compliance_settings(campaign.name),
                      dnc_files=list(campaign.dnc), dnc_region=region,
                      sandbox_time_s=sandbox_time_s)


def build_hub(campaign: CampaignConfig, agent: Any, *, db: str | Store = "dispatch.db",
              strategies: list[Strategy] | None = None, from_: str | None = None,
              embedded: bool = False, **extra: Any) -> DispatchHub:
    """A hub dialling ``campaign`` through ``agent`` (``extra``: callbacks, ``clock``...)."""
    from dispatch.hub import DispatchHub

    if strategies is None:
        strategies = build_strategies(campaign)
    extra.setdefault("result_webhooks", result_webhooks(list(campaign.webhooks)))
    hub = DispatchHub(agent, strategies, db=db,
                      **{**hub_kwargs(campaign, from_=from_, embedded=embedded), **extra})
    from dispatch.strategies import WebhookStrategy

    for strategy in strategies:
        if isinstance(strategy, WebhookStrategy):
            strategy.campaign = hub.campaign  # its /v1/campaigns/{id}/records
    return hub


def agent_options(campaign: CampaignConfig, from_: str | None) -> dict[str, Any]:
    """``Pinecall.agent(name, **options)`` for ``campaign`` (the prompt file read here)."""
    agent = campaign.agent
    prompt = agent.prompt
    if agent.prompt_file is not None:
        prompt = agent.prompt_file.read_text(encoding="utf-8")
    options = {"voice": agent.voice, "language": agent.language, "stt": agent.stt,
               "llm": agent.llm, "prompt": prompt,
               "phone_number": from_ if from_ is not None else agent.caller_id}
    return {k: v for k, v in options.items() if v is not None}
