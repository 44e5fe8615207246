//! Checks on what callers hand the kernel, before anything changes.

use std::collections::HashMap;

use crate::order::Id;

use crate::error::{check_derived, check_number, InputError, MAX_DERIVED};
use crate::lifecycle;
use crate::messages::{Intent, VenueEvent};
use crate::order::{Metadata, Order};
use crate::slot::Slot;
use crate::types::{Command, EventKind, OrderType, Side, Stage};

/// Legs beyond this are a mistake, and a slot's memory stays bounded.
pub const MAX_EXIT_LEGS: usize = 64;
const RATIO_SUM_TOLERANCE: f64 = 1e-6;

pub fn exit_leg_ratios(field: &str, ratios: &[f64]) -> Result<(), InputError> {
    if ratios.is_empty() || ratios.len() > MAX_EXIT_LEGS {
        return Err(InputError::new(
            field,
            format!("{ratios:?}"),
            format!("needs 1 to {MAX_EXIT_LEGS} legs"),
        ));
    }
    for (k, r) in ratios.iter().enumerate() {
        if !r.is_finite() || *r <= 0.0 {
            check_number(&format!("{field}[{k}]"), *r, 0.0, true)?;
        }
    }
    let sum: f64 = ratios.iter().sum();
    if (sum - 1.0).abs() > RATIO_SUM_TOLERANCE {
        return Err(InputError::new(
            field,
            format!("{ratios:?}"),
            format!("must sum to 1, sums to {sum}"),
        ));
    }
    Ok(())
}

/// How deep metadata may nest. A checkpoint is msgpack, whose reader stops
/// at a depth limit; metadata deeper than this would be accepted and then
/// make the kernel's own checkpoint unreadable.
pub const MAX_METADATA_DEPTH: usize = 32;

/// Metadata within `MAX_METADATA_DEPTH` (walked without recursion, however deep it is).
pub fn metadata(field: &str, m: &Metadata) -> Result<(), InputError> {
    let mut stack: Vec<(&serde_json::Value, usize)> = m.values().map(|v| (v, 1)).collect();
    while let Some((v, depth)) = stack.pop() {
        if depth > MAX_METADATA_DEPTH {
            return Err(InputError::new(
                field,
                format!("nested {depth}+ deep"),
                format!("must nest at most {MAX_METADATA_DEPTH} levels"),
            ));
        }
        match v {
            serde_json::Value::Array(items) => stack.extend(items.iter().map(|i| (i, depth + 1))),
            serde_json::Value::Object(map) => stack.extend(map.values().map(|i| (i, depth + 1))),
            _ => {}
        }
    }
    Ok(())
}

pub fn intent(intent: &Intent) -> Result<(), InputError> {
    metadata("metadata", &intent.metadata)?;
    check_number("reference_price", intent.reference_price, 0.0, false)?;
    check_number("target_size", intent.target_size, 0.0, false)?;
    check_number("limit_price", intent.limit_price, 0.0, false)?;
    check_number("leverage", intent.leverage, 0.0, false)?;
    if intent.action != Command::Enter {
        return Ok(());
    }
    if intent.trade_id.is_empty() {
        return Err(InputError::new("trade_id", "''", "is required to ENTER"));
    }
    if intent.asset.is_empty() {
        return Err(InputError::new("asset", "''", "is required to ENTER"));
    }
    if intent.side == Side::Flat {
        return Err(InputError::new("side", "FLAT", "an ENTER must be LONG or SHORT"));
    }
    check_number("target_size", intent.target_size, 0.0, true)?;
    check_number("leverage", intent.leverage, 0.0, true)?;
    if intent.order_type == OrderType::Limit {
        check_number("limit_price", intent.limit_price, 0.0, true)?;
    }
    exit_leg_ratios("exit_leg_ratios", &intent.exit_leg_ratios)
}

pub fn event(event: &VenueEvent) -> Result<(), InputError> {
    if event.event_id.is_empty() {
        return Err(InputError::new(
            "event_id",
            "''",
            "is required: venue events are applied once per id",
        ));
    }
    if event.venue_client_id.is_empty() && event.venue_order_id.is_empty() {
        return Err(InputError::new(
            "venue_client_id",
            "''",
            "an event needs venue_client_id or venue_order_id",
        ));
    }
    check_number("price", event.price, 0.0, false)?;
    check_number("size", event.size, 0.0, false)?;
    check_number("filled_size", event.filled_size, 0.0, false)?;
    check_number("remaining_size", event.remaining_size, 0.0, false)?;
    if matches!(event.kind, EventKind::Fill | EventKind::PartialFill) {
        check_number("price", event.price, 0.0, true)?;
        check_number("size", event.size, 0.0, true)?;
    }
    Ok(())
}

pub fn order(field: &str, o: &Order) -> Result<(), InputError> {
    metadata(&format!("{field}.metadata"), &o.metadata)?;
    // Derived figures: an exit leg's size comes from the position's, itself a sum
    // of fills, which may pass MAX_MAGNITUDE; an order the kernel made it takes back.
    check_derived(&format!("{field}.intended_size"), o.intended_size, 0.0)?;
    check_derived(&format!("{field}.filled_size"), o.filled_size, 0.0)?;
    check_number(&format!("{field}.average_fill_price"), o.average_fill_price, 0.0, false)?;
    // The same allowance the kernel grants a fill (Order::tolerance), so every
    // state the kernel reaches is one it accepts back.
    if o.filled_size > o.intended_size + o.tolerance() {
        return Err(InputError::new(
            format!("{field}.filled_size"),
            o.filled_size,
            format!("exceeds intended_size {}", o.intended_size),
        ));
    }
    if o.venue_client_id.is_empty() && o.venue_order_id.is_empty() {
        return Err(InputError::new(
            format!("{field}.venue_client_id"),
            "''",
            "an order needs a client or venue order id",
        ));
    }
    Ok(())
}

/// One slot on its own: numbers in range, and a stage its data can be in.
pub fn slot(s: &Slot, max_slots: usize, prefix: &str) -> Result<(), InputError> {
    let f = |name: &str| format!("{prefix}{name}");
    if s.slot_id as usize >= max_slots {
        return Err(InputError::new(
            f("slot_id"),
            s.slot_id,
            format!("must be below max_slots {max_slots}"),
        ));
    }
    check_number(&f("entry_price"), s.entry_price, 0.0, false)?;
    check_derived(&f("size"), s.size, 0.0)?;
    check_derived(&f("initial_size"), s.initial_size, 0.0)?;
    check_number(&f("leverage"), s.leverage, 0.0, false)?;
    check_derived(&f("unrealized_pnl"), s.unrealized_pnl, -MAX_DERIVED)?;
    check_derived(&f("realized_pnl"), s.realized_pnl, -MAX_DERIVED)?;
    check_number(&f("last_mark_price"), s.last_mark_price, 0.0, false)?;
    exit_leg_ratios(&f("exit_leg_ratios"), &s.exit_leg_ratios)?;
    if s.active_leg_index as usize >= s.exit_leg_ratios.len() {
        return Err(InputError::new(
            f("active_leg_index"),
            s.active_leg_index,
            format!("must be below the number of legs {}", s.exit_leg_ratios.len()),
        ));
    }
    metadata(&f("metadata"), &s.metadata)?;
    if let Some(o) = &s.active_entry_order {
        order(&f("active_entry_order"), o)?;
    }
    if let Some(o) = &s.active_exit_order {
        order(&f("active_exit_order"), o)?;
    }
    if let (Some(entry), Some(exit)) = (&s.active_entry_order, &s.active_exit_order) {
        // An order id maps to one order: the indices could not tell the two apart.
        for (field, a, b) in [
            ("venue_client_id", &entry.venue_client_id, &exit.venue_client_id),
            ("venue_order_id", &entry.venue_order_id, &exit.venue_order_id),
        ] {
            if !a.is_empty() && a == b {
                return Err(InputError::new(
                    f(&format!("active_exit_order.{field}")),
                    &**b,
                    "is also the entry order's: an order id belongs to one order",
                ));
            }
        }
    }
    let stage = s.fsm_state;
    if s.closed != (stage == Stage::Closed) {
        return Err(InputError::new(
            f("closed"),
            s.closed,
            format!("must be {} in stage {stage}", stage == Stage::Closed),
        ));
    }
    if stage == Stage::Idle {
        return Ok(());
    }
    if s.trade_id.is_empty() {
        return Err(InputError::new(
            f("trade_id"),
            "''",
            format!("a slot in stage {stage} holds a trade"),
        ));
    }
    if s.asset.is_empty() {
        return Err(InputError::new(
            f("asset"),
            "''",
            format!("a slot in stage {stage} holds a trade of some asset"),
        ));
    }
    if s.side == Side::Flat {
        return Err(InputError::new(
            f("side"),
            "FLAT",
            format!("a slot in stage {stage} is LONG or SHORT"),
        ));
    }
    // An exit may fill the whole position in parts and still await its FILL: size 0 in EXIT_*.
    let needs_position = stage == Stage::PositionOpen;
    if needs_position && s.size <= 0.0 {
        return Err(InputError::new(
            f("size"),
            s.size,
            format!("must be positive in stage {stage}"),
        ));
    }
    if lifecycle::is_entry_pending(stage) && s.active_entry_order.is_none() {
        return Err(InputError::new(
            f("active_entry_order"),
            "None",
            format!("stage {stage} works an entry order"),
        ));
    }
    if lifecycle::is_exit_pending(stage) && s.active_exit_order.is_none() {
        return Err(InputError::new(
            f("active_exit_order"),
            "None",
            format!("stage {stage} works an exit order"),
        ));
    }
    Ok(())
}

/// A whole set of slots: each valid, no slot id twice, no trade or order in two slots.
pub fn slot_set(slots: &[Slot], max_slots: usize) -> Result<(), InputError> {
    let mut slot_ids: HashMap<u32, usize> = HashMap::new();
    let mut ids: HashMap<(&str, Id), usize> = HashMap::new();
    for (k, s) in slots.iter().enumerate() {
        let prefix = format!("slots[{k}].");
        slot(s, max_slots, &prefix)?;
        if let Some(first) = slot_ids.insert(s.slot_id, k) {
            return Err(InputError::new(
                format!("{prefix}slot_id"),
                s.slot_id,
                format!("also given at slots[{first}]"),
            ));
        }
        for (kind, id) in identities(s).into_iter().flatten() {
            if let Some(first) = ids.insert((kind.field(), id.clone()), k) {
                if first != k {
                    let field = format!("{prefix}{}", kind.field());
                    return Err(InputError::new(field, &*id, format!("is also held by slots[{first}]")));
                }
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    Trade,
    Client,
    Venue,
}

impl IndexKind {
    pub fn field(self) -> &'static str {
        match self {
            IndexKind::Trade => "trade_id",
            IndexKind::Client => "venue_client_id",
            IndexKind::Venue => "venue_order_id",
        }
    }
}

/// The ids the indices map to this slot (shared, so this allocates nothing).
pub fn identities(s: &Slot) -> [Option<(IndexKind, Id)>; 5] {
    fn some(kind: IndexKind, id: &Id) -> Option<(IndexKind, Id)> {
        (!id.is_empty()).then(|| (kind, id.clone()))
    }
    fn order(o: &Option<crate::order::Order>, kind: IndexKind) -> Option<(IndexKind, Id)> {
        let o = o.as_ref()?;
        some(
            kind,
            if kind == IndexKind::Client {
                &o.venue_client_id
            } else {
                &o.venue_order_id
            },
        )
    }
    [
        if s.fsm_state == Stage::Idle {
            None
        } else {
            some(IndexKind::Trade, &s.trade_id)
        },
        order(&s.active_entry_order, IndexKind::Client),
        order(&s.active_entry_order, IndexKind::Venue),
        order(&s.active_exit_order, IndexKind::Client),
        order(&s.active_exit_order, IndexKind::Venue),
    ]
}
