//! Valid intents and venue events in one line, for tests, benches and fuzzing.

use crate::messages::{Intent, VenueEvent};
use crate::time::Timestamp;
use crate::types::{Command, EventKind, Side};

pub fn enter(slot_id: i64, trade_id: &str, side: Side, size: f64) -> Intent {
    Intent {
        intent_id: format!("{trade_id}/enter"),
        trade_id: trade_id.to_owned(),
        slot_id,
        asset: "BTC-PERP".to_owned(),
        side,
        action: Command::Enter,
        reference_price: 100.0,
        target_size: size,
        timestamp: Timestamp(1_000_000_000),
        ..Intent::default()
    }
}

pub fn enter_legs(slot_id: i64, trade_id: &str, side: Side, size: f64, legs: &[f64]) -> Intent {
    Intent { exit_leg_ratios: legs.to_vec(), ..enter(slot_id, trade_id, side, size) }
}

pub fn exit(slot_id: i64) -> Intent {
    Intent { intent_id: format!("exit/{slot_id}"), slot_id, action: Command::Exit, ..Intent::default() }
}

pub fn cancel(slot_id: i64) -> Intent {
    Intent { intent_id: format!("cancel/{slot_id}"), slot_id, action: Command::Cancel, ..Intent::default() }
}

/// An event about the order with client id `client_id`.
pub fn event(event_id: &str, client_id: &str, kind: EventKind) -> VenueEvent {
    VenueEvent {
        event_id: event_id.to_owned(),
        venue_client_id: client_id.to_owned(),
        kind,
        timestamp: Timestamp(2_000_000_000),
        ..VenueEvent::default()
    }
}

pub fn ack(event_id: &str, client_id: &str, venue_order_id: &str) -> VenueEvent {
    VenueEvent { venue_order_id: venue_order_id.to_owned(), ..event(event_id, client_id, EventKind::OrderAck) }
}

pub fn fill(event_id: &str, client_id: &str, kind: EventKind, price: f64, qty: f64) -> VenueEvent {
    VenueEvent { price, size: qty, ..event(event_id, client_id, kind) }
}
