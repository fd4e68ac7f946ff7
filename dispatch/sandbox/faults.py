"""Fault injection for the sandbox: a plain, mutable settings object.

Pass a :class:`Faults` to ``Sandbox(faults=...)`` and change its fields at any
time; every check reads the current value, so a test can arm a fault in the
middle of a run (``sandbox.faults.ignore_pings = True``). One-shot faults
(``drop_*`` and ``refuse_registrations``) disarm themselves after firing unless
``repeat_drops`` / ``refuse_count=None`` say otherwise, so that a reconnecting
client can be shown to recover.

Counters are per connection: ``drop_after_frames=5`` closes a connection right
after the server sent its 5th frame on that connection (``connected`` counts).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REFUSAL_CODES", "Faults"]

#: Codes accepted by ``Faults.refuse_registrations``.
REFUSAL_CODES = frozenset(
    {"SERVER_AT_CAPACITY", "REGISTRATION_ERROR", "AGENT_CONFLICT_FATAL", "AGENT_CONFLICT"}
)


@dataclass
class Faults:
    """What to break, and how. All fields default to "nothing broken".

    Socket drops (the server closes with ``drop_code``/``drop_reason``):

    - ``drop_after_frames``: after the server has sent N frames on a connection.
    - ``drop_after_received``: after the server has received N frames on a connection.
    - ``drop_after_dials``: right after the ``call.dialing`` (or ``call.error``) of the
      Nth ``call.dial`` received on a connection; the call is then ended as
      ``app_detached`` like any call of a closed socket.
    - ``drop_after_s``: N real seconds after a connection's handshake (read at handshake).
    - ``repeat_drops``: keep drop faults armed after they fire (default: disarm).

    Frames:

    - ``frame_delay_s``: real seconds to wait before each frame the server sends.
    - ``unknown_events``: send an unknown-event frame (``{"event":"sandbox.noise"}``)
      before every frame; ``garbage_frames``: send a non-JSON text frame before every frame.
    - ``duplicate_tool_calls``: send every ``llm.tool_call`` twice with the same ``msg_id``.
    - ``ignore_pings``: stop answering client ``ping`` frames.

    Registration:

    - ``refuse_registrations``: answer ``agent.create`` with ``error {code}`` (one of
      :data:`REFUSAL_CODES`); ``refuse_count``: only the next N times (None = always).

    Dials:

    - ``refuse_dials``: answer every ``call.dial`` with ``call.error {code}`` (e.g.
      ``"RATE_LIMITED"``); ``refuse_dials_count``: only the next N times (None = always).
    """

    drop_after_frames: int | None = None
    drop_after_received: int | None = None
    drop_after_dials: int | None = None
    drop_after_s: float | None = None
    drop_code: int = 1011
    drop_reason: str = "sandbox fault"
    repeat_drops: bool = False
    frame_delay_s: float = 0.0
    unknown_events: bool = False
    garbage_frames: bool = False
    duplicate_tool_calls: bool = False
    ignore_pings: bool = False
    refuse_registrations: str | None = None
    refuse_count: int | None = None
    refuse_dials: str | None = None
    refuse_dials_count: int | None = None

    def take_registration_refusal(self) -> str | None:
        """The refusal code for this ``agent.create``, or None; counts one use."""
        code = self.refuse_registrations
        if code is None:
            return None
        if self.refuse_count is not None:
            self.refuse_count -= 1
            if self.refuse_count <= 0:
                self.refuse_registrations = None
                self.refuse_count = None
        return code

    def take_dial_refusal(self) -> str | None:
        """The ``call.error`` code for this ``call.dial``, or None; counts one use."""
        code = self.refuse_dials
        if code is None:
            return None
        if self.refuse_dials_count is not None:
            self.refuse_dials_count -= 1
            if self.refuse_dials_count <= 0:
                self.refuse_dials = None
                self.refuse_dials_count = None
        return code

    def disarm_drops(self) -> None:
        """Called when a drop fault fired: disarm every drop unless ``repeat_drops``."""
        if not self.repeat_drops:
            self.drop_after_frames = None
            self.drop_after_received = None
            self.drop_after_dials = None
            self.drop_after_s = None
