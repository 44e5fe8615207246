//! Intents from a strategy (ENTER, EXIT, CANCEL) and the venue adapter's
//! word that a slot's order was sent (`submitted`).

use super::rollback::RestorePoint;
use super::{refusal, Kernel};
use crate::error::InputError;
use crate::lifecycle::{self, Next, Trigger};
use crate::messages::Intent;
use crate::order::{client_order_id, Id, Order};
use crate::outcome::{Detail, Details, Outcome};
use crate::slot::{OrderRole, Slot};
use crate::time::Timestamp;
use crate::types::{Command, DiagnosticCode, Mode, OrderStatus, Stage};
use crate::validate;

impl Kernel {
    pub fn process_intent(&mut self, intent: &Intent) -> Outcome {
        let ids = |d: Details| {
            d.with("intent_id", &intent.intent_id)
                .with("action", Detail::Static(intent.action.as_str()))
        };
        let Some(i) = usize::try_from(intent.slot_id).ok().filter(|&i| i < self.slots.len()) else {
            let e = InputError::new(
                "slot_id",
                intent.slot_id,
                format!("must be 0 to {}", self.slots.len() - 1),
            );
            return self.refuse_at(
                DiagnosticCode::InvalidSlotId,
                intent.slot_id,
                &intent.trade_id,
                ids(refusal(e)),
            );
        };
        if let Err(e) = validate::intent(intent) {
            return self.refuse_at(
                DiagnosticCode::InvalidIntent,
                intent.slot_id,
                &intent.trade_id,
                ids(refusal(e)),
            );
        }
        let blocked = match intent.action {
            Command::Enter => self.control.mode != Mode::Active,
            Command::Exit => self.control.mode == Mode::Halted,
            Command::Cancel => false,
        };
        if blocked {
            let d = Details::default()
                .with(
                    "reason",
                    format!("mode {} refuses {}", self.control.mode, intent.action),
                )
                .with("mode", self.control.mode.as_str());
            return self.refuse_at(DiagnosticCode::ModeBlocked, intent.slot_id, &intent.trade_id, ids(d));
        }
        let slot = &self.slots[i];
        if intent.action != Command::Enter && !intent.trade_id.is_empty() && intent.trade_id != slot.trade_id {
            let e = InputError::new(
                "trade_id",
                &*intent.trade_id,
                format!("slot {i} holds trade '{}'", slot.trade_id),
            );
            return self.refuse_at(
                DiagnosticCode::InvalidIntent,
                intent.slot_id,
                &intent.trade_id,
                ids(refusal(e)),
            );
        }
        let trigger = Trigger::Intent(intent.action);
        let Some(next) = lifecycle::next(slot.fsm_state, trigger) else {
            let (code, why) = match (intent.action, slot.is_free()) {
                (Command::Enter, _) => (
                    DiagnosticCode::SlotBusy,
                    format!("slot holds trade '{}' in stage {}", slot.trade_id, slot.fsm_state),
                ),
                (Command::Exit, false) => (
                    DiagnosticCode::SlotBusy,
                    format!("an order is already working in stage {}", slot.fsm_state),
                ),
                (Command::Exit, true) => (
                    DiagnosticCode::InvalidTransition,
                    format!("no open position in stage {}", slot.fsm_state),
                ),
                (Command::Cancel, _) => (
                    DiagnosticCode::InvalidTransition,
                    format!("no working order to cancel in stage {}", slot.fsm_state),
                ),
            };
            let d = Details::default()
                .with("reason", why)
                .with("stage", slot.fsm_state.as_str());
            return self.refuse_at(code, intent.slot_id, &intent.trade_id, ids(d));
        };
        match intent.action {
            Command::Enter => self.enter(i, intent, next),
            Command::Exit => self.exit(i, intent, next),
            Command::Cancel => self.cancel(i, intent),
        }
    }

    fn enter(&mut self, i: usize, intent: &Intent, next: Next) -> Outcome {
        if let Some(&held) = self
            .trade_index
            .get(&intent.trade_id)
            .or_else(|| self.reserved.get(&intent.trade_id))
        {
            let e = InputError::new("trade_id", &*intent.trade_id, format!("is already held by slot {held}"));
            let d = refusal(e).with("intent_id", &intent.intent_id);
            return self.refuse_at(DiagnosticCode::InvalidIntent, i as i64, &intent.trade_id, d);
        }
        let Next::To(stage) = next else {
            unreachable!("ENTER leads to one stage")
        };
        self.order_seq += 1;
        let order = Order {
            internal_trade_id: intent.trade_id.clone(),
            venue_client_id: client_order_id(&intent.trade_id, "-E", self.order_seq),
            side: intent.side,
            order_type: intent.order_type,
            intended_size: intent.target_size,
            reason: intent.reason.clone(),
            ..Order::default()
        };
        let (before, was_free) = (self.slots[i].exposure(), self.slots[i].is_free());
        let prev = self.slots[i].fsm_state;
        self.unindex_slot(i);
        let fresh = Slot {
            slot_id: i as u32,
            trade_id: intent.trade_id.clone(),
            asset: intent.asset.clone(),
            side: intent.side,
            initial_size: intent.target_size,
            leverage: intent.leverage,
            entry_time: Some(intent.timestamp),
            exit_leg_ratios: intent.exit_leg_ratios.clone(),
            active_entry_order: Some(order.clone()),
            fsm_state: stage,
            last_event_time: Some(intent.timestamp),
            metadata: intent.metadata.clone(),
            version: self.slots[i].version,
            ..Slot::empty(i as u32)
        };
        let previous = std::mem::replace(&mut self.slots[i], fresh);
        self.set_restore_point(i, Some(RestorePoint::Enter(Box::new(previous))));
        self.index_slot(i);
        self.touched(i, before, was_free);
        let d = Details::with_capacity(2)
            .with("target_size", intent.target_size)
            .with("venue_client_id", &order.venue_client_id);
        let t = self.transition(
            i,
            prev,
            "ENTER",
            (&intent.intent_id, &Id::default()),
            intent.timestamp,
            d.clone(),
        );
        self.accepted(i, DiagnosticCode::Ok, vec![t], d, Some(order))
    }

    fn exit(&mut self, i: usize, intent: &Intent, next: Next) -> Outcome {
        let slot = &self.slots[i];
        let qty = if intent.target_size > 0.0 {
            intent.target_size
        } else {
            slot.next_exit_size()
        };
        if qty > slot.size + slot.tolerance() {
            let e = InputError::new(
                "target_size",
                intent.target_size,
                format!("exceeds the position size {}", slot.size),
            );
            let d = refusal(e).with("intent_id", &intent.intent_id);
            return self.refuse_at(DiagnosticCode::InvalidIntent, i as i64, &intent.trade_id, d);
        }
        let Next::To(stage) = next else {
            unreachable!("EXIT leads to one stage")
        };
        self.order_seq += 1;
        let order = Order {
            internal_trade_id: slot.trade_id.clone(),
            venue_client_id: client_order_id(&slot.trade_id, "-X", self.order_seq),
            side: slot.side.opposite(),
            order_type: intent.order_type,
            intended_size: qty.min(slot.size),
            reason: intent.reason.clone(),
            ..Order::default()
        };
        let (before, prev) = (slot.exposure(), slot.fsm_state);
        self.client_index.insert(order.venue_client_id.clone(), i as u32);
        let slot = &mut self.slots[i];
        let replaced = slot.active_exit_order.replace(order.clone());
        slot.fsm_state = stage;
        slot.last_event_time = Some(intent.timestamp);
        if let Some(old) = &replaced {
            self.forget_order(i, old);
        }
        self.set_restore_point(i, Some(RestorePoint::Exit(replaced.map(Box::new))));
        self.touched(i, before, false);
        let d = Details::with_capacity(3)
            .with("exit_size", order.intended_size)
            .with("leg", self.slots[i].active_leg_index as i64)
            .with("venue_client_id", &order.venue_client_id);
        let t = self.transition(
            i,
            prev,
            "EXIT",
            (&intent.intent_id, &Id::default()),
            intent.timestamp,
            d.clone(),
        );
        self.accepted(i, DiagnosticCode::Ok, vec![t], d, Some(order))
    }

    fn cancel(&mut self, i: usize, intent: &Intent) -> Outcome {
        let (before, stage) = (self.slots[i].exposure(), self.slots[i].fsm_state);
        let role = if lifecycle::is_exit_pending(stage) {
            OrderRole::Exit
        } else {
            OrderRole::Entry
        };
        let slot = &mut self.slots[i];
        let Some(order) = slot.order_mut(role) else {
            let d = Details::default().with("reason", format!("stage {stage} has no order to cancel"));
            return self.refuse_at(DiagnosticCode::InvalidTransition, i as i64, &intent.trade_id, d);
        };
        order.status = OrderStatus::CancelRequested;
        let order = order.clone();
        slot.last_event_time = Some(intent.timestamp);
        self.touched(i, before, false);
        let d = Details::with_capacity(1).with("venue_client_id", &order.venue_client_id);
        self.accepted(i, DiagnosticCode::Ok, Vec::new(), d, Some(order))
    }

    /// The venue adapter has handed the order of slot `slot_id` to the venue.
    pub fn submitted(&mut self, slot_id: i64, at: Timestamp) -> Outcome {
        let Some(i) = usize::try_from(slot_id).ok().filter(|&i| i < self.slots.len()) else {
            let e = InputError::new("slot_id", slot_id, format!("must be 0 to {}", self.slots.len() - 1));
            return self.refuse_at(DiagnosticCode::InvalidSlotId, slot_id, &Id::default(), refusal(e));
        };
        let stage = self.slots[i].fsm_state;
        let next = lifecycle::next(stage, Trigger::Submitted);
        let role = if stage == Stage::ExitRequested {
            OrderRole::Exit
        } else {
            OrderRole::Entry
        };
        let before = self.slots[i].exposure();
        let (Some(next), Some(order)) = (next, self.slots[i].order_mut(role)) else {
            let d = Details::default().with("reason", format!("stage {stage} has no order waiting to be sent"));
            return self.refuse_at(DiagnosticCode::InvalidTransition, slot_id, &Id::default(), d);
        };
        if order.status == OrderStatus::New {
            order.status = OrderStatus::Sent;
        }
        let client_id = order.venue_client_id.clone();
        if let Next::To(s) = next {
            self.slots[i].fsm_state = s;
        }
        self.touched(i, before, false);
        let d = Details::with_capacity(1).with("venue_client_id", &client_id);
        let none = Id::default();
        let transitions = if self.slots[i].fsm_state != stage {
            vec![self.transition(i, stage, "SUBMITTED", (&none, &none), at, d.clone())]
        } else {
            Vec::new()
        };
        self.accepted(i, DiagnosticCode::Ok, transitions, d, None)
    }
}
