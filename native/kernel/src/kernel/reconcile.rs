//! Reconciliation: slots replaced from outside, one (`set_slot`) or the
//! whole set (`reconcile_from_slots`), checked before anything changes.

use super::{refusal, Kernel};
use crate::documents::takes_version;
use crate::error::InputError;
use crate::order::Id;
use crate::outcome::{Details, Outcome};
use crate::slot::Slot;
use crate::time::Timestamp;
use crate::types::{DiagnosticCode, Severity, Stage};
use crate::validate;

impl Kernel {
    /// Replaces one slot after checking it alone and against the others' ids.
    pub fn set_slot(&mut self, slot: Slot) -> Result<(), InputError> {
        validate::slot(&slot, self.slots.len(), "")?;
        let i = slot.slot_id as usize;
        for (kind, id) in validate::identities(&slot).into_iter().flatten() {
            if let Some(&other) = self.index(kind).get(&id).filter(|&&j| j as usize != i) {
                return Err(InputError::new(
                    kind.field(),
                    &*id,
                    format!("is already held by slot {other}"),
                ));
            }
        }
        self.check_not_reserved(&slot, |_| true)?;
        self.replace_slot(slot);
        Ok(())
    }

    fn replace_slot(&mut self, mut slot: Slot) {
        let i = slot.slot_id as usize;
        let (before, was_free) = (self.slots[i].exposure(), self.slots[i].is_free());
        // A version from outside not below MAX_VERSION is no kernel's: never taken.
        let given = if takes_version(slot.version) { slot.version } else { 0 };
        slot.version = given.max(self.slots[i].version);
        slot.seen_event_ids.truncate_oldest(self.seen_capacity);
        self.unindex_slot(i);
        self.slots[i] = slot;
        self.set_restore_point(i, None);
        self.index_slot(i);
        self.touched(i, before, was_free);
    }

    /// Replaces every slot with the given set (slots left out become IDLE),
    /// after checking the whole set; an invalid set changes nothing.
    pub fn reconcile_from_slots(&mut self, slots: Vec<Slot>, at: Timestamp) -> Outcome {
        if let Err(e) = validate::slot_set(&slots, self.slots.len()) {
            return Outcome::refused(
                DiagnosticCode::InvalidSlots,
                -1,
                &Id::default(),
                Stage::Idle,
                refusal(e),
            );
        }
        let mut given: Vec<Option<Slot>> = vec![None; self.slots.len()];
        let count = slots.len();
        for s in slots {
            let i = s.slot_id as usize;
            given[i] = Some(s);
        }
        // A slot given as it is keeps its pending request, and the trade that
        // request would bring back stays its own.
        let unchanged = |j: usize| match &given[j] {
            Some(s) => *s == self.slots[j],
            None => self.slots[j] == Slot::empty(j as u32),
        };
        for s in given.iter().flatten() {
            if let Err(e) = self.check_not_reserved(s, unchanged) {
                let field = format!("slots[slot_id={}].{}", s.slot_id, e.field);
                let e = InputError { field, ..e };
                return Outcome::refused(
                    DiagnosticCode::InvalidSlots,
                    -1,
                    &Id::default(),
                    Stage::Idle,
                    refusal(e),
                );
            }
        }
        let mut transitions = Vec::new();
        for (i, s) in given.into_iter().enumerate() {
            let prev = self.slots[i].fsm_state;
            let s = s.unwrap_or_else(|| Slot::empty(i as u32));
            if s == self.slots[i] {
                continue;
            }
            self.replace_slot(s);
            if self.slots[i].fsm_state != prev {
                let d = Details::default().with("reason", "reconcile");
                let none = Id::default();
                transitions.push(self.transition(i, prev, "RECONCILE", (&none, &none), at, d));
            }
        }
        Outcome {
            accepted: true,
            slot_id: -1,
            trade_id: Id::default(),
            state: Stage::Idle,
            diagnostic_code: DiagnosticCode::Ok,
            severity: Severity::Info,
            transitions,
            emitted_events: Vec::new(),
            details: Details::default().with("slots", count as u64),
            order: None,
        }
    }
}
