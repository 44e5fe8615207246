//! Arbitrary operation sequences on `dita_kernel::Kernel`, decoded from bytes.
//!
//! One interpreter serves the libFuzzer target (coverage-guided, nightly) and
//! the kernel's own property test (random bytes, stable `cargo test`): every
//! call the kernel offers, with valid, stale, duplicate, unknown, out-of-order
//! and malformed arguments. After every step:
//! - the invariants of `dita_kernel::invariants` hold, checkpoint round trip included;
//! - a refused call (an outcome not accepted, an `Err`) left the checkpoint bytes unchanged;
//! - slot and account versions never went down (except by restoring an older checkpoint);
//! - a venue event accepted a moment ago is refused when delivered again.
//!
//! It depends on std and dita_kernel only (plus serde_json, which the kernel
//! uses), so the kernel's test suite can include this file as it is.

use dita_kernel::account::{AccountEvent, AccountEventKind, ProjectedAccount};
use dita_kernel::invariants;
use dita_kernel::*;

/// Choices read from the fuzzer's bytes. Past the end every read is 0, so a
/// short input is still a complete run; `done` ends it.
pub struct Choices<'a> {
    data: &'a [u8],
    pos: usize,
}

/// Figures that sit on the edges the kernel checks: zero, signs, the
/// smallest and largest floats, MAX_MAGNITUDE and just past it, non-finite.
const EDGES: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    0.5,
    2.0,
    100.0,
    1e-9,
    1e-10,
    1e-300,
    5e-324,
    f64::MIN_POSITIVE,
    1e15,
    1.000_000_000_000_000_2e15,
    999_999_999_999_999.9,
    -1.0,
    -1e-300,
    -1e15,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MAX,
    -f64::MAX,
    3.0,
    0.1,
    1e7,
];

impl<'a> Choices<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Choices { data, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// 0 to n - 1 (n at most 256).
    fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }

    fn chance(&mut self, in_256: u8) -> bool {
        self.byte() < in_256
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    fn pick<T: Clone>(&mut self, options: &[T]) -> T {
        options[self.below(options.len())].clone()
    }

    /// Any float: an edge, a small decimal or raw bits.
    fn number(&mut self) -> f64 {
        match self.byte() {
            0..=119 => self.pick(EDGES),
            120..=219 => f64::from(u16::from(self.byte()) << 8 | u16::from(self.byte())) / 100.0,
            _ => f64::from_bits(self.u64()),
        }
    }

    /// Mostly a size a strategy would send, sometimes any float.
    fn size(&mut self) -> f64 {
        if self.chance(200) {
            self.pick(&[1.0, 2.0, 0.5, 0.3, 10.0, 1e-6, 3.0])
        } else {
            self.number()
        }
    }

    fn price(&mut self) -> f64 {
        if self.chance(200) {
            self.pick(&[100.0, 101.5, 99.0, 120.0, 80.25, 1e-3, 5e4, 1e-300])
        } else {
            self.number()
        }
    }

    /// Mostly none; else a few keys of any JSON value, nested a little (or,
    /// once the known bug is fixed, past the depth a checkpoint reads back).
    fn metadata(&mut self) -> Metadata {
        let mut m = Metadata::new();
        if self.chance(200) {
            return m;
        }
        for _ in 0..1 + self.below(3) {
            let key = self.pick(&["source", "note", "", "\u{0}", "k\"e"]).to_owned();
            let value = match self.below(8) {
                0 => serde_json::Value::Null,
                1 => serde_json::Value::Bool(self.chance(128)),
                2 => serde_json::json!(self.u64()),
                3 => serde_json::Number::from_f64(self.number()).map_or(serde_json::Value::Null, Into::into),
                4 => serde_json::json!(["a", 1, [2.5, {"b": null}]]),
                5 => serde_json::Value::String("\u{1F980}".repeat(self.below(40))),
                6 => nested(1 + self.below(64)),
                // Past the kernel's limit (32 levels), which refuses it.
                _ => nested(33 + self.below(100)),
            };
            m.insert(key, value);
        }
        m
    }

    fn maybe(&mut self, f: impl FnOnce(&mut Self) -> f64) -> Option<f64> {
        self.chance(160).then(|| f(self))
    }

    fn timestamp(&mut self) -> Timestamp {
        if self.chance(220) {
            Timestamp(1_000_000_000 * self.below(64) as i64)
        } else {
            Timestamp(self.u64() as i64)
        }
    }

    /// A count as a projected document may carry it: any u64.
    fn counter(&mut self) -> u64 {
        self.u64()
    }

    /// A version floor: small, near the current one, or far above it.
    fn version(&mut self, current: u64) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => current,
            2 => current.saturating_add(1 + self.below(4) as u64),
            3 => u64::MAX - 1,
            4 => u64::MAX,
            _ => self.u64(),
        }
    }
}

fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(serde_json::Value::Null, |inner, _| serde_json::json!({ "a": inner }))
}

const ASSETS: &[&str] = &["BTC", "ETH", ""];
const LEGS: &[&[f64]] = &[
    &[1.0],
    &[0.5, 0.5],
    &[0.5, 0.3, 0.2],
    &[0.1; 10],
    &[],
    &[0.5, 0.6],
    &[1.5, -0.5],
    &[f64::NAN],
    &[0.0, 1.0],
    &[0.015_625; 64],
    &[0.01; 100],
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Enter,
    Exit,
    Cancel,
    Submitted,
    Event,
    Redeliver,
    Mark,
    Control,
    AccountEvent,
    ExchangeConfig,
    Calibrate,
    SeedCapital,
    AdoptAccount,
    SetSlot,
    Reconcile,
    RoundTrip,
    Save,
    RestoreOlder,
    RestoreCorrupt,
    Drain,
    Documents,
    MarkAllChanged,
    RaiseVersions,
}

/// How often each operation comes up: venue events and the calls that feed them most.
const WEIGHTED: &[Op] = &[
    Op::Enter,
    Op::Enter,
    Op::Enter,
    Op::Exit,
    Op::Exit,
    Op::Cancel,
    Op::Submitted,
    Op::Submitted,
    Op::Submitted,
    Op::Event,
    Op::Event,
    Op::Event,
    Op::Event,
    Op::Event,
    Op::Event,
    Op::Event,
    Op::Event,
    Op::Redeliver,
    Op::Mark,
    Op::Mark,
    Op::Control,
    Op::AccountEvent,
    Op::AccountEvent,
    Op::ExchangeConfig,
    Op::Calibrate,
    Op::SeedCapital,
    Op::AdoptAccount,
    Op::SetSlot,
    Op::SetSlot,
    Op::Reconcile,
    Op::RoundTrip,
    Op::Save,
    Op::RestoreOlder,
    Op::RestoreCorrupt,
    Op::Drain,
    Op::Documents,
    Op::MarkAllChanged,
    Op::RaiseVersions,
];

/// What a step did, for the checks after it.
#[derive(Debug, PartialEq, Eq)]
enum Done {
    Accepted,
    Refused,
    /// The kernel was replaced by an older one: versions may go back.
    Rewound,
}

fn done(accepted: bool) -> Done {
    if accepted {
        Done::Accepted
    } else {
        Done::Refused
    }
}

/// A kernel driven by one input, with what earlier steps left behind for
/// later ones to reuse: every order id it issued, fills, checkpoints.
pub struct Run {
    k: Kernel,
    /// Client order ids the kernel issued, live or long gone (bounded).
    clients: Vec<Id>,
    venue_ids: Vec<Id>,
    fill_ids: Vec<Id>,
    saved: Vec<Vec<u8>>,
    /// The venue event accepted by the step just before, to deliver again.
    last_accepted: Option<VenueEvent>,
    fresh: u64,
    /// The kernel's checkpoint after the last step: what a refused call must leave.
    checkpoint: Vec<u8>,
    trace: bool,
    pub steps: u64,
}

/// Runs one input to its end; returns how many operations it made.
/// Panics (naming the step) when a check fails.
pub fn run(data: &[u8]) -> u64 {
    let mut c = Choices::new(data);
    let max_slots = 1 + c.below(4);
    let seen_capacity = c.pick(&[1, 2, 4, 64]);
    let mut run = Run::new(Kernel::with_seen_capacity(max_slots, seen_capacity).expect("valid size"));
    while !c.done() {
        run.step(&mut c);
    }
    run.steps
}

const HISTORY: usize = 64;

fn remember(list: &mut Vec<Id>, id: &Id) {
    if !id.is_empty() && !list.contains(id) {
        if list.len() == HISTORY {
            list.remove(0);
        }
        list.push(id.clone());
    }
}

impl Run {
    pub fn new(k: Kernel) -> Run {
        Run {
            checkpoint: k.checkpoint(),
            k,
            clients: Vec::new(),
            venue_ids: Vec::new(),
            fill_ids: Vec::new(),
            saved: Vec::new(),
            last_accepted: None,
            fresh: 0,
            trace: std::env::var_os("DITA_FUZZ_TRACE").is_some(),
            steps: 0,
        }
    }

    fn note(&self, what: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("step {}: {}", self.steps, what());
        }
    }

    fn fresh_id(&mut self, prefix: &str) -> Id {
        self.fresh += 1;
        format!("{prefix}{}", self.fresh).into()
    }

    fn slot_arg(&self, c: &mut Choices) -> i64 {
        let n = self.k.max_slots() as i64;
        match c.below(16) {
            0 => -1,
            1 => n,
            2 => c.pick(&[i64::MAX, i64::MIN, 1 << 32]),
            _ => c.below(n as usize) as i64,
        }
    }

    fn trade_id(&self, c: &mut Choices) -> Id {
        match c.below(16) {
            0 => Id::default(),
            _ => format!("t{}", c.below(12)).into(),
        }
    }

    pub fn step(&mut self, c: &mut Choices) {
        let op = c.pick(WEIGHTED);
        let versions: Vec<u64> = self.k.slots().iter().map(|s| s.version).collect();
        let account_version = self.k.account().version;
        let redeliver = self.last_accepted.take();
        let outcome = match op {
            Op::Redeliver => self.redeliver(redeliver),
            _ => self.apply(op, c),
        };
        self.steps += 1;
        let at = |what: &str| format!("step {} ({op:?}): {what}", self.steps);
        let after = self.k.checkpoint();
        if outcome == Done::Refused && after != self.checkpoint {
            panic!("{}", at("a refused call changed the kernel"));
        }
        if let Err(e) = invariants::check(&self.k) {
            panic!("{}", at(&format!("kernel invariant broken: {e}")));
        }
        if let Err(e) = invariants::check_restores(&after) {
            panic!("{}", at(&format!("kernel invariant broken: {e}")));
        }
        self.checkpoint = after;
        if outcome != Done::Rewound {
            for (i, (s, old)) in self.k.slots().iter().zip(versions).enumerate() {
                assert!(
                    s.version >= old,
                    "{}",
                    at(&format!("slot {i} version went from {old} to {}", s.version))
                );
            }
            let now = self.k.account().version;
            assert!(
                now >= account_version,
                "{}",
                at(&format!("account version went from {account_version} to {now}"))
            );
        }
        for s in self.k.slots() {
            for o in [&s.active_entry_order, &s.active_exit_order].into_iter().flatten() {
                remember(&mut self.clients, &o.venue_client_id);
                remember(&mut self.venue_ids, &o.venue_order_id);
            }
        }
    }

    fn apply(&mut self, op: Op, c: &mut Choices) -> Done {
        match op {
            Op::Enter => self.enter(c),
            Op::Exit => self.exit(c),
            Op::Cancel => {
                let intent = Intent {
                    intent_id: self.fresh_id("c"),
                    slot_id: self.slot_arg(c),
                    trade_id: if c.chance(200) { Id::default() } else { self.trade_id(c) },
                    action: Command::Cancel,
                    timestamp: c.timestamp(),
                    ..Intent::default()
                };
                self.intent(intent)
            }
            Op::Submitted => {
                let (slot, at) = (self.slot_arg(c), c.timestamp());
                self.note(|| format!("submitted({slot}, {at:?})"));
                done(self.k.submitted(slot, at).accepted)
            }
            Op::Event => self.event(c),
            Op::Redeliver => unreachable!("handled by step"),
            Op::Mark => {
                let asset = c.pick(ASSETS);
                let price = c.price();
                self.note(|| format!("mark_price({asset}, {price})"));
                done(self.k.mark_price(asset, price).is_ok())
            }
            Op::Control => {
                let control = Control {
                    mode: c.pick(Mode::ALL),
                    verbosity: c.pick(Verbosity::ALL),
                    journal: c.chance(128),
                };
                self.note(|| format!("set_control({control:?})"));
                self.k.set_control(control);
                Done::Accepted
            }
            Op::AccountEvent => self.account_event(c),
            Op::ExchangeConfig => {
                let rate = |c: &mut Choices| {
                    if c.chance(200) {
                        c.pick(&[0.0005, 0.0002, 0.0, 0.01])
                    } else {
                        c.number()
                    }
                };
                let update = ExchangeConfigUpdate {
                    taker_rate: c.maybe(rate),
                    maker_rate: c.maybe(rate),
                    lot_step: c.maybe(|c| {
                        if c.chance(128) {
                            c.pick(&[0.001, 0.1, 0.0])
                        } else {
                            c.number()
                        }
                    }),
                    tick_size: c.maybe(|c| {
                        if c.chance(128) {
                            c.pick(&[0.01, 0.5, 0.0])
                        } else {
                            c.number()
                        }
                    }),
                    funding_interval_secs: c.chance(64).then(|| c.u64()),
                };
                self.note(|| format!("set_exchange_config({update:?})"));
                done(self.k.set_exchange_config(&update).is_ok())
            }
            Op::Calibrate => {
                let (price, qty) = (c.price(), c.size());
                let fee = if c.chance(160) {
                    price * qty * c.pick(&[0.0005, 0.0006, 0.0002])
                } else {
                    c.number()
                };
                self.note(|| format!("calibrate_fee({price}, {qty}, {fee})"));
                done(self.k.calibrate_fee(price, qty, fee).is_ok())
            }
            Op::SeedCapital => {
                let seed = if c.chance(160) {
                    c.pick(&[1000.0, 1e6, 0.0])
                } else {
                    c.number()
                };
                self.note(|| format!("set_seed_capital({seed})"));
                done(self.k.set_seed_capital(seed).is_ok())
            }
            Op::AdoptAccount => self.adopt(c),
            Op::SetSlot => {
                let slot = self.slot(c, None);
                self.note(|| format!("set_slot({slot:?})"));
                done(self.k.set_slot(slot).is_ok())
            }
            Op::Reconcile => {
                let n = c.below(self.k.max_slots() + 2);
                let slots: Vec<Slot> = (0..n).map(|i| self.slot(c, Some(i as u32))).collect();
                self.note(|| format!("reconcile_from_slots({slots:?})"));
                done(self.k.reconcile_from_slots(slots, c.timestamp()).accepted)
            }
            Op::RoundTrip => {
                self.note(|| "checkpoint and restore".to_owned());
                self.k = Kernel::restore(&self.k.checkpoint()).expect("the kernel's own checkpoint restores");
                Done::Accepted
            }
            Op::Save => {
                if self.saved.len() == 4 {
                    self.saved.remove(0);
                }
                self.saved.push(self.k.checkpoint());
                Done::Accepted
            }
            Op::RestoreOlder => {
                if self.saved.is_empty() {
                    return Done::Accepted;
                }
                let n = c.below(self.saved.len());
                self.note(|| format!("restore saved checkpoint {n}"));
                self.k = Kernel::restore(&self.saved[n]).expect("the kernel's own checkpoint restores");
                Done::Rewound
            }
            Op::RestoreCorrupt => {
                self.restore_corrupt(c);
                Done::Accepted
            }
            Op::Drain => {
                let changes = self.k.drain_changes();
                let mut ids: Vec<u32> = changes.slots.iter().map(|s| s.slot_id).collect();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), changes.slots.len(), "a drain returns each changed slot once");
                assert_eq!(self.k.pending_changes(), 0, "a drain leaves nothing pending");
                Done::Accepted
            }
            Op::Documents => {
                let docs = self.k.drain_documents("fuzz", c.timestamp());
                for (_, _, json) in &docs.slots {
                    serde_json::from_str::<serde_json::Value>(json).expect("slot documents are JSON");
                }
                if let Some((_, json)) = &docs.account {
                    serde_json::from_str::<serde_json::Value>(json).expect("account documents are JSON");
                }
                Done::Accepted
            }
            Op::MarkAllChanged => {
                self.k.mark_all_changed();
                assert_eq!(self.k.pending_changes(), self.k.max_slots() + 1);
                Done::Accepted
            }
            Op::RaiseVersions => {
                let floors: Vec<(u32, u64)> = (0..c.below(3))
                    .map(|_| {
                        let slot = c.below(self.k.max_slots() + 1) as u32;
                        let current = self.k.slot(slot as usize).map_or(0, |s| s.version);
                        (slot, c.version(current))
                    })
                    .collect();
                let account = c.chance(100).then(|| c.version(self.k.account().version));
                self.note(|| format!("raise_versions({floors:?}, {account:?})"));
                self.k.raise_versions(&floors, account);
                // Above the floor, or at the top of u64, where versions stop growing; a
                // floor above MAX_VERSION is no kernel's and is ignored.
                let lifted = |version: u64, floor: u64| version > floor || version == u64::MAX || floor > MAX_VERSION;
                for &(slot, floor) in &floors {
                    if let Some(s) = self.k.slot(slot as usize) {
                        assert!(
                            lifted(s.version, floor),
                            "slot {slot} version {} not above {floor}",
                            s.version
                        );
                    }
                }
                if let Some(floor) = account {
                    assert!(
                        lifted(self.k.account().version, floor),
                        "account version not above {floor}"
                    );
                }
                Done::Accepted
            }
        }
    }

    fn intent(&mut self, intent: Intent) -> Done {
        self.note(|| format!("process_intent({intent:?})"));
        let out = self.k.process_intent(&intent);
        if let Some(o) = &out.order {
            remember(&mut self.clients, &o.venue_client_id);
        }
        done(out.accepted)
    }

    fn enter(&mut self, c: &mut Choices) -> Done {
        let legs = if c.chance(220) {
            c.pick(&LEGS[..4])
        } else {
            c.pick(LEGS)
        };
        let order_type = c.pick(OrderType::ALL);
        let intent = Intent {
            intent_id: self.fresh_id("i"),
            trade_id: self.trade_id(c),
            slot_id: self.slot_arg(c),
            asset: if c.chance(240) {
                c.pick(&ASSETS[..2]).into()
            } else {
                Id::default()
            },
            side: if c.chance(240) {
                c.pick(&[Side::Long, Side::Short])
            } else {
                Side::Flat
            },
            action: Command::Enter,
            reference_price: if c.chance(200) { 100.0 } else { c.number() },
            target_size: c.size(),
            leverage: if c.chance(200) { 1.0 } else { c.number() },
            exit_leg_ratios: legs.to_vec(),
            order_type,
            limit_price: if order_type == OrderType::Limit && c.chance(200) {
                c.price()
            } else {
                c.number()
            },
            stage: c.pick(Stage::ALL),
            timestamp: c.timestamp(),
            metadata: c.metadata(),
            ..Intent::default()
        };
        self.intent(intent)
    }

    fn exit(&mut self, c: &mut Choices) -> Done {
        let slot_id = self.slot_arg(c);
        let held = usize::try_from(slot_id)
            .ok()
            .and_then(|i| self.k.slot(i))
            .map(|s| (s.size, s.trade_id.clone()));
        let (size, trade) = held.unwrap_or((1.0, Id::default()));
        let intent = Intent {
            intent_id: self.fresh_id("x"),
            slot_id,
            action: Command::Exit,
            target_size: match c.below(6) {
                0..=2 => 0.0,
                3 => size,
                4 => size / 2.0,
                _ => c.number(),
            },
            trade_id: match c.below(8) {
                0 => self.trade_id(c),
                1 => trade,
                _ => Id::default(),
            },
            order_type: c.pick(OrderType::ALL),
            reason: c.pick(&["", "TP", "SL"]).to_owned(),
            timestamp: c.timestamp(),
            ..Intent::default()
        };
        self.intent(intent)
    }

    /// The order a client or venue id leads to, as the kernel holds it now.
    fn order_of(&self, client: &str, venue: &str) -> Option<(Order, f64)> {
        let i = *self
            .k
            .client_order_index()
            .get(client)
            .or_else(|| self.k.venue_order_index().get(venue))?;
        let s = self.k.slot(i as usize)?;
        let role = s.order_role(client, venue)?;
        s.order(role).map(|o| (o.clone(), s.tolerance()))
    }

    fn event(&mut self, c: &mut Choices) -> Done {
        let mut live: Vec<Id> = self.k.client_order_index().keys().cloned().collect();
        live.sort();
        let pick_from = |c: &mut Choices, ids: &[Id]| -> Id {
            if ids.is_empty() {
                "nobody".into()
            } else {
                c.pick(ids)
            }
        };
        let (client, venue): (Id, Id) = match c.below(12) {
            0..=5 => (pick_from(c, &live), Id::default()),
            6 | 7 => (pick_from(c, &self.clients), Id::default()),
            8 => (Id::default(), pick_from(c, &self.venue_ids)),
            9 => (pick_from(c, &live), pick_from(c, &self.venue_ids)),
            10 => ("nobody".into(), Id::default()),
            _ => (Id::default(), Id::default()),
        };
        let kind = c.pick(EventKind::ALL);
        let order = self.order_of(&client, &venue);
        let (left, tolerance) = order.as_ref().map_or((1.0, 0.0), |(o, t)| (o.remaining(), *t));
        let size = match c.below(8) {
            0..=2 => left,
            3 => left / 2.0,
            4 => left + tolerance / 2.0,
            5 => left * 1.5 + 1.0,
            6 => c.number(),
            _ => c.size(),
        };
        let venue_order_id = match (kind, venue.is_empty()) {
            (EventKind::OrderAck, true) if c.chance(200) => format!("V{}", c.below(6)).into(),
            (_, true) => order
                .as_ref()
                .map(|(o, _)| o.venue_order_id.clone())
                .unwrap_or_default(),
            _ => venue,
        };
        let event_id = if c.chance(40) {
            format!("e{}", c.below(8)).into()
        } else if c.chance(8) {
            Id::default()
        } else {
            self.fresh_id("e")
        };
        let ev = VenueEvent {
            event_id,
            venue_client_id: client,
            venue_order_id,
            kind,
            price: c.price(),
            size,
            slot_id: if c.chance(230) { -1 } else { self.slot_arg(c) },
            trade_id: if c.chance(230) { Id::default() } else { self.trade_id(c) },
            timestamp: c.timestamp(),
            filled_size: if c.chance(230) { 0.0 } else { c.number() },
            remaining_size: if c.chance(230) { 0.0 } else { c.number() },
            retry_after_ms: if c.chance(230) { 0 } else { c.u64() },
            status: c.chance(30).then(|| c.pick(EventStatus::ALL)),
            reason: c.pick(&["", "post only", "RATE_LIMITED"]).to_owned(),
            raw_payload: c.metadata(),
            metadata: c.metadata(),
            ..VenueEvent::default()
        };
        self.deliver(ev)
    }

    fn deliver(&mut self, ev: VenueEvent) -> Done {
        self.note(|| format!("on_venue_event({ev:?})"));
        let out = self.k.on_venue_event(&ev);
        if out.accepted {
            if matches!(ev.kind, EventKind::Fill | EventKind::PartialFill) {
                remember(&mut self.fill_ids, &ev.event_id);
            }
            self.last_accepted = Some(ev);
        }
        done(out.accepted)
    }

    fn redeliver(&mut self, ev: Option<VenueEvent>) -> Done {
        let Some(ev) = ev else { return Done::Accepted };
        self.note(|| format!("on_venue_event again({ev:?})"));
        let out = self.k.on_venue_event(&ev);
        assert!(
            !out.accepted,
            "an event accepted a moment ago was accepted again: {out:?}"
        );
        Done::Refused
    }

    fn account_event(&mut self, c: &mut Choices) -> Done {
        let kind = c.pick(&[
            AccountEventKind::FillSettled,
            AccountEventKind::AccountUpdate,
            AccountEventKind::FundingFee,
        ]);
        let figure = |c: &mut Choices| {
            if c.chance(160) {
                c.pick(&[1000.0, 0.05, -0.02, 999.9])
            } else {
                c.number()
            }
        };
        let fill_id = match c.below(6) {
            0..=3 if !self.fill_ids.is_empty() => c.pick(&self.fill_ids).to_string(),
            4 => String::new(),
            _ => format!("e{}", c.below(8)),
        };
        let event = AccountEvent {
            kind,
            event_id: match c.below(8) {
                0 => String::new(),
                1 | 2 => format!("a{}", c.below(4)),
                _ => self.fresh_id("a").to_string(),
            },
            timestamp: c.chance(128).then(|| c.timestamp()),
            fill_id,
            fee: c.maybe(figure),
            wallet_balance: c.maybe(figure),
            available_margin: c.maybe(figure),
            used_margin: c.maybe(figure),
            maint_margin: c.maybe(figure),
            amount: c.maybe(figure),
        };
        self.note(|| format!("on_account_event({event:?})"));
        done(self.k.on_account_event(&event).applied)
    }

    fn adopt(&mut self, c: &mut Choices) -> Done {
        let figure = |c: &mut Choices| {
            if c.chance(180) {
                c.pick(&[0.0, 1000.0, -5.0, 1.0])
            } else {
                c.number()
            }
        };
        let p = ProjectedAccount {
            version: c.version(self.k.account().version),
            seed_capital: figure(c),
            k_realized_pnl: figure(c),
            k_fees_paid: figure(c),
            k_funding_net: figure(c),
            e_known: c.chance(128),
            e_wallet_balance: figure(c),
            e_available_margin: figure(c),
            e_used_margin: figure(c),
            e_maint_margin: figure(c),
            event_seq: c.counter(),
            calibration_ratio: if c.chance(180) { 1.0 } else { c.number() },
            calibration_samples: c.counter(),
        };
        self.note(|| format!("adopt_account({p:?})"));
        done(self.k.adopt_account(&p).is_ok())
    }

    /// A slot to write back: one the kernel holds or held (the stuff of
    /// projections and stale stores), a made-up open position, or an empty
    /// slot, with a few fields changed to anything.
    fn slot(&mut self, c: &mut Choices, slot_id: Option<u32>) -> Slot {
        let n = self.k.max_slots();
        let id = slot_id.unwrap_or_else(|| c.below(n) as u32);
        let mut s = match c.below(8) {
            0..=2 => self.k.slot(c.below(n)).cloned().unwrap_or_default(),
            3 if !self.saved.is_empty() => {
                let bytes = c.pick(&self.saved);
                let old = Kernel::restore(&bytes).expect("the kernel's own checkpoint restores");
                old.slot(c.below(old.max_slots())).cloned().unwrap_or_default()
            }
            4 => Slot::empty(id),
            _ => self.made_up_position(c),
        };
        s.slot_id = id;
        for _ in 0..c.below(4) {
            self.mutate(c, &mut s);
        }
        if c.chance(32) {
            // A trade another slot's pending request would bring back: refused.
            let reserved = self
                .rollback_trades()
                .into_iter()
                .find(|(j, _)| *j != s.slot_id as usize);
            if let Some((_, trade)) = reserved {
                s.trade_id = trade.into();
            }
        }
        s
    }

    /// (slot, trade id) of every trade a rate-limit rollback would bring back,
    /// read from the kernel's checkpoint (the kernel does not expose them).
    fn rollback_trades(&self) -> Vec<(usize, String)> {
        let cp: serde_json::Value = rmp_serde::from_slice(&self.checkpoint).expect("checkpoints decode");
        let points = cp["before_request"].as_array().cloned().unwrap_or_default();
        points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let previous = p.get("Enter")?;
                let trade = previous["trade_id"].as_str()?;
                (previous["fsm_state"] != "IDLE" && !trade.is_empty()).then(|| (i, trade.to_owned()))
            })
            .collect()
    }

    fn made_up_position(&mut self, c: &mut Choices) -> Slot {
        let trade = self.trade_id(c);
        let size = c.size();
        let stage = c.pick(&[
            Stage::PositionOpen,
            Stage::EntryWorking,
            Stage::ExitWorking,
            Stage::Closed,
        ]);
        let entry = Order {
            internal_trade_id: trade.clone(),
            venue_client_id: self.fresh_id("R"),
            venue_order_id: if c.chance(128) {
                self.fresh_id("RV")
            } else {
                Id::default()
            },
            side: Side::Long,
            intended_size: size,
            filled_size: if stage == Stage::EntryWorking { size / 2.0 } else { size },
            average_fill_price: 100.0,
            status: OrderStatus::Acked,
            ..Order::default()
        };
        let exit_ids = (self.fresh_id("RX"), self.fresh_id("RXV"));
        let exit = (stage == Stage::ExitWorking).then(|| Order {
            venue_client_id: exit_ids.0,
            venue_order_id: if entry.venue_order_id.is_empty() {
                Id::default()
            } else {
                exit_ids.1
            },
            side: Side::Short,
            intended_size: size,
            filled_size: 0.0,
            average_fill_price: 0.0,
            status: OrderStatus::Acked,
            ..entry.clone()
        });
        Slot {
            trade_id: trade,
            asset: c.pick(&ASSETS[..2]).into(),
            side: Side::Long,
            entry_price: 100.0,
            size: if stage == Stage::Closed { 0.0 } else { entry.filled_size },
            initial_size: size,
            leverage: 1.0,
            exit_leg_ratios: c.pick(&LEGS[..4]).to_vec(),
            active_entry_order: Some(entry),
            active_exit_order: exit,
            closed: stage == Stage::Closed,
            fsm_state: stage,
            ..Slot::default()
        }
    }

    fn mutate(&mut self, c: &mut Choices, s: &mut Slot) {
        fn pick_order<'s>(c: &mut Choices, s: &'s mut Slot) -> Option<&'s mut Order> {
            if c.chance(128) {
                s.active_entry_order.as_mut()
            } else {
                s.active_exit_order.as_mut()
            }
        }
        match c.below(20) {
            0 => s.slot_id = c.pick(&[0, 1, 2, 3, 4, u32::MAX]),
            1 => s.trade_id = self.trade_id(c),
            2 => s.size = c.number(),
            3 => s.initial_size = c.number(),
            4 => s.entry_price = c.number(),
            5 => s.fsm_state = c.pick(Stage::ALL),
            6 => s.closed = !s.closed,
            7 => s.exit_leg_ratios = c.pick(LEGS).to_vec(),
            8 => s.active_leg_index = c.pick(&[0, 1, 2, 9, 63, 64, u32::MAX]),
            9 => s.active_entry_order = None,
            10 => s.active_exit_order = None,
            11 => {
                if let Some(o) = pick_order(c, s) {
                    o.filled_size = c.number();
                }
            }
            12 => {
                if let Some(o) = pick_order(c, s) {
                    o.intended_size = c.number();
                }
            }
            13 => {
                let id = if self.clients.is_empty() || c.chance(64) {
                    Id::default()
                } else {
                    c.pick(&self.clients)
                };
                if let Some(o) = pick_order(c, s) {
                    o.venue_client_id = id;
                }
            }
            14 => {
                let id = match c.below(3) {
                    0 if !self.venue_ids.is_empty() => c.pick(&self.venue_ids),
                    1 => format!("V{}", c.below(6)).into(),
                    _ => Id::default(),
                };
                if let Some(o) = pick_order(c, s) {
                    o.venue_order_id = id;
                }
            }
            15 => s.last_mark_price = c.number(),
            16 => s.version = c.version(s.version),
            17 => s.side = c.pick(Side::ALL),
            18 if c.chance(128) => s.asset = c.pick(ASSETS).into(),
            18 => {
                let metadata = c.metadata();
                match pick_order(c, s) {
                    Some(o) => o.metadata = metadata,
                    None => s.metadata = metadata,
                }
            }
            _ => {
                s.unrealized_pnl = c.number();
                s.realized_pnl = c.number();
            }
        }
    }

    /// A checkpoint with bytes changed, cut short or spliced: `restore` must
    /// refuse it or give a kernel whose invariants hold, and never panic.
    fn restore_corrupt(&mut self, c: &mut Choices) {
        let mut bytes = match self.saved.last() {
            Some(b) if c.chance(128) => b.clone(),
            _ => self.k.checkpoint(),
        };
        for _ in 0..1 + c.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = (c.u64() % bytes.len() as u64) as usize;
            match c.below(4) {
                0 => bytes[at] ^= 1 << c.below(8),
                1 => bytes[at] = c.byte(),
                2 => bytes.truncate(at),
                _ => {
                    let b = c.byte();
                    bytes.insert(at, b);
                }
            }
        }
        self.note(|| format!("restore corrupted checkpoint of {} bytes", bytes.len()));
        if let Ok(restored) = Kernel::restore(&bytes) {
            let broken = invariants::check(&restored)
                .err()
                .or_else(|| invariants::check_round_trip(&restored).err());
            if let Some(e) = broken {
                panic!("a corrupted checkpoint restored into a broken kernel: {e}");
            }
        }
    }
}
