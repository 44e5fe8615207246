"""What the kernel needs from a venue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dita.contracts import KernelIntent, VenueEvent, VenueOrder


class VenueAdapter(Protocol):
    """Hands orders to a venue. Events the venue answers at once are returned
    and applied by the kernel inside the same call; a venue that answers later
    returns [] and its events go to `ExecutionKernel.on_venue_event`."""

    def submit(self, intent: KernelIntent, order: VenueOrder) -> Sequence[VenueEvent]: ...

    def cancel(self, order: VenueOrder, reason: str = "") -> Sequence[VenueEvent]: ...


class SilentVenue:
    """A venue that answers nothing: the kernel alone, for benchmarks and for
    tests that deliver events themselves."""

    def submit(self, intent: KernelIntent, order: VenueOrder) -> Sequence[VenueEvent]:
        return ()

    def cancel(self, order: VenueOrder, reason: str = "") -> Sequence[VenueEvent]:
        return ()
