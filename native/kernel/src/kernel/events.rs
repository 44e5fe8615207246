//! Venue events: routed to their slot by order id, checked against the
//! slot's stage and order, then applied: acks, fills (sizes, prices, PnL,
//! fees), cancels, expiries, rejections, and rate limits (a rollback).

use super::rollback::RestorePoint;
use super::{refusal, Kernel};
use crate::error::InputError;
use crate::lifecycle::{self, Next, Trigger};
use crate::messages::VenueEvent;
use crate::order::Id;
use crate::outcome::{Detail, Details, Outcome};
use crate::slot::{OrderRole, Slot};
use crate::types::{DiagnosticCode, EventKind, OrderStatus, Stage};
use crate::validate;

impl Kernel {
    pub fn on_venue_event(&mut self, ev: &VenueEvent) -> Outcome {
        let ids = |d: Details| {
            d.with("event_id", &ev.event_id)
                .with("kind", Detail::Static(ev.kind.as_str()))
        };
        if let Err(e) = validate::event(ev) {
            return self.refuse_at(DiagnosticCode::InvalidEvent, ev.slot_id, &ev.trade_id, ids(refusal(e)));
        }
        let routed = self
            .client_index
            .get(&ev.venue_client_id)
            .or_else(|| self.venue_index.get(&ev.venue_order_id))
            .copied();
        let Some(i) = routed.map(|i| i as usize) else {
            let d = Details::default()
                .with("reason", "no slot holds this order")
                .with("venue_client_id", &ev.venue_client_id)
                .with("venue_order_id", &ev.venue_order_id);
            return self.refuse_at(DiagnosticCode::UnknownOrder, ev.slot_id, &ev.trade_id, ids(d));
        };
        let slot = &self.slots[i];
        if ev.slot_id >= 0 && ev.slot_id != i as i64 {
            let e = InputError::new("slot_id", ev.slot_id, format!("the order is held by slot {i}"));
            return self.refuse_at(DiagnosticCode::InvalidEvent, ev.slot_id, &ev.trade_id, ids(refusal(e)));
        }
        if !ev.trade_id.is_empty() && ev.trade_id != slot.trade_id {
            let e = InputError::new(
                "trade_id",
                &*ev.trade_id,
                format!("slot {i} holds trade '{}'", slot.trade_id),
            );
            return self.refuse_at(DiagnosticCode::InvalidEvent, i as i64, &ev.trade_id, ids(refusal(e)));
        }
        if slot.has_seen(&ev.event_id) {
            let d = Details::default().with("reason", "event id already applied to this slot");
            return self.refuse_at(DiagnosticCode::DuplicateEvent, i as i64, &Id::default(), ids(d));
        }
        let role = slot
            .order_role(&ev.venue_client_id, &ev.venue_order_id)
            .expect("indexed orders belong to their slot");
        let trigger = match role {
            OrderRole::Entry => Trigger::Entry(ev.kind),
            OrderRole::Exit => Trigger::Exit(ev.kind),
        };
        let Some(next) = lifecycle::next(slot.fsm_state, trigger) else {
            let d = Details::default()
                .with(
                    "reason",
                    format!(
                        "{} of the {} order does not fit stage {}",
                        ev.kind,
                        role_name(role),
                        slot.fsm_state
                    ),
                )
                .with("stage", slot.fsm_state.as_str());
            return self.refuse_at(DiagnosticCode::InvalidTransition, i as i64, &Id::default(), ids(d));
        };
        let order = slot.order(role).expect("the role was found on this slot");
        let is_fill = matches!(ev.kind, EventKind::Fill | EventKind::PartialFill);
        // The tolerance covers the order's total, not each fill afresh.
        if is_fill && order.filled_size + ev.size > order.intended_size + order.tolerance() {
            let d = Details::default()
                .with(
                    "reason",
                    format!(
                        "fill of {} exceeds the {} left of the order",
                        ev.size,
                        order.remaining()
                    ),
                )
                .with("field", "size")
                .with("value", ev.size)
                .with("intended_size", order.intended_size)
                .with("filled_size", order.filled_size);
            return self.refuse_at(DiagnosticCode::Overfill, i as i64, &Id::default(), ids(d));
        }
        if next == Next::Restore && self.before_request[i].is_none() {
            let d = Details::default().with("reason", "no request to roll back");
            return self.refuse_at(DiagnosticCode::InvalidTransition, i as i64, &Id::default(), ids(d));
        }
        if let Some(holder) = self.other_holder_of_venue_id(i, role, &ev.venue_order_id) {
            let e = InputError::new(
                "venue_order_id",
                &*ev.venue_order_id,
                format!("is held by another order ({holder})"),
            );
            return self.refuse_at(DiagnosticCode::InvalidEvent, i as i64, &Id::default(), ids(refusal(e)));
        }
        self.apply_event(i, ev, role, trigger, next)
    }

    fn apply_event(&mut self, i: usize, ev: &VenueEvent, role: OrderRole, trigger: Trigger, next: Next) -> Outcome {
        let (before, was_free, prev) = (
            self.slots[i].exposure(),
            self.slots[i].is_free(),
            self.slots[i].fsm_state,
        );
        // Room for what an event's details can hold, so they never regrow.
        let mut d = Details::with_capacity(6);
        let mut code = DiagnosticCode::Ok;
        if next == Next::Restore {
            match self.set_restore_point(i, None).expect("checked before applying") {
                RestorePoint::Enter(previous) => {
                    let version = self.slots[i].version;
                    self.unindex_slot(i);
                    self.slots[i] = Slot { version, ..*previous };
                    self.index_slot(i);
                }
                RestorePoint::Exit(previous_exit) => {
                    let slot = &mut self.slots[i];
                    let refused = std::mem::replace(&mut slot.active_exit_order, previous_exit.map(|o| *o));
                    slot.fsm_state = Stage::PositionOpen;
                    if let Some(refused) = &refused {
                        self.forget_order(i, refused);
                    }
                    // The restored order's ids go back in the indices by the one rule
                    // that indexes a slot (no id, no entry).
                    self.index_slot(i);
                }
            }
            code = DiagnosticCode::RateLimited;
            d.push(
                "reason",
                if ev.reason.is_empty() {
                    "RATE_LIMITED".to_owned()
                } else {
                    ev.reason.clone()
                },
            );
            d.push("retryable", true);
            d.push("retry_after_ms", ev.retry_after_ms);
        } else {
            self.set_restore_point(i, None);
            if !ev.venue_order_id.is_empty() {
                self.assign_venue_order_id(i, role, &ev.venue_order_id);
            }
            let fee = match ev.kind {
                EventKind::Fill | EventKind::PartialFill => {
                    d.push("price", ev.price);
                    d.push("qty", ev.size);
                    Some(self.apply_fill(i, ev, role))
                }
                _ => None,
            };
            let slot = &mut self.slots[i];
            let order = slot.order_mut(role).expect("the role was found on this slot");
            order.status = match ev.kind {
                EventKind::OrderAck => OrderStatus::Acked,
                EventKind::PartialFill => OrderStatus::PartiallyFilled,
                EventKind::Fill => OrderStatus::Filled,
                EventKind::Cancelled => OrderStatus::Cancelled,
                EventKind::Expired => OrderStatus::Expired,
                EventKind::Rejected => OrderStatus::Rejected,
                EventKind::RateLimited => unreachable!("rate limits restore"),
            };
            slot.fsm_state = match next {
                Next::To(s) => s,
                Next::Stay => slot.fsm_state,
                Next::OpenIfFilled if slot.size > 0.0 => Stage::PositionOpen,
                Next::ClosedIfFlat if slot.size > 0.0 => Stage::PositionOpen,
                Next::OpenIfFilled | Next::ClosedIfFlat => Stage::Closed,
                Next::Restore => unreachable!("handled above"),
            };
            if slot.fsm_state == Stage::PositionOpen && role == OrderRole::Entry {
                // An entry that ends short of its target opens what it got.
                slot.initial_size = slot.size;
            }
            if slot.fsm_state == Stage::PositionOpen {
                slot.advance_legs();
            }
            if slot.fsm_state == Stage::Closed {
                slot.closed = true;
                slot.close_reason = match role {
                    OrderRole::Entry => ev.kind.as_str().to_owned(),
                    OrderRole::Exit => match slot.order(role).map(|o| o.reason.as_str()) {
                        Some("") | None => "EXIT".to_owned(),
                        Some(reason) => reason.to_owned(),
                    },
                };
                slot.unrealized_pnl = 0.0;
                d.push("close_reason", slot.close_reason.clone());
            }
            if let Some(fee) = fee {
                d.push("predicted_fee", fee);
            }
            if self.slots[i].fsm_state == Stage::Closed {
                self.unindex_asset(i);
            }
        }
        let slot = &mut self.slots[i];
        slot.last_event_time = Some(ev.timestamp);
        slot.remember(&ev.event_id, self.seen_capacity);
        self.touched(i, before, was_free);
        let t = self.transition(
            i,
            prev,
            trigger.name(),
            (&Id::default(), &ev.event_id),
            ev.timestamp,
            d.clone(),
        );
        self.accepted(i, code, vec![t], d, None)
    }

    /// Sizes, prices and PnL of one execution; returns the fee predicted for it.
    fn apply_fill(&mut self, i: usize, ev: &VenueEvent, role: OrderRole) -> f64 {
        let slot = &mut self.slots[i];
        let (price, qty) = (ev.price, ev.size);
        let order = slot.order_mut(role).expect("the role was found on this slot");
        order.apply_fill(price, qty);
        let order_type = order.order_type;
        let realized = match role {
            OrderRole::Entry => {
                let size = slot.size + qty;
                slot.entry_price = (slot.entry_price * slot.size + price * qty) / size;
                slot.size = size;
                0.0
            }
            OrderRole::Exit => {
                let pnl = slot.side.sign() * (price - slot.entry_price) * qty;
                slot.realized_pnl += pnl;
                slot.size -= qty;
                if slot.size <= slot.tolerance() {
                    slot.size = 0.0;
                }
                pnl
            }
        };
        slot.refresh_unrealized();
        self.account_changed();
        self.account.on_fill(&ev.event_id, price, qty, order_type, realized)
    }
}

fn role_name(role: OrderRole) -> &'static str {
    match role {
        OrderRole::Entry => "entry",
        OrderRole::Exit => "exit",
    }
}
