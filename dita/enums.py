"""The kernel's enumerations, as text-valued Python enums.

Members are ``str``: they compare equal to their text, serialize to JSON and
msgpack as that text, and the native module reads them without conversion.
The order of members matches the Rust kernel's declaration order.
"""

from __future__ import annotations

from enum import StrEnum


class TradeSide(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"
    FLAT = "FLAT"


class TradeStage(StrEnum):
    IDLE = "IDLE"
    ORDER_REQUESTED = "ORDER_REQUESTED"
    ORDER_SENT = "ORDER_SENT"
    ENTRY_WORKING = "ENTRY_WORKING"
    POSITION_OPEN = "POSITION_OPEN"
    EXIT_REQUESTED = "EXIT_REQUESTED"
    EXIT_WORKING = "EXIT_WORKING"
    CLOSED = "CLOSED"


class KernelCommandType(StrEnum):
    ENTER = "ENTER"
    EXIT = "EXIT"
    CANCEL = "CANCEL"


class KernelEventKind(StrEnum):
    ORDER_ACK = "ORDER_ACK"
    PARTIAL_FILL = "PARTIAL_FILL"
    FILL = "FILL"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
    RATE_LIMITED = "RATE_LIMITED"


class VenueEventStatus(StrEnum):
    ACKED = "ACKED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"
    RATE_LIMITED = "RATE_LIMITED"


class VenueOrderStatus(StrEnum):
    NEW = "NEW"
    SENT = "SENT"
    ACKED = "ACKED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCEL_REQUESTED = "CANCEL_REQUESTED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


class OrderType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class KernelDiagnosticCode(StrEnum):
    OK = "OK"
    DUPLICATE_EVENT = "DUPLICATE_EVENT"
    OVERFILL = "OVERFILL"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    INVALID_SLOT_ID = "INVALID_SLOT_ID"
    INVALID_INTENT = "INVALID_INTENT"
    INVALID_EVENT = "INVALID_EVENT"
    INVALID_SLOTS = "INVALID_SLOTS"
    SLOT_BUSY = "SLOT_BUSY"
    MODE_BLOCKED = "MODE_BLOCKED"
    RATE_LIMITED = "RATE_LIMITED"


class KernelSeverity(StrEnum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class KernelMode(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCE_ONLY = "REDUCE_ONLY"
    HALTED = "HALTED"


class KernelVerbosity(StrEnum):
    QUIET = "QUIET"
    NORMAL = "NORMAL"
    VERBOSE = "VERBOSE"
    TRACE = "TRACE"
