"""``dispatch.sdk``: an embedded client for the Pinecall ``/client`` WebSocket.

::

    async with Pinecall(api_key, url) as pc:
        agent = pc.agent("reminder", voice=..., prompt=..., phone_number="+15005550100")
        await agent.ready()
        call = await agent.dial("+15551234567", timeout_s=70)   # DialFailed if unanswered
        await call.wait_ended()

Correlation is per call (``call.dialing``'s id), never per agent; a dropped socket
settles every dial and call; nothing is replayed after a reconnect.
"""

from dispatch.reasons import Reason
from dispatch.sdk.agent import Agent
from dispatch.sdk.call import Call
from dispatch.sdk.calls_api import CallLogUnavailable, CallsApi, CallState
from dispatch.sdk.client import Pinecall
from dispatch.sdk.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionLost,
    ConnectTimeout,
    DialFailed,
    NotConnected,
    PinecallConnectionError,
    PinecallError,
    RegistrationError,
    RequestFailed,
)
from dispatch.sdk.tools import Tool, tool

__all__ = [
    "Agent",
    "AuthenticationError",
    "Call",
    "CallLogUnavailable",
    "CallState",
    "CallsApi",
    "ConfigurationError",
    "ConnectTimeout",
    "ConnectionLost",
    "DialFailed",
    "NotConnected",
    "Pinecall",
    "PinecallConnectionError",
    "PinecallError",
    "Reason",
    "RegistrationError",
    "RequestFailed",
    "Tool",
    "tool",
]
