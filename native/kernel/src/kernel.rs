//! The kernel: a fixed array of slots driven through the lifecycle table,
//! the indices that find a slot by trade or order id, the account, and the
//! change tracking that projections drain.
//!
//! Every call touches one slot (or the slots of one asset, for marks) and
//! a constant number of index entries: its cost does not grow with the
//! number of slots.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};

use crate::account::{
    Account, AccountAnswer, AccountEvent, AccountView, Calibration, ExchangeConfigUpdate, ProjectedAccount,
};
pub use crate::documents::Documents;
use crate::documents::{Cut, DocumentKey, MAX_VERSION};
use crate::error::InputError;
use crate::lifecycle::{self, Next, Trigger};
use crate::messages::{Intent, VenueEvent};
use crate::order::{client_order_id, Id, Order};
use crate::outcome::{Detail, Details, Outcome, Transition};
use crate::slot::{Exposure, OrderRole, Slot};
use crate::time::Timestamp;
use crate::types::{Command, DiagnosticCode, EventKind, Mode, OrderStatus, Severity, Stage, Verbosity};
use crate::validate::{self, IndexKind};

type Index = FxHashMap<Id, u32>;

/// Event ids a slot remembers for idempotency, by default.
pub const DEFAULT_SEEN_CAPACITY: usize = 64;
/// Slots one kernel may own; far above any strategy, and keeps ids in u32.
pub const MAX_SLOTS: usize = 1 << 20;
const UNLISTED: u32 = u32::MAX;

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

const CHECKPOINT_FORMAT: &str = "dita-kernel-checkpoint/1";

#[derive(Serialize, Deserialize)]
struct Checkpoint {
    format: String,
    seen_capacity: usize,
    control: Control,
    order_seq: u64,
    account: Account,
    slots: Vec<Slot>,
    before_request: Vec<Option<RestorePoint>>,
}

/// What a pending request replaced: the slot's previous trade (ENTER) or its
/// previous exit order (EXIT).
///
/// Boxed, so that the per-slot table of them stays small: every venue event
/// reads its slot's entry, and a table of whole orders would be one more
/// cache miss per event once the kernel outgrows the cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum RestorePoint {
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

    /// Keys changed since the last drain (slots and the account).
    pub fn pending_changes(&self) -> usize {
        self.dirty.len() + usize::from(self.account_dirty)
    }

    /// Lifts versions above what a store already holds (a restarted kernel
    /// meeting its own older projections), so versions readers see only grow.
    /// Raised keys count as changed, and a raised slot moves the account's
    /// version (its cut changes). A floor above `MAX_VERSION` is no kernel's
    /// (anyone can write a store) and is ignored: raising to it would leave
    /// the key's version stuck at the top of u64, and its projection frozen.
    pub fn raise_versions(&mut self, slot_floors: &[(u32, u64)], account_floor: Option<u64>) {
        let mut raised = false;
        for &(slot_id, floor) in slot_floors {
            let i = slot_id as usize;
            if floor <= MAX_VERSION && i < self.slots.len() && self.slots[i].version <= floor {
                self.slots[i].version = floor + 1;
                self.mark_dirty(i);
                raised = true;
            }
        }
        if raised {
            self.account.version = self.account.version.saturating_add(1);
            self.account_dirty = true;
        }
        if let Some(floor) = account_floor.filter(|&f| f <= MAX_VERSION && self.account.version <= f) {
            self.account.version = floor + 1;
            self.account_dirty = true;
        }
    }

    /// The key the documents of `drain_documents` and of a store's feed are
    /// signed with; None: unsigned. Not part of checkpoints. Set it before
    /// the kernel is attached to a store: a document already written stays
    /// as it is until its key changes.
    pub fn set_document_key(&mut self, key: Option<DocumentKey>) {
        self.document_key = key.map(Arc::new);
    }

    pub fn document_key(&self) -> Option<Arc<DocumentKey>> {
        self.document_key.clone()
    }

    /// Marks every slot and the account changed, so the next drain returns
    /// all of them: what a projection needs after its store lost writes.
    pub fn mark_all_changed(&mut self) {
        for i in 0..self.slots.len() {
            self.mark_dirty(i);
        }
        self.account_dirty = true;
    }

    /// Like `drain_changes`, as JSON documents for a store: each carries the
    /// kernel id, its key, its version and when it was written, the account
    /// its cut, and each its signature when the kernel has a document key.
    pub fn drain_documents(&mut self, kernel_id: &str, now: Timestamp) -> Documents {
        let changes = self.drain_changes();
        Documents::of(&changes, kernel_id, now, self.document_key.as_deref())
    }

    pub fn drain_changes(&mut self) -> Changes {
        let mut slots = Vec::with_capacity(self.dirty.len());
        let mut cut_moved = false;
        for i in self.dirty.drain(..) {
            let slot = &self.slots[i as usize];
            self.is_dirty[i as usize] = false;
            // The cut follows the slots here, on the drain, not on every call.
            let drained = &mut self.cut_versions[i as usize];
            if *drained != slot.version {
                self.cut.moved(i, *drained, slot.version);
                *drained = slot.version;
                cut_moved = true;
            }
            slots.push(slot.clone());
        }
        if cut_moved && !self.account_dirty {
            // Every slot change moves the account already; should one not,
            // the account still goes with the cut it is now consistent with.
            self.account.version = self.account.version.saturating_add(1);
            self.account_dirty = true;
        }
        let account = if std::mem::take(&mut self.account_dirty) {
            // Most drains move only the account's version and cut (a slot
            // changed, its open figures did not): the view of the last drain
            // stands, and summing every slot's exposure under the kernel's
            // lock is saved.
            if self.view.is_none() {
                self.view = Some(self.account.view(self.exposure()));
            }
            let mut view = self.view.clone().expect("just built");
            view.version = self.account.version;
            Some(view)
        } else {
            None
        };
        Changes {
            slots,
            account,
            cut: self.cut,
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

    fn index_mut(&mut self, kind: IndexKind) -> &mut Index {
        match kind {
            IndexKind::Trade => &mut self.trade_index,
            IndexKind::Client => &mut self.client_index,
            IndexKind::Venue => &mut self.venue_index,
        }
    }

    fn index(&self, kind: IndexKind) -> &Index {
        match kind {
            IndexKind::Trade => &self.trade_index,
            IndexKind::Client => &self.client_index,
            IndexKind::Venue => &self.venue_index,
        }
    }

    fn index_slot(&mut self, i: usize) {
        for (kind, id) in validate::identities(&self.slots[i]).into_iter().flatten() {
            self.index_mut(kind).insert(id, i as u32);
        }
        let s = &self.slots[i];
        if !s.is_free() && self.asset_pos[i] == UNLISTED {
            let list = self.asset_index.entry(s.asset.clone()).or_default();
            self.asset_pos[i] = list.len() as u32;
            list.push(i as u32);
        }
    }

    fn unindex_slot(&mut self, i: usize) {
        for (kind, id) in validate::identities(&self.slots[i]).into_iter().flatten() {
            let map = self.index_mut(kind);
            if map.get(&id) == Some(&(i as u32)) {
                map.remove(&id);
            }
        }
        self.unindex_asset(i);
    }

    fn unindex_asset(&mut self, i: usize) {
        let pos = std::mem::replace(&mut self.asset_pos[i], UNLISTED);
        if pos == UNLISTED {
            return;
        }
        let asset = &self.slots[i].asset;
        let list = self
            .asset_index
            .get_mut(asset)
            .expect("a listed slot's asset has a list");
        list.swap_remove(pos as usize);
        if let Some(&moved) = list.get(pos as usize) {
            self.asset_pos[moved as usize] = pos;
        }
        if list.is_empty() {
            self.asset_index.remove(asset);
        }
    }

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

    // ----- intents --------------------------------------------------------------

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
        let role = if matches!(stage, Stage::ExitRequested | Stage::ExitWorking) {
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

    // ----- venue events ---------------------------------------------------------

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
                    if let Some(previous) = &self.slots[i].active_exit_order {
                        self.client_index.insert(previous.venue_client_id.clone(), i as u32);
                        if !previous.venue_order_id.is_empty() {
                            self.venue_index.insert(previous.venue_order_id.clone(), i as u32);
                        }
                    }
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

    /// Sets what a rate limit would roll slot `i` back to, keeping the trade
    /// ids such a rollback would bring back reserved; returns the old point.
    fn set_restore_point(&mut self, i: usize, point: Option<RestorePoint>) -> Option<RestorePoint> {
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

    fn assign_venue_order_id(&mut self, i: usize, role: OrderRole, venue_id: &Id) {
        let order = self.slots[i].order_mut(role).expect("the role was found on this slot");
        if order.venue_order_id == *venue_id {
            return;
        }
        let old = std::mem::replace(&mut order.venue_order_id, venue_id.clone());
        if self.venue_index.get(&old) == Some(&(i as u32)) {
            self.venue_index.remove(&old);
        }
        self.venue_index.insert(venue_id.clone(), i as u32);
    }

    /// Which other order already holds `venue_id`, if one does: an order id
    /// maps to one order, so a venue may not give a second order the same id.
    fn other_holder_of_venue_id(&self, i: usize, role: OrderRole, venue_id: &Id) -> Option<String> {
        if venue_id.is_empty() {
            return None;
        }
        let slot = &self.slots[i];
        let other = match role {
            OrderRole::Entry => slot.active_exit_order.as_ref(),
            OrderRole::Exit => slot.active_entry_order.as_ref(),
        };
        if other.is_some_and(|o| o.venue_order_id == *venue_id) {
            return Some(format!("the other order of slot {i}"));
        }
        match self.venue_index.get(venue_id) {
            Some(&j) if j as usize != i => Some(format!("slot {j}")),
            _ => None,
        }
    }

    /// Drops an order this slot no longer holds from the order indices.
    fn forget_order(&mut self, i: usize, order: &Order) {
        for (kind, id) in [
            (IndexKind::Client, &order.venue_client_id),
            (IndexKind::Venue, &order.venue_order_id),
        ] {
            let map = self.index_mut(kind);
            if !id.is_empty() && map.get(id) == Some(&(i as u32)) {
                map.remove(id);
            }
        }
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

    // ----- prices -----------------------------------------------------------------

    /// Marks every live trade of `asset` at `price`; returns how many it touched.
    pub fn mark_price(&mut self, asset: &str, price: f64) -> Result<usize, InputError> {
        crate::error::check_number("price", price, 0.0, true)?;
        // Taken out while marking so `touched` can borrow the kernel; put back below.
        let Some(slots) = self.asset_index.get_mut(asset).map(std::mem::take) else {
            return Ok(0);
        };
        for &j in &slots {
            let i = j as usize;
            let before = self.slots[i].exposure();
            let s = &mut self.slots[i];
            if s.last_mark_price == price {
                continue;
            }
            s.last_mark_price = price;
            s.refresh_unrealized();
            self.touched(i, before, false);
        }
        let n = slots.len();
        if let Some(list) = self.asset_index.get_mut(asset) {
            *list = slots;
        }
        Ok(n)
    }

    // ----- replacing state from outside ---------------------------------------

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

    /// Refuses a slot whose trade another slot's pending request would bring
    /// back on a rate limit (while `keeps(j)` says slot j keeps that request).
    fn check_not_reserved(&self, slot: &Slot, keeps: impl Fn(usize) -> bool) -> Result<(), InputError> {
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

    fn replace_slot(&mut self, mut slot: Slot) {
        let i = slot.slot_id as usize;
        let (before, was_free) = (self.slots[i].exposure(), self.slots[i].is_free());
        // A version from outside above MAX_VERSION is no kernel's: never taken.
        let given = if slot.version <= MAX_VERSION { slot.version } else { 0 };
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

    // ----- checkpoints ------------------------------------------------------------

    /// The whole kernel as msgpack bytes; `restore` gives back an identical kernel.
    pub fn checkpoint(&self) -> Vec<u8> {
        let cp = Checkpoint {
            format: CHECKPOINT_FORMAT.to_owned(),
            seen_capacity: self.seen_capacity,
            control: self.control,
            order_seq: self.order_seq,
            account: self.account.clone(),
            slots: self.slots.clone(),
            before_request: self.before_request.clone(),
        };
        rmp_serde::to_vec_named(&cp).expect("kernel state is always serializable")
    }

    pub fn restore(bytes: &[u8]) -> Result<Kernel, InputError> {
        let cp: Checkpoint = rmp_serde::from_slice(bytes).map_err(|e| {
            InputError::new(
                "checkpoint",
                format!("{} bytes", bytes.len()),
                format!("is not a dita checkpoint: {e}"),
            )
        })?;
        if cp.format != CHECKPOINT_FORMAT {
            return Err(InputError::new(
                "checkpoint.format",
                &cp.format,
                format!("expected {CHECKPOINT_FORMAT}"),
            ));
        }
        let n = cp.slots.len();
        if cp.before_request.len() != n || cp.slots.iter().enumerate().any(|(i, s)| s.slot_id as usize != i) {
            return Err(InputError::new(
                "checkpoint.slots",
                n,
                "slots must be stored in slot id order, one per slot",
            ));
        }
        validate::slot_set(&cp.slots, n)?;
        cp.account.check_restored()?;
        for (i, point) in cp.before_request.iter().enumerate() {
            match point {
                Some(RestorePoint::Enter(slot)) => {
                    validate::slot(slot, n, &format!("checkpoint.before_request[{i}]."))?
                }
                Some(RestorePoint::Exit(Some(order))) => {
                    validate::order(&format!("checkpoint.before_request[{i}]"), order)?
                }
                Some(RestorePoint::Exit(None)) | None => {}
            }
        }
        let mut k = Kernel::with_seen_capacity(n, cp.seen_capacity)?;
        k.control = cp.control;
        k.order_seq = cp.order_seq;
        k.account = cp.account;
        k.account.rebuild_lookups();
        k.slots = cp.slots;
        k.cut_versions = k.slots.iter().map(|s| s.version).collect();
        k.cut = Cut::of(k.cut_versions.iter().copied());
        for (i, rp) in cp.before_request.into_iter().enumerate() {
            k.set_restore_point(i, rp);
        }
        k.rebuild_derived();
        Ok(k)
    }

    /// Indices and free set, recomputed from the slots.
    fn rebuild_derived(&mut self) {
        self.trade_index.clear();
        self.venue_index.clear();
        self.client_index.clear();
        self.asset_index.clear();
        self.asset_pos.fill(UNLISTED);
        self.free.clear();
        for i in 0..self.slots.len() {
            self.index_slot(i);
            if self.slots[i].is_free() {
                self.free.insert(i as u32);
            }
        }
    }
}

fn role_name(role: OrderRole) -> &'static str {
    match role {
        OrderRole::Entry => "entry",
        OrderRole::Exit => "exit",
    }
}
