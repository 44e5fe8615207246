"""Projections: kernel state made readable outside the kernel.

A projection pulls changed slots and the account from the kernel's change
tracking (never the other way round, so the kernel never waits on it) and
writes them where readers look: in memory by default, Hazelcast maps when a
cluster is given.
"""

from dita.projection.base import KernelProjection, ProjectionSource, slot_key
from dita.projection.memory import InMemoryProjection

__all__ = ["InMemoryProjection", "KernelProjection", "ProjectionSource", "slot_key"]
