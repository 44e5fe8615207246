//! Restore points: what a pending ENTER or EXIT replaced, brought back when
//! the venue answers RATE_LIMITED, and the trade ids such a rollback would
//! bring back, reserved meanwhile.

use serde::{Deserialize, Serialize};

use super::Kernel;
use crate::error::InputError;
use crate::order::{Id, Order};
use crate::slot::Slot;
use crate::types::Stage;

/// What a pending request replaced: the slot's previous trade (ENTER) or its
/// previous exit order (EXIT).
///
/// Boxed, so that the per-slot table of them stays small: every venue event
/// reads its slot's entry, and a table of whole orders would be one more
/// cache miss per event once the kernel outgrows the cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(super) enum RestorePoint {
    Enter(Box<Slot>),
    Exit(Option<Box<Order>>),
}

impl RestorePoint {
    /// The trade a rollback would bring back into its slot.
    fn trade_id(&self) -> Option<&Id> {
        match self {
            RestorePoint::Enter(slot) if slot.fsm_state != Stage::Idle && !slot.trade_id.is_empty() => {
                Some(&slot.trade_id)
            }
            _ => None,
        }
    }
}

impl Kernel {
    /// Sets what a rate limit would roll slot `i` back to, keeping the trade
    /// ids such a rollback would bring back reserved; returns the old point.
    pub(super) fn set_restore_point(&mut self, i: usize, point: Option<RestorePoint>) -> Option<RestorePoint> {
        let old = std::mem::replace(&mut self.before_request[i], point);
        if let Some(id) = old.as_ref().and_then(RestorePoint::trade_id) {
            if self.reserved.get(id) == Some(&(i as u32)) {
                self.reserved.remove(id);
            }
        }
        if let Some(id) = self.before_request[i].as_ref().and_then(RestorePoint::trade_id) {
            self.reserved.insert(id.clone(), i as u32);
        }
        old
    }

    /// Refuses a slot whose trade another slot's pending request would bring
    /// back on a rate limit (while `keeps(j)` says slot j keeps that request).
    pub(super) fn check_not_reserved(&self, slot: &Slot, keeps: impl Fn(usize) -> bool) -> Result<(), InputError> {
        if slot.fsm_state == Stage::Idle {
            return Ok(());
        }
        let i = slot.slot_id as usize;
        match self.reserved.get(&slot.trade_id) {
            Some(&j) if j as usize != i && keeps(j as usize) => Err(InputError::new(
                "trade_id",
                &*slot.trade_id,
                format!("is reserved by slot {j}: its pending request brings it back if the venue rate-limits it"),
            )),
            _ => Ok(()),
        }
    }
}
