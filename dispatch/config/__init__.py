"""``dispatch.config``: the daemon's configuration, one pydantic model.

Load with :func:`load_config` (TOML file + ``DISPATCH_...`` environment overrides);
build a hub for one campaign with :func:`dispatch.config.build.hub_kwargs`.
"""

from __future__ import annotations

from dispatch.config.load import ConfigError, load_config, parse_config
from dispatch.config.model import (
    AgentConfig,
    CallingHoursConfig,
    CampaignConfig,
    ControlConfig,
    CsvSource,
    DispatchConfig,
    LimitsConfig,
    RetryConfig,
    ScheduleWindow,
    VoiceConfig,
    WebhookConfig,
)

__all__ = [
    "AgentConfig",
    "CallingHoursConfig",
    "CampaignConfig",
    "ConfigError",
    "ControlConfig",
    "CsvSource",
    "DispatchConfig",
    "LimitsConfig",
    "RetryConfig",
    "ScheduleWindow",
    "VoiceConfig",
    "WebhookConfig",
    "load_config",
    "parse_config",
]
