"""dispatch: outbound call campaigns for Pinecall voice agents.

The public surface is exactly :data:`__all__`; everything else is internal and
may change. Names are imported lazily so that ``import dispatch`` (and the CLI)
stays fast and heavy dependencies load only when used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    # records and sources
    "Record": "dispatch.records",
    "Strategy": "dispatch.strategy",
    "Outcome": "dispatch.strategy",
    "RecordFailed": "dispatch.strategy",
    "CsvStrategy": "dispatch.strategies",
    # the hub
    "DispatchHub": "dispatch.hub",
    "RetryPolicy": "dispatch.hub",
    "HubStatistics": "dispatch.hub",
    "SlidingWindowLimiter": "dispatch.hub",
    # the embedded SDK
    "Pinecall": "dispatch.sdk",
    "Agent": "dispatch.sdk",
    "Call": "dispatch.sdk",
    "tool": "dispatch.sdk",
    "Reason": "dispatch.reasons",
    "PinecallError": "dispatch.sdk.errors",
    "AuthenticationError": "dispatch.sdk.errors",
    "RegistrationError": "dispatch.sdk.errors",
    "DialFailed": "dispatch.sdk.errors",
    "ConnectionLost": "dispatch.sdk.errors",
    # the embedded sandbox
    "Sandbox": "dispatch.sandbox",
    # the library inside schedulers
    "run_campaign": "dispatch.daemon.library",
    "CampaignResult": "dispatch.daemon.library",
    "DispatchConfig": "dispatch.config",
    # time
    "Clock": "dispatch.clock",
    "SystemClock": "dispatch.clock",
}

__all__ = [
    "Agent",
    "AuthenticationError",
    "Call",
    "CampaignResult",
    "Clock",
    "ConnectionLost",
    "CsvStrategy",
    "DialFailed",
    "DispatchConfig",
    "DispatchHub",
    "HubStatistics",
    "Outcome",
    "Pinecall",
    "PinecallError",
    "Reason",
    "Record",
    "RecordFailed",
    "RegistrationError",
    "RetryPolicy",
    "Sandbox",
    "SlidingWindowLimiter",
    "Strategy",
    "SystemClock",
    "run_campaign",
    "tool",
]

if TYPE_CHECKING:
    from dispatch.clock import Clock, SystemClock
    from dispatch.config import DispatchConfig
    from dispatch.daemon.library import CampaignResult, run_campaign
    from dispatch.hub import DispatchHub, HubStatistics, RetryPolicy, SlidingWindowLimiter
    from dispatch.reasons import Reason
    from dispatch.records import Record
    from dispatch.sandbox import Sandbox
    from dispatch.sdk import Agent, Call, Pinecall, tool
    from dispatch.sdk.errors import (
        AuthenticationError,
        ConnectionLost,
        DialFailed,
        PinecallError,
        RegistrationError,
    )
    from dispatch.strategies import CsvStrategy
    from dispatch.strategy import Outcome, RecordFailed, Strategy


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dispatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
