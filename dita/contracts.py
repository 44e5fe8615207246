"""The kernel's contracts: what goes in (intents, venue events), what comes
out (outcomes, transitions) and what it holds (slots, orders).

The classes are native (``dita._native``): immutable, built from keyword
arguments that are checked on the way in, with a ``to_dict()`` for plain
data and ``replace(**changes)`` for a modified copy. Enum fields take either
the enum member or its text.
"""

from __future__ import annotations

from dita._native import (
    KernelIntent,
    KernelOutcome,
    KernelTransition,
    TradeSlot,
    VenueEvent,
    VenueOrder,
)
from dita.enums import (
    KernelCommandType,
    KernelDiagnosticCode,
    KernelEventKind,
    KernelMode,
    KernelSeverity,
    KernelVerbosity,
    OrderType,
    TradeSide,
    TradeStage,
    VenueEventStatus,
    VenueOrderStatus,
)

__all__ = [
    "KernelCommandType",
    "KernelDiagnosticCode",
    "KernelEventKind",
    "KernelIntent",
    "KernelMode",
    "KernelOutcome",
    "KernelSeverity",
    "KernelTransition",
    "KernelVerbosity",
    "OrderType",
    "TradeSide",
    "TradeSlot",
    "TradeStage",
    "VenueEvent",
    "VenueEventStatus",
    "VenueOrder",
    "VenueOrderStatus",
]
