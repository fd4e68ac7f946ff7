"""``dispatch.sandbox``: a local, deterministic stand-in for the Pinecall voice server.

It speaks the ``/client`` protocol (see DESIGN.md "Wire contract"), simulates
callees by the last two digits of the dialled number or by a TOML
:class:`Scenario`, and records every dial (``Sandbox.dials``, ``--dial-log``).
:class:`Faults` breaks things on purpose for tests.
"""

from dispatch.sandbox.dial_log import DialRecord
from dispatch.sandbox.faults import Faults
from dispatch.sandbox.refusals import RefusalSettings
from dispatch.sandbox.scenario import Scenario, ScenarioError, digit_outcome
from dispatch.sandbox.server import Sandbox
from dispatch.sandbox.state import SandboxStatistics

__all__ = [
    "SANDBOX_NUMBER",
    "DialRecord",
    "Faults",
    "RefusalSettings",
    "Sandbox",
    "SandboxStatistics",
    "Scenario",
    "ScenarioError",
    "digit_outcome",
]

#: A caller-id number for sandbox agents (any E.164 works; this one is conventional).
SANDBOX_NUMBER = "+15005550006"
