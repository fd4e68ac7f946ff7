"""Settings of cluster mode (:class:`ClusterOptions`)."""

from __future__ import annotations

import dataclasses

__all__ = ["ClusterOptions"]


@dataclasses.dataclass(frozen=True, slots=True)
class ClusterOptions:
    """How a dispatcher takes part in a cluster on one PostgreSQL database.

    Durations are real (database clock) seconds unless named ``*_hub_s``.

    - ``lease_ttl_s``: a record claim, a held slot, a leadership lease and a node's
      membership live this long without a heartbeat (heartbeats come every
      ``lease_ttl_s / 3``); a crashed node's work is taken over after at most that;
    - ``send_margin_hub_s``: a rate token is stamped when the claim takes it, so each
      token is reusable only ``window + margin`` later; a dial whose token is older
      than the margin when it is about to leave takes a fresh one first (so every
      frame leaves at most ``margin`` after its stamp: see ``docs/cluster.md``);
    - ``time_scale``: hub-clock seconds per real second (a ``ScaledClock`` against a
      sandbox with compressed time; 1.0 in production): the rate windows and the
      margin are hub-clock seconds, the database clock is real;
    - ``poll_floor_s``: the longest a node waits without a wake-up before it looks
      at the database again (LISTEN/NOTIFY only shortens it);
    - ``sweep_interval_s``: how often the sweeper looks for expired claims.
    """

    lease_ttl_s: float = 30.0
    send_margin_hub_s: float = 0.5
    time_scale: float = 1.0
    poll_floor_s: float = 0.5
    sweep_interval_s: float = 1.0
    #: how long (hub clock) the sweeper waits for an expired attempt's live call
    reconcile_wait_hub_s: float = 90.0

    def __post_init__(self) -> None:
        for name in ("lease_ttl_s", "time_scale", "poll_floor_s", "sweep_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ClusterOptions.{name} must be > 0, got {getattr(self, name)}")
        if self.send_margin_hub_s < 0:
            raise ValueError(f"ClusterOptions.send_margin_hub_s must be >= 0, got "
                             f"{self.send_margin_hub_s}")

    def real_s(self, hub_s: float) -> float:
        """Hub-clock seconds as real seconds."""
        return hub_s / self.time_scale
