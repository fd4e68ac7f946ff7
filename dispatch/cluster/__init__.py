"""Cluster mode: several dispatcher processes on one PostgreSQL act as one dispatcher.

See ``docs/cluster.md``. The hub talks to a :class:`~dispatch.cluster.coordinator.Coordinator`:
:class:`~dispatch.cluster.coordinator.LocalCoordinator` (SQLite, one process: today's
behaviour at zero cost) or :class:`~dispatch.cluster.pg.PgCoordinator`. This package
imports nothing at import time (``dispatch.store.models`` imports its models).
"""
