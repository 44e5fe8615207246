//! The kernel: a fixed array of slots driven through the lifecycle table,
//! the indices that find a slot by trade or order id, the account, and the
//! change tracking that projections drain.
//!
//! Every call touches one slot (or the slots of one asset, for marks) and
//! a constant number of index entries: its cost does not grow with the
//! number of slots.
//!
//! This file holds the `Kernel` itself, its construction, what it reads out,
//! control and account calls, and the bookkeeping and answers every change
//! shares. The calls that change slots live by concern, each an `impl Kernel`:
//!
//! - `intents`: ENTER, EXIT, CANCEL from a strategy, and `submitted`;
//! - `events`: venue events and the fills they carry;
//! - `marks`: mark prices;
//! - `reconcile`: slots replaced from outside (one, or the whole set);
//! - `rollback`: restore points, what a RATE_LIMITED rolls back to, and the
//!   trade ids they reserve;
//! - `index`: the trade, order and asset indices and the free set;
//! - `changes`: versions and the drains into changes and signed documents;
//! - `checkpoint`: the checkpoint format, `checkpoint` and `restore`.

mod changes;
mod checkpoint;
mod events;
mod index;
mod intents;
mod marks;
mod reconcile;
mod rollback;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};

use crate::account::{
    Account, AccountAnswer, AccountEvent, AccountView, Calibration, ExchangeConfigUpdate, ProjectedAccount,
};
pub use crate::documents::Documents;
use crate::documents::{Cut, DocumentKey};
use crate::error::InputError;
use crate::order::{Id, Order};
use crate::outcome::{Details, Outcome, Transition};
use crate::slot::{Exposure, Slot};
use crate::time::Timestamp;
use crate::types::{DiagnosticCode, Mode, Stage, Verbosity};

use index::{Index, UNLISTED};
use rollback::RestorePoint;

/// Event ids a slot remembers for idempotency, by default.
pub const DEFAULT_SEEN_CAPACITY: usize = 64;
/// Slots one kernel may own; far above any strategy, and keeps ids in u32.
pub const MAX_SLOTS: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    pub mode: Mode,
    pub verbosity: Verbosity,
    pub journal: bool,
}

impl Default for Control {
    fn default() -> Self {
        Control {
            mode: Mode::Active,
            verbosity: Verbosity::Normal,
            journal: false,
        }
    }
}

/// What changed since the last drain: each changed key once, in its latest state,
/// and the cut of the slot versions as of this drain (see `documents`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Changes {
    pub slots: Vec<Slot>,
    pub account: Option<AccountView>,
    pub cut: Cut,
}

#[derive(Serialize)]
pub struct Snapshot<'a> {
    pub max_slots: usize,
    pub control: Control,
    pub slots: &'a [Slot],
    pub account: AccountView,
    pub active_trade_index: BTreeMap<&'a str, u32>,
    pub venue_order_index: BTreeMap<&'a str, u32>,
    pub client_order_index: BTreeMap<&'a str, u32>,
}

pub struct Kernel {
    slots: Vec<Slot>,
    /// What a pending ENTER or EXIT replaced, to roll back on RATE_LIMITED.
    before_request: Vec<Option<RestorePoint>>,
    /// Trade ids a rollback would bring back: not free for another ENTER yet.
    reserved: FxHashMap<Id, u32>,
    trade_index: Index,
    venue_index: Index,
    client_index: Index,
    /// Slots holding a live (not free) trade, by asset: what a mark touches.
    asset_index: FxHashMap<Id, Vec<u32>>,
    /// Where each slot sits in its asset's list (`UNLISTED` when it is in
    /// none), so closing a trade leaves the list in constant time.
    asset_pos: Vec<u32>,
    free: BTreeSet<u32>,
    control: Control,
    account: Account,
    order_seq: u64,
    seen_capacity: usize,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    account_dirty: bool,
    /// The account as its last drain showed it; None when its figures or the
    /// slots' open figures changed since.
    view: Option<AccountView>,
    /// The slot versions of the last drain, and the cut over them.
    cut_versions: Vec<u64>,
    cut: Cut,
    /// Signs the documents `drain_documents` (and a store's feed) builds.
    document_key: Option<Arc<DocumentKey>>,
}

fn refusal(e: InputError) -> Details {
    Details::default()
        .with("reason", e.reason)
        .with("field", e.field)
        .with("value", e.value)
}

impl Kernel {
    pub fn new(max_slots: usize) -> Result<Kernel, InputError> {
        Kernel::with_seen_capacity(max_slots, DEFAULT_SEEN_CAPACITY)
    }

    pub fn with_seen_capacity(max_slots: usize, seen_capacity: usize) -> Result<Kernel, InputError> {
        if max_slots == 0 || max_slots > MAX_SLOTS {
            return Err(InputError::new(
                "max_slots",
                max_slots,
                format!("must be 1 to {MAX_SLOTS}"),
            ));
        }
        if seen_capacity == 0 || seen_capacity > 65_536 {
            return Err(InputError::new(
                "seen_event_capacity",
                seen_capacity,
                "must be 1 to 65536",
            ));
        }
        let slots: Vec<Slot> = (0..max_slots as u32).map(Slot::empty).collect();
        // Sized for every slot working an order at once, so no call ever pays
        // for rehashing a growing index (a latency spike on the hot path).
        let sized = || Index::with_capacity_and_hasher(2 * max_slots, Default::default());
        let mut k = Kernel {
            before_request: vec![None; max_slots],
            reserved: FxHashMap::default(),
            trade_index: sized(),
            venue_index: sized(),
            client_index: sized(),
            asset_index: FxHashMap::default(),
            asset_pos: vec![UNLISTED; max_slots],
            free: (0..max_slots as u32).collect(),
            control: Control::default(),
            account: Account::default(),
            order_seq: 0,
            seen_capacity,
            dirty: Vec::new(),
            is_dirty: vec![false; max_slots],
            account_dirty: true,
            view: None,
            cut_versions: vec![0; max_slots],
            cut: Cut::of(std::iter::repeat_n(0, max_slots)),
            document_key: None,
            slots,
        };
        for i in 0..max_slots {
            k.mark_dirty(i);
        }
        Ok(k)
    }

    // ----- reading ------------------------------------------------------------

    pub fn max_slots(&self) -> usize {
        self.slots.len()
    }

    pub fn slot(&self, slot_id: usize) -> Option<&Slot> {
        self.slots.get(slot_id)
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn control(&self) -> Control {
        self.control
    }

    pub fn free_slot(&self) -> Option<u32> {
        self.free.first().copied()
    }

    pub fn trade_index(&self) -> &Index {
        &self.trade_index
    }

    pub fn venue_order_index(&self) -> &Index {
        &self.venue_index
    }

    pub fn client_order_index(&self) -> &Index {
        &self.client_index
    }

    pub fn account(&self) -> AccountView {
        self.account.view(self.exposure())
    }

    /// Open positions, notional and unrealized PnL summed over the slots. Summed
    /// afresh (not kept as running sums) so the figures do not drift and a
    /// restored kernel reports exactly the same; only views and drains pay for it.
    fn exposure(&self) -> Exposure {
        let mut total = Exposure::default();
        for e in self.slots.iter().filter(|s| s.is_open()).map(Slot::exposure) {
            total.open += e.open;
            total.notional += e.notional;
            total.unrealized += e.unrealized;
        }
        total
    }

    pub fn snapshot(&self) -> Snapshot<'_> {
        fn sorted(m: &Index) -> BTreeMap<&str, u32> {
            m.iter().map(|(k, v)| (&**k, *v)).collect()
        }
        Snapshot {
            max_slots: self.slots.len(),
            control: self.control,
            slots: &self.slots,
            account: self.account(),
            active_trade_index: sorted(&self.trade_index),
            venue_order_index: sorted(&self.venue_index),
            client_order_index: sorted(&self.client_index),
        }
    }

    // ----- control and account ------------------------------------------------

    pub fn set_control(&mut self, control: Control) {
        self.control = control;
    }

    pub fn set_seed_capital(&mut self, seed: f64) -> Result<(), InputError> {
        self.account.set_seed_capital(seed)?;
        self.account_changed();
        Ok(())
    }

    /// Takes a projected account's figures (see `Account::adopt`); refused whole if any is invalid.
    pub fn adopt_account(&mut self, projected: &ProjectedAccount) -> Result<(), InputError> {
        self.account.adopt(projected)?;
        self.account_changed();
        Ok(())
    }

    pub fn set_exchange_config(&mut self, update: &ExchangeConfigUpdate) -> Result<(), InputError> {
        self.account.set_config(update)?;
        self.account_changed();
        Ok(())
    }

    pub fn calibrate_fee(&mut self, price: f64, qty: f64, actual_fee: f64) -> Result<Calibration, InputError> {
        let c = self.account.calibrate_fee(price, qty, actual_fee)?;
        self.account_changed();
        Ok(c)
    }

    pub fn on_account_event(&mut self, event: &AccountEvent) -> AccountAnswer {
        let answer = self.account.apply(event);
        if answer.applied {
            self.account_changed();
        }
        answer
    }

    // ----- bookkeeping shared by every change ---------------------------------

    /// The account's figures changed: its next drain builds its view anew.
    fn account_changed(&mut self) {
        self.account_dirty = true;
        self.view = None;
    }

    fn mark_dirty(&mut self, i: usize) {
        if !self.is_dirty[i] {
            self.is_dirty[i] = true;
            self.dirty.push(i as u32);
        }
    }

    /// After slot `i` changed: its version, the account's (the account
    /// document names every slot's version, see `documents`), the dirty and
    /// free sets, and the open figures.
    fn touched(&mut self, i: usize, before: Exposure, was_free: bool) {
        let slot = &mut self.slots[i];
        slot.version = slot.version.saturating_add(1);
        let now_free = slot.is_free();
        let after = slot.exposure();
        if was_free != now_free {
            if now_free {
                self.free.insert(i as u32);
            } else {
                self.free.remove(&(i as u32));
            }
        }
        if after != before {
            self.view = None;
        }
        self.account.version = self.account.version.saturating_add(1);
        self.account_dirty = true;
        self.mark_dirty(i);
    }

    // ----- answers ----------------------------------------------------------------

    fn transition(
        &self,
        i: usize,
        prev: Stage,
        trigger: &'static str,
        ids: (&Id, &Id),
        at: Timestamp,
        details: Details,
    ) -> Transition {
        let s = &self.slots[i];
        Transition {
            timestamp: at,
            trade_id: s.trade_id.clone(),
            slot_id: i as u32,
            prev_state: prev,
            next_state: s.fsm_state,
            trigger,
            intent_id: ids.0.clone(),
            event_id: ids.1.clone(),
            control_mode: self.control.mode,
            control_verbosity: self.control.verbosity,
            details: if self.control.verbosity == Verbosity::Quiet {
                Details::default()
            } else {
                details
            },
        }
    }

    fn accepted(
        &self,
        i: usize,
        code: DiagnosticCode,
        transitions: Vec<Transition>,
        details: Details,
        order: Option<Order>,
    ) -> Outcome {
        let s = &self.slots[i];
        let mut details = if self.control.verbosity == Verbosity::Quiet {
            Details::default()
        } else {
            details
        };
        if self.control.verbosity >= Verbosity::Verbose {
            details.set("size", s.size);
            details.set("entry_price", s.entry_price);
            details.set("realized_pnl", s.realized_pnl);
            details.set("version", s.version);
        }
        if self.control.verbosity == Verbosity::Trace {
            details.set("k_capital", self.account.k_capital());
            details.set("open_positions", self.exposure().open);
        }
        Outcome {
            accepted: true,
            slot_id: i as i64,
            trade_id: s.trade_id.clone(),
            state: s.fsm_state,
            diagnostic_code: code,
            severity: code.severity(),
            transitions,
            emitted_events: Vec::new(),
            details,
            order,
        }
    }

    /// A refusal about slot `slot_id` (which may be out of range); an empty
    /// `trade_id` reports the trade the slot holds.
    fn refuse_at(&self, code: DiagnosticCode, slot_id: i64, trade_id: &Id, details: Details) -> Outcome {
        let slot = usize::try_from(slot_id).ok().and_then(|i| self.slots.get(i));
        let state = slot.map_or(Stage::Idle, |s| s.fsm_state);
        let trade = match slot {
            Some(s) if trade_id.is_empty() => &s.trade_id,
            _ => trade_id,
        };
        Outcome::refused(code, slot_id, trade, state, details)
    }
}
