//! What comes into the kernel: intents from the strategy, events from the venue.

use serde::{Deserialize, Serialize};

use crate::order::{Id, Metadata};
use crate::time::Timestamp;
use crate::types::{Command, EventKind, EventStatus, OrderType, Side, Stage};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Intent {
    pub timestamp: Timestamp,
    pub intent_id: Id,
    pub trade_id: Id,
    /// Signed so an out-of-range id reaches the kernel and gets INVALID_SLOT_ID.
    pub slot_id: i64,
    pub asset: Id,
    pub side: Side,
    pub action: Command,
    pub reference_price: f64,
    pub target_size: f64,
    pub leverage: f64,
    pub exit_leg_ratios: Vec<f64>,
    pub reason: String,
    pub metadata: Metadata,
    /// The stage the strategy believed the slot was in; informational.
    pub stage: Stage,
    pub order_type: OrderType,
    pub limit_price: f64,
}

impl Default for Intent {
    fn default() -> Self {
        Intent {
            timestamp: Timestamp::now(),
            intent_id: Id::default(),
            trade_id: Id::default(),
            slot_id: 0,
            asset: Id::default(),
            side: Side::Flat,
            action: Command::Enter,
            reference_price: 0.0,
            target_size: 0.0,
            leverage: 1.0,
            exit_leg_ratios: vec![1.0],
            reason: String::new(),
            metadata: Metadata::new(),
            stage: Stage::Idle,
            order_type: OrderType::Market,
            limit_price: 0.0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VenueEvent {
    pub timestamp: Timestamp,
    pub event_id: Id,
    pub trade_id: Id,
    /// -1 when the venue does not say; events are routed by order ids.
    pub slot_id: i64,
    pub kind: EventKind,
    pub status: Option<EventStatus>,
    pub venue_order_id: Id,
    pub venue_client_id: Id,
    pub side: Side,
    pub asset: Id,
    /// Price of this execution (fills).
    pub price: f64,
    /// Quantity of this execution (fills), not the cumulative quantity.
    pub size: f64,
    /// Cumulative filled quantity as the venue reports it; informational.
    pub filled_size: f64,
    pub remaining_size: f64,
    pub reason: String,
    pub retry_after_ms: u64,
    pub raw_payload: Metadata,
    pub metadata: Metadata,
}

impl Default for VenueEvent {
    fn default() -> Self {
        VenueEvent {
            timestamp: Timestamp::now(),
            event_id: Id::default(),
            trade_id: Id::default(),
            slot_id: -1,
            kind: EventKind::OrderAck,
            status: None,
            venue_order_id: Id::default(),
            venue_client_id: Id::default(),
            side: Side::Flat,
            asset: Id::default(),
            price: 0.0,
            size: 0.0,
            filled_size: 0.0,
            remaining_size: 0.0,
            reason: String::new(),
            retry_after_ms: 0,
            raw_payload: Metadata::new(),
            metadata: Metadata::new(),
        }
    }
}

impl VenueEvent {
    pub fn status(&self) -> EventStatus {
        self.status.unwrap_or_else(|| self.kind.default_status())
    }
}
