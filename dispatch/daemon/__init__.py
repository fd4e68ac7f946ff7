"""``dispatch.daemon``: ``dispatch serve`` (several campaigns, systemd notify, reload)."""

from __future__ import annotations

from dispatch.daemon.daemon import Daemon
from dispatch.daemon.notify import SystemdNotifier, watchdog_interval_s
from dispatch.daemon.target import CampaignHandle, ControlTarget

__all__ = ["CampaignHandle", "ControlTarget", "Daemon", "SystemdNotifier",
           "watchdog_interval_s"]
