"""The HTTP control plane: campaigns API, Prometheus metrics, probes and a dashboard.

``dispatch serve`` builds a :class:`ControlTarget` (or uses :class:`HubsTarget`),
calls :func:`check_bind` (a non-loopback address needs a token) and hosts
:func:`create_app` with :class:`ControlServer` (uvicorn, leaving the process's
signal handlers alone). ``dispatch ctl`` is the command-line client.
"""

from __future__ import annotations

from dispatch.control.app import create_app
from dispatch.control.auth import BindRefused, check_bind
from dispatch.control.server import ControlServer
from dispatch.control.target import CampaignHandle, ControlTarget, HubHandle, HubsTarget

__all__ = ["BindRefused", "CampaignHandle", "ControlServer", "ControlTarget", "HubHandle",
           "HubsTarget", "check_bind", "create_app"]

#: the default address of the control plane (loopback)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
