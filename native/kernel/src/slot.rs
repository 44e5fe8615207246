//! A trade slot: at most one trade, and the orders working it.

use serde::{Deserialize, Serialize};

pub use crate::order::SIZE_EPSILON;
use crate::order::{Id, Metadata, Order};
use crate::seen::SeenIds;
use crate::time::Timestamp;
use crate::types::{Side, Stage};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Slot {
    pub slot_id: u32,
    pub trade_id: Id,
    pub asset: Id,
    pub side: Side,
    pub entry_price: f64,
    pub size: f64,
    pub initial_size: f64,
    pub leverage: f64,
    pub entry_time: Option<Timestamp>,
    pub unrealized_pnl: f64,
    pub realized_pnl: f64,
    pub closed: bool,
    pub exit_leg_ratios: Vec<f64>,
    pub active_leg_index: u32,
    pub active_entry_order: Option<Order>,
    pub active_exit_order: Option<Order>,
    pub fsm_state: Stage,
    pub close_reason: String,
    pub last_event_time: Option<Timestamp>,
    /// Newest last; bounded by the kernel's seen-id capacity.
    pub seen_event_ids: SeenIds,
    pub metadata: Metadata,
    /// The last price `mark_price` gave this trade's asset, 0 when none yet.
    pub last_mark_price: f64,
    /// Grows on every change of this slot, so readers can tell new from stale.
    pub version: u64,
}

impl Default for Slot {
    fn default() -> Self {
        Slot::empty(0)
    }
}

impl Slot {
    pub fn empty(slot_id: u32) -> Slot {
        Slot {
            slot_id,
            trade_id: Id::default(),
            asset: Id::default(),
            side: Side::Flat,
            entry_price: 0.0,
            size: 0.0,
            initial_size: 0.0,
            leverage: 0.0,
            entry_time: None,
            unrealized_pnl: 0.0,
            realized_pnl: 0.0,
            closed: false,
            exit_leg_ratios: vec![1.0],
            active_leg_index: 0,
            active_entry_order: None,
            active_exit_order: None,
            fsm_state: Stage::Idle,
            close_reason: String::new(),
            last_event_time: None,
            seen_event_ids: SeenIds::default(),
            metadata: Metadata::new(),
            last_mark_price: 0.0,
            version: 0,
        }
    }

    pub fn is_free(&self) -> bool {
        self.fsm_state.is_free()
    }

    /// Holds a position (or part of one) that price moves change.
    pub fn is_open(&self) -> bool {
        !self.is_free() && self.size > 0.0
    }

    pub fn has_seen(&self, event_id: &str) -> bool {
        self.seen_event_ids.contains(event_id)
    }

    pub fn remember(&mut self, event_id: &str, capacity: usize) {
        self.seen_event_ids.push_bounded(event_id, capacity);
    }

    /// Position size left once exit leg `leg` is complete: legs cut
    /// cumulative fractions of `initial_size`, the last one down to zero.
    pub fn size_after_leg(&self, leg: usize) -> f64 {
        if leg + 1 >= self.exit_leg_ratios.len() {
            return 0.0;
        }
        let done: f64 = self.exit_leg_ratios[..=leg].iter().sum();
        (self.initial_size * (1.0 - done)).max(0.0)
    }

    /// The quantity the next EXIT works: the rest of the active leg.
    pub fn next_exit_size(&self) -> f64 {
        (self.size - self.size_after_leg(self.active_leg_index as usize)).max(0.0)
    }

    /// The fraction of `initial_size` the active leg stands for.
    pub fn next_exit_ratio(&self) -> f64 {
        self.exit_leg_ratios
            .get(self.active_leg_index as usize)
            .copied()
            .unwrap_or(0.0)
    }

    /// Moves the active leg past every leg the position is already below.
    pub fn advance_legs(&mut self) {
        let last = self.exit_leg_ratios.len().saturating_sub(1);
        while (self.active_leg_index as usize) < last
            && self.size <= self.size_after_leg(self.active_leg_index as usize) + self.tolerance()
        {
            self.active_leg_index += 1;
        }
    }

    pub fn tolerance(&self) -> f64 {
        SIZE_EPSILON * self.initial_size.max(1.0)
    }

    pub fn refresh_unrealized(&mut self) {
        self.unrealized_pnl = if self.size > 0.0 && self.last_mark_price > 0.0 {
            self.side.sign() * (self.last_mark_price - self.entry_price) * self.size
        } else {
            0.0
        };
    }

    /// Which of this slot's orders carries a client or venue order id.
    pub fn order_role(&self, client_id: &str, venue_id: &str) -> Option<OrderRole> {
        let matches = |o: &Option<Order>| {
            o.as_ref().is_some_and(|o| {
                (!client_id.is_empty() && &*o.venue_client_id == client_id)
                    || (!venue_id.is_empty() && &*o.venue_order_id == venue_id)
            })
        };
        if matches(&self.active_exit_order) {
            Some(OrderRole::Exit)
        } else if matches(&self.active_entry_order) {
            Some(OrderRole::Entry)
        } else {
            None
        }
    }

    pub fn order(&self, role: OrderRole) -> Option<&Order> {
        match role {
            OrderRole::Entry => self.active_entry_order.as_ref(),
            OrderRole::Exit => self.active_exit_order.as_ref(),
        }
    }

    pub fn order_mut(&mut self, role: OrderRole) -> Option<&mut Order> {
        match role {
            OrderRole::Entry => self.active_entry_order.as_mut(),
            OrderRole::Exit => self.active_exit_order.as_mut(),
        }
    }

    /// What this slot adds to the account's open figures.
    pub fn exposure(&self) -> Exposure {
        if self.is_open() {
            Exposure {
                open: 1,
                notional: (self.size * self.entry_price).abs(),
                unrealized: self.unrealized_pnl,
            }
        } else {
            Exposure::default()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderRole {
    Entry,
    Exit,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Exposure {
    pub open: i64,
    pub notional: f64,
    pub unrealized: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(initial: f64, ratios: &[f64]) -> Slot {
        Slot {
            size: initial,
            initial_size: initial,
            exit_leg_ratios: ratios.to_vec(),
            fsm_state: Stage::PositionOpen,
            ..Slot::empty(0)
        }
    }

    #[test]
    fn legs_split_initial_size_and_the_last_takes_the_rest() {
        let mut s = open(10.0, &[0.5, 0.3, 0.2]);
        assert_eq!(s.next_exit_size(), 5.0);
        s.size = 5.0;
        s.advance_legs();
        assert_eq!(s.active_leg_index, 1);
        assert!((s.next_exit_size() - 3.0).abs() < 1e-12);
        s.size = 1.9; // a partly filled leg 1 was cancelled earlier
        s.advance_legs();
        assert_eq!(s.active_leg_index, 2);
        assert_eq!(s.next_exit_size(), 1.9);
    }

    #[test]
    fn a_partly_worked_leg_stays_active_and_asks_only_for_its_rest() {
        let mut s = open(10.0, &[0.5, 0.5]);
        s.size = 7.0;
        s.advance_legs();
        assert_eq!(s.active_leg_index, 0);
        assert_eq!(s.next_exit_size(), 2.0);
    }

    #[test]
    fn seen_ids_are_bounded() {
        let mut s = Slot::empty(0);
        for i in 0..10 {
            s.remember(&format!("e{i}"), 4);
        }
        assert_eq!(s.seen_event_ids.len(), 4);
        assert!(s.has_seen("e9") && !s.has_seen("e5"));
    }
}
