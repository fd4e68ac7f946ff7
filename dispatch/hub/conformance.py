"""Static proof (checked by ``mypy dispatch``) that the real and in-memory parts fit the
hub's seams: ``dispatch.sdk.Agent`` and ``dispatch.testing.MemoryDialer`` are
:class:`~dispatch.hub.dialer.Dialer`\\ s, their calls are
:class:`~dispatch.hub.dialer.CallLike`. Nothing here runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dispatch.hub.dialer import CallLike, Dialer
    from dispatch.sdk import Agent, Call
    from dispatch.testing import MemoryCall, MemoryDialer

    def _agent_is_a_dialer(agent: Agent) -> Dialer:
        return agent

    def _memory_dialer_is_a_dialer(dialer: MemoryDialer) -> Dialer:
        return dialer

    def _call_is_call_like(call: Call) -> CallLike:
        return call

    def _memory_call_is_call_like(call: MemoryCall) -> CallLike:
        return call
