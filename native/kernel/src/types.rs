//! The kernel's enumerations. Each one crosses every boundary (Python,
//! JSON documents, msgpack checkpoints) as its upper-case text, so the same
//! spelling is used everywhere a person or another service reads it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order (the order bindings rely on).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }

            pub const fn index(self) -> usize { self as usize }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "one of {}", [$($text),+].join(", "))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::parse(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
                    }
                }
                d.deserialize_str(Visitor)
            }
        }
    };
}

text_enum!(
    /// Direction of a trade or an order. FLAT is a slot holding nothing.
    Side { Long = "LONG", Short = "SHORT", Flat = "FLAT" }
);

impl Side {
    /// +1 for LONG, -1 for SHORT: the sign of PnL per unit of price move.
    pub fn sign(self) -> f64 {
        match self {
            Side::Long => 1.0,
            Side::Short => -1.0,
            Side::Flat => 0.0,
        }
    }

    pub fn opposite(self) -> Side {
        match self {
            Side::Long => Side::Short,
            Side::Short => Side::Long,
            Side::Flat => Side::Flat,
        }
    }
}

text_enum!(
    /// Where a slot is in its order lifecycle (docs/ARCHITECTURE.md, "Slot lifecycle").
    Stage {
        Idle = "IDLE",
        OrderRequested = "ORDER_REQUESTED",
        OrderSent = "ORDER_SENT",
        EntryWorking = "ENTRY_WORKING",
        PositionOpen = "POSITION_OPEN",
        ExitRequested = "EXIT_REQUESTED",
        ExitWorking = "EXIT_WORKING",
        Closed = "CLOSED",
    }
);

impl Stage {
    /// A free slot takes the next ENTER.
    pub fn is_free(self) -> bool {
        matches!(self, Stage::Idle | Stage::Closed)
    }
}

text_enum!(
    /// What a strategy asks the kernel to do.
    Command { Enter = "ENTER", Exit = "EXIT", Cancel = "CANCEL" }
);

text_enum!(
    /// What a venue reports about an order.
    EventKind {
        OrderAck = "ORDER_ACK",
        PartialFill = "PARTIAL_FILL",
        Fill = "FILL",
        Cancelled = "CANCELLED",
        Expired = "EXPIRED",
        Rejected = "REJECTED",
        RateLimited = "RATE_LIMITED",
    }
);

text_enum!(
    /// The order status a venue event reports; informational, the kind drives the lifecycle.
    EventStatus {
        Acked = "ACKED",
        PartiallyFilled = "PARTIALLY_FILLED",
        Filled = "FILLED",
        Cancelled = "CANCELLED",
        Expired = "EXPIRED",
        Rejected = "REJECTED",
        RateLimited = "RATE_LIMITED",
    }
);

impl EventKind {
    pub fn default_status(self) -> EventStatus {
        match self {
            EventKind::OrderAck => EventStatus::Acked,
            EventKind::PartialFill => EventStatus::PartiallyFilled,
            EventKind::Fill => EventStatus::Filled,
            EventKind::Cancelled => EventStatus::Cancelled,
            EventKind::Expired => EventStatus::Expired,
            EventKind::Rejected => EventStatus::Rejected,
            EventKind::RateLimited => EventStatus::RateLimited,
        }
    }
}

text_enum!(
    /// Where an order the kernel sent stands at the venue.
    OrderStatus {
        New = "NEW",
        Sent = "SENT",
        Acked = "ACKED",
        PartiallyFilled = "PARTIALLY_FILLED",
        Filled = "FILLED",
        CancelRequested = "CANCEL_REQUESTED",
        Cancelled = "CANCELLED",
        Expired = "EXPIRED",
        Rejected = "REJECTED",
    }
);

text_enum!(
    /// MARKET orders pay the taker rate, LIMIT orders the maker rate.
    OrderType { Market = "MARKET", Limit = "LIMIT" }
);

text_enum!(
    /// Why the kernel answered as it did.
    DiagnosticCode {
        Ok = "OK",
        DuplicateEvent = "DUPLICATE_EVENT",
        Overfill = "OVERFILL",
        UnknownOrder = "UNKNOWN_ORDER",
        InvalidTransition = "INVALID_TRANSITION",
        InvalidSlotId = "INVALID_SLOT_ID",
        InvalidIntent = "INVALID_INTENT",
        InvalidEvent = "INVALID_EVENT",
        InvalidSlots = "INVALID_SLOTS",
        SlotBusy = "SLOT_BUSY",
        ModeBlocked = "MODE_BLOCKED",
        RateLimited = "RATE_LIMITED",
    }
);

text_enum!(
    Severity { Info = "INFO", Warning = "WARNING", Error = "ERROR" }
);

impl DiagnosticCode {
    /// How loudly each answer should be reported: refusals that mean a caller
    /// or venue bug are errors, refusals a strategy should expect are warnings.
    pub fn severity(self) -> Severity {
        match self {
            DiagnosticCode::Ok | DiagnosticCode::DuplicateEvent => Severity::Info,
            DiagnosticCode::SlotBusy
            | DiagnosticCode::ModeBlocked
            | DiagnosticCode::RateLimited
            | DiagnosticCode::InvalidTransition
            | DiagnosticCode::UnknownOrder => Severity::Warning,
            DiagnosticCode::Overfill
            | DiagnosticCode::InvalidSlotId
            | DiagnosticCode::InvalidIntent
            | DiagnosticCode::InvalidEvent
            | DiagnosticCode::InvalidSlots => Severity::Error,
        }
    }
}

text_enum!(
    /// What operators allow the kernel to do.
    Mode { Active = "ACTIVE", ReduceOnly = "REDUCE_ONLY", Halted = "HALTED" }
);

text_enum!(
    /// How much detail outcomes, transitions and the journal carry.
    Verbosity { Quiet = "QUIET", Normal = "NORMAL", Verbose = "VERBOSE", Trace = "TRACE" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_for_every_value() {
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.as_str()), Some(*s));
        }
        for c in DiagnosticCode::ALL {
            assert_eq!(DiagnosticCode::parse(c.as_str()), Some(*c));
        }
        assert_eq!(Mode::parse("halted"), None, "values are case-sensitive");
    }

    #[test]
    fn serde_refuses_unknown_text_and_names_the_choices() {
        let err = serde_json::from_str::<Mode>("\"PAUSED\"").unwrap_err().to_string();
        assert!(err.contains("PAUSED") && err.contains("REDUCE_ONLY"), "{err}");
    }
}
