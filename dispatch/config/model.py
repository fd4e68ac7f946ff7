"""The one configuration model (:class:`DispatchConfig`) of ``dispatch serve``.

Every setting of a daemon lives here; ``dispatch run``'s flags map onto the same
model (:mod:`dispatch.config.from_args`), a hub is built from a campaign of it
(:mod:`dispatch.config.build`) and ``DISPATCH_...`` environment variables override
the file (:mod:`dispatch.config.load`). Every model forbids unknown keys, so a typo
is an error naming its key path, never a setting silently ignored.

Secrets are never part of the model: the Pinecall API key comes from
``PINECALL_API_KEY`` or ``voice.api_key_file``, the control token from
``control.token_file``, webhook secrets from ``secret_file``. A key that looks like
a secret (``api_key``, ``token``, ``secret``, ``password``) anywhere in the file is a
validation error, and its value is never echoed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dispatch.config.timing import CallingHoursConfig, ScheduleWindow

__all__ = [
    "CallingHoursConfig",
    "CampaignConfig",
    "ControlConfig",
    "CsvSource",
    "DispatchConfig",
    "LimitsConfig",
    "RetryConfig",
    "ScheduleWindow",
    "SourceConfig",
    "SqlSource",
    "VoiceConfig",
    "WebhookConfig",
    "WebhookSource",
]

#: key names refused anywhere in a config file: secrets are read from files or the env
SECRET_KEY_WORDS = ("api_key", "apikey", "token", "secret", "password")

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CsvSource(_Model):
    """A CSV file of leads (hot-reloaded), as ``dispatch run FILE`` reads it."""

    kind: Literal["csv"] = "csv"
    path: Path
    greeting: str | None = None
    region: str | None = None
    encoding: Literal["utf-8", "latin-1"] = "utf-8"
    delimiter: Literal[",", ";", "tab", "|"] | None = None
    write_back: bool = False

    def identity(self) -> str:
        """What makes two sources the same source (one campaign each)."""
        return str(self.path.resolve())

    @field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import phonenumbers

        code = value.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("unknown region (expected a two-letter country code such as US)")
        return code


class SqlSource(_Model):
    """A database table or SELECT of leads (:class:`~dispatch.strategies.SqlStrategy`).

    The URL comes from ``url`` (no password: the config file holds no secret) or from
    the environment variable named by ``url_env``.
    """

    kind: Literal["sql"] = "sql"
    url: str | None = None
    url_env: str | None = None
    table: str | None = None
    query: str | None = None
    id_column: str = "id"
    phone_column: str = "phone"
    greeting: str | None = None
    cursor_column: str | None = None
    cursor_overlap_s: float | None = Field(default=None, gt=0)
    not_before_column: str | None = None
    timezone_column: str | None = None
    write_back: str | None = None
    region: str | None = None
    page_size: int = Field(default=1000, ge=1)

    @model_validator(mode="after")
    def _one_of_each(self) -> SqlSource:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of table and query")
        if self.url is not None and _has_password(self.url):
            raise ValueError("url holds a password (not shown): use url_env")
        return self

    def identity(self) -> str:
        """What makes two sources the same source (one campaign each)."""
        where = self.url if self.url is not None else f"env:{self.url_env}"
        return f"sql:{where}#{self.table if self.table is not None else self.query}"

    def resolved_url(self) -> str:
        """The URL to connect to (``ValueError`` naming the variable when it is unset)."""
        if self.url is not None:
            return self.url
        assert self.url_env is not None
        value = os.environ.get(self.url_env)
        if not value:
            raise ValueError(f"the environment variable {self.url_env!r} (url_env) is not set")
        return value


class WebhookSource(_Model):
    """Records pushed as JSON to ``http://host:port/v1/campaigns/{campaign}/records``
    (:class:`~dispatch.strategies.WebhookStrategy`), authenticated by the Standard
    Webhooks secrets in ``secret_file`` (one ``whsec_`` a line) or the bearer token in
    ``token_file``."""

    kind: Literal["webhook"] = "webhook"
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    secret_file: Path | None = None
    token_file: Path | None = None
    max_pending: int = Field(default=10_000, ge=1)
    region: str | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> WebhookSource:
        if (self.secret_file is None) == (self.token_file is None):
            raise ValueError("give exactly one of secret_file and token_file")
        return self

    def identity(self) -> str:
        """What makes two sources the same source (one campaign each)."""
        return f"webhook:{self.host}:{self.port}"


def _has_password(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password is not None
    except ArgumentError:
        return False


#: the ``sources`` list is discriminated by ``kind``
SourceConfig = Annotated[CsvSource | SqlSource | WebhookSource, Field(discriminator="kind")]


class AgentConfig(_Model):
    """The voice agent a campaign dials with (registered once per distinct name)."""

    name: str = "dispatch-agent"
    #: caller id (E.164); required unless the embedded sandbox is used
    caller_id: str | None = Field(default=None, alias="from")
    prompt: str | None = None
    prompt_file: Path | None = None
    voice: str | None = None
    llm: str | None = None
    stt: str | None = None
    language: str | None = None

    @field_validator("caller_id")
    @classmethod
    def _caller_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from dispatch.phone import InvalidPhone, normalize_phone

        try:
            return normalize_phone(value)
        except InvalidPhone as exc:
            raise ValueError(f"not a caller id: {exc.why}") from None

    @model_validator(mode="after")
    def _one_prompt(self) -> AgentConfig:
        if self.prompt is not None and self.prompt_file is not None:
            raise ValueError("prompt and prompt_file are mutually exclusive")
        return self


class LimitsConfig(_Model):
    """Pace limits; changed by a reload (SIGHUP) at once, without dropping calls."""

    max_per_minute: PositiveInt | None = None
    max_per_second: PositiveInt | None = None
    max_concurrent: PositiveInt | None = 5

    def as_row(self) -> dict[str, int | None]:
        """The ``campaigns`` row's limit columns."""
        return {"max_per_minute": self.max_per_minute, "max_per_second": self.max_per_second,
                "max_concurrent": self.max_concurrent}


class RetryConfig(_Model):
    """``retries`` extra dials for busy / no answer / failed / timeout."""

    retries: Annotated[int, Field(ge=0)] = 0
    #: one delay for every retryable reason (default: busy 2 min, no answer 10 min...)
    delay_s: PositiveFloat | None = None
    #: per-reason delays, e.g. ``{busy = 60, no_answer = 900}``
    delays_s: dict[str, PositiveFloat] | None = None
    retry_unknown: bool = False

    @field_validator("delays_s")
    @classmethod
    def _reasons(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        from dispatch.hub.retry import DEFAULT_DELAYS_S

        known = {reason.value for reason in DEFAULT_DELAYS_S}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown retry reason {unknown[0]!r} (expected one of "
                             f"{', '.join(sorted(known))})")
        return value


class WebhookConfig(_Model):
    """A result webhook: each terminal outcome is POSTed (signed) to ``url``."""

    url: str
    #: a file holding the ``whsec_...`` signing secret (never the secret itself)
    secret_file: Path | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")) or "://" not in value[:9]:
            raise ValueError("must be an http:// or https:// URL")
        return value


class CampaignConfig(_Model):
    """One campaign: its sources, agent, pace, retries, compliance and schedule."""

    name: str
    sources: list[SourceConfig] = Field(min_length=1)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    calling_hours: CallingHoursConfig | None = None
    #: do-not-call list files (one number a line, or CSV with a phone column)
    dnc: list[Path] = Field(default_factory=list)
    #: empty: always open
    schedule: list[ScheduleWindow] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    poll_interval_s: PositiveFloat = 5.0
    dial_timeout_s: PositiveFloat = 70.0
    #: how long SIGTERM lets live calls finish before hanging up on them
    drain_timeout_s: PositiveFloat = 600.0

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        from dispatch.hub.campaign_state import check_campaign_id

        return check_campaign_id(value)


class VoiceConfig(_Model):
    """Where calls go. Without an API key and without ``url``: the embedded sandbox."""

    url: str | None = None
    #: a file holding the API key (else ``PINECALL_API_KEY``)
    api_key_file: Path | None = None
    sandbox: bool = False
    scenario: Path | None = None
    #: time acceleration of the embedded sandbox (``inf``: instant calls)
    sandbox_speed: Annotated[float, Field(gt=0)] = 4.0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("ws://", "wss://")):
            raise ValueError("must be a ws:// or wss:// URL such as wss://voice.pinecall.io")
        return value


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ControlConfig(_Model):
    """The HTTP control plane (``/v1``, ``/metrics``, dashboard)."""

    enabled: bool = True
    bind: str = "127.0.0.1:8765"
    #: a file holding the bearer token (required when ``bind`` is not loopback)
    token_file: Path | None = None

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8765")
        return value

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ControlConfig:
        if self.enabled and self.token_file is None and not _loopback(self.host):
            raise ValueError(f"bind {self.bind!r} is reachable from other hosts: set "
                             "control.token_file (a bearer token is required off loopback)")
        return self

    @property
    def host(self) -> str:
        return self.bind.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.bind.rpartition(":")[2])


class DispatchConfig(_Model):
    """Everything ``dispatch serve`` runs: one store, one voice connection, N campaigns."""

    #: a SQLite path or an async SQLAlchemy URL
    store: str = "dispatch.db"
    log_format: Literal["text", "json"] = "text"
    voice: VoiceConfig = Field(default_factory=VoiceConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    campaigns: list[CampaignConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> DispatchConfig:
        names = [c.name for c in self.campaigns]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup is not None:
            raise ValueError(f"campaign name {dup!r} is used twice")
        sources = [(c.name, s.identity()) for c in self.campaigns for s in c.sources]
        seen: dict[str, str] = {}
        for name, source in sources:
            if source in seen:
                raise ValueError(f"source {source!r} is in campaigns {seen[source]!r} and "
                                 f"{name!r}: a source belongs to one campaign")
            seen[source] = name
        return self

    def campaign(self, name: str) -> CampaignConfig:
        """The campaign called ``name`` (``KeyError`` otherwise)."""
        for campaign in self.campaigns:
            if campaign.name == name:
                return campaign
        raise KeyError(name)
