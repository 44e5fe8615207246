//! Arbitrary operation sequences: no panic, and the kernel's invariants hold after every step.
//!
//! The operations come from the fuzz crate's interpreter (native/fuzz/src/ops.rs,
//! included as it is), driven here by random bytes on stable Rust; `cargo fuzz`
//! drives the same interpreter coverage-guided (see native/fuzz). The checks are
//! `dita_kernel::invariants`, plus: a refused call changes nothing, versions
//! never go down, an event just accepted is refused when sent again.
//!
//! PROPTEST_CASES sets how many inputs run (default 64, a few seconds in a debug build).
//!
//! The tests at the end are regressions of bugs this fuzzing found, each with
//! its smallest repro.

#[allow(dead_code)]
#[path = "../../fuzz/src/ops.rs"]
mod ops;

use dita_kernel::invariants;
use dita_kernel::*;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        ops::run(&bytes);
    }
}

#[test]
fn a_long_input_makes_many_steps() {
    // A step reads a handful of bytes: an input of a few KB is hundreds of
    // steps deep, which is what reaches exits, legs and rollbacks.
    let bytes: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let steps = ops::run(&bytes);
    assert!(steps > 200, "only {steps} steps from 4000 bytes");
}

// ----- bugs found by fuzzing, pinned until the kernel is fixed -------------------

fn open_slot(slot_id: u32, trade: &str, entry: Order, exit: Option<Order>) -> Slot {
    Slot {
        slot_id,
        trade_id: trade.into(),
        asset: "BTC".into(),
        side: Side::Long,
        entry_price: 100.0,
        size: 1.0,
        initial_size: 1.0,
        leverage: 1.0,
        fsm_state: if exit.is_some() {
            Stage::ExitWorking
        } else {
            Stage::PositionOpen
        },
        active_entry_order: Some(entry),
        active_exit_order: exit,
        ..Slot::empty(slot_id)
    }
}

fn order(client: &str, venue: &str, intended: f64, filled: f64) -> Order {
    Order {
        venue_client_id: client.into(),
        venue_order_id: venue.into(),
        side: Side::Long,
        intended_size: intended,
        filled_size: filled,
        average_fill_price: if filled > 0.0 { 100.0 } else { 0.0 },
        status: OrderStatus::Acked,
        ..Order::default()
    }
}

/// Was a bug: u64 counters at their top wrap to 0 on the next change (a panic under
/// overflow checks): `raise_versions` computes floor + 1, every change adds 1 to
/// a slot's or the account's version, and the account's event_seq and
/// calibration_samples, which `adopt_account` takes from a projected document,
/// add 1 per account event and calibration. Versions readers see then go down.
/// Repro: raise_versions(&[(0, u64::MAX)], None), or adopt_account with
/// event_seq u64::MAX and then any account event. Saturating versions was a
/// bug of its own: a floor planted at u64::MAX froze the key's projection (the
/// writer drops a version not above the last written), so floors above
/// MAX_VERSION are now ignored.
#[test]
fn counters_at_the_top_of_u64_do_not_wrap() {
    let result = std::panic::catch_unwind(|| {
        let mut k = Kernel::new(2).unwrap();
        k.raise_versions(&[(0, u64::MAX - 1)], Some(u64::MAX - 1));
        k.set_seed_capital(5.0).unwrap();
        k.raise_versions(&[(1, u64::MAX)], None);
        let versions = (
            k.slot(0).unwrap().version,
            k.slot(1).unwrap().version,
            k.account().version,
        );
        let mut adopted = Kernel::new(1).unwrap();
        let projected = account::ProjectedAccount {
            version: 1,
            seed_capital: 1000.0,
            k_realized_pnl: 0.0,
            k_fees_paid: 0.0,
            k_funding_net: 0.0,
            e_known: false,
            e_wallet_balance: 0.0,
            e_available_margin: 0.0,
            e_used_margin: 0.0,
            e_maint_margin: 0.0,
            event_seq: u64::MAX,
            calibration_ratio: 1.0,
            calibration_samples: u64::MAX,
        };
        adopted.adopt_account(&projected).unwrap();
        adopted.on_account_event(&funding("f1"));
        adopted
            .set_exchange_config(&ExchangeConfigUpdate {
                taker_rate: Some(0.0005),
                ..ExchangeConfigUpdate::default()
            })
            .unwrap();
        adopted.calibrate_fee(100.0, 1.0, 0.05).unwrap();
        let a = adopted.account();
        (versions, (a.event_seq, a.calibration_samples))
    });
    let (versions, counts) = result.expect("no overflow panic");
    assert_eq!(
        versions,
        (0, 0, 1),
        "floors above MAX_VERSION are ignored, never raised to (they would freeze the version at the top)"
    );
    assert_eq!(
        counts,
        (u64::MAX, u64::MAX),
        "event_seq and calibration_samples saturate"
    );
}

fn funding(event_id: &str) -> account::AccountEvent {
    account::AccountEvent {
        kind: account::AccountEventKind::FundingFee,
        event_id: event_id.into(),
        timestamp: None,
        fill_id: String::new(),
        fee: None,
        wallet_balance: None,
        available_margin: None,
        used_margin: None,
        maint_margin: None,
        amount: Some(-0.5),
    }
}

/// Was a bug: `set_slot` (and `reconcile_from_slots`, `restore`, through
/// validate::slot_set, which skips ids repeated within one slot) accepts a
/// slot whose entry and exit orders carry the same venue order id, a state
/// the kernel's own event path refuses ("an order id maps to one order").
/// Replacing the exit order then drops the id from the index while the entry
/// order still holds it, another slot may take it, and the kernel's own
/// checkpoint no longer restores.
#[test]
fn one_order_id_on_both_orders_of_a_slot_is_refused() {
    let mut k = Kernel::new(2).unwrap();
    let shared = open_slot(
        0,
        "t0",
        order("c-entry", "V", 1.0, 1.0),
        Some(order("c-exit", "V", 1.0, 0.0)),
    );
    let accepted = k.set_slot(shared).is_ok();
    if accepted {
        // What follows once it is accepted: the exit is cancelled and sent again...
        assert!(
            k.on_venue_event(&testkit::event("x", "c-exit", EventKind::Cancelled))
                .accepted
        );
        assert!(k.process_intent(&testkit::exit(0)).accepted);
        // ...the index has lost "V" though slot 0's entry order holds it, and slot 1 may take it.
        let second = open_slot(1, "t1", order("c-other", "V", 1.0, 1.0), None);
        let taken = k.set_slot(second).is_ok();
        let restores = Kernel::restore(&k.checkpoint()).is_ok();
        panic!(
            "a slot with one venue order id on both orders was accepted; then \
             another slot took the id: {taken}; the kernel's checkpoint restores: {restores}"
        );
    }
    assert_eq!(invariants::check_with_round_trip(&k), Ok(()));
}

/// Was a bug: an equity just above zero makes the account's leverage (notional /
/// equity) infinite; the account document then carries `"leverage": null`,
/// which projections/schemas/account.schema.json refuses (a number, at least 0).
/// Repro: set_seed_capital(f64::MIN_POSITIVE), then hold any open position.
#[test]
fn leverage_stays_finite_on_a_tiny_equity() {
    let mut k = Kernel::new(1).unwrap();
    k.set_seed_capital(f64::MIN_POSITIVE).unwrap();
    k.set_slot(open_slot(0, "t0", order("c", "", 1.0, 1.0), None)).unwrap();
    let leverage = k.account().leverage;
    assert!(leverage.is_finite(), "leverage {leverage}");
    let docs = k.drain_documents("k", Timestamp(0));
    let account: serde_json::Value = serde_json::from_str(&docs.account.unwrap().1).unwrap();
    assert!(
        account["leverage"].is_number(),
        "leverage in the document: {}",
        account["leverage"]
    );
}

/// Was a bug: prices and sizes are each accepted up to MAX_MAGNITUDE (1e15), but
/// validate::slot refuses a slot whose unrealized or realized PnL (a product of
/// the two) or whose size (a target plus the fill tolerance) passes 1e15. The
/// kernel gets there by accepted calls, and then `restore` refuses its own
/// checkpoint (a restart fails) and reconcile refuses its own projected slots.
/// Repro: ENTER 2, FILL 2 at 1.0, mark_price at 1e15 (unrealized ~2e15).
#[test]
fn a_kernel_restores_its_own_checkpoint_after_a_big_move() {
    // Whichever way it is fixed (wider bounds on restore, or refusing the call
    // that would pass them), what the kernel accepts it must restore.
    let filled = |size: f64, fill: f64, price: f64| {
        let mut k = Kernel::new(1).unwrap();
        let out = k.process_intent(&testkit::enter(0, "t0", Side::Long, size));
        if let Some(order) = out.order {
            assert!(k.submitted(0, Timestamp(1)).accepted);
            k.on_venue_event(&testkit::fill(
                "f",
                &order.venue_client_id,
                EventKind::Fill,
                price,
                fill,
            ));
        }
        k
    };
    let mut marked = filled(2.0, 2.0, 1.0);
    let _ = marked.mark_price("BTC-PERP", 1e15);
    assert_eq!(
        invariants::check_with_round_trip(&marked),
        Ok(()),
        "after a mark at 1e15"
    );
    // A fill within the tolerance of a 1e15 target leaves a size just past 1e15.
    let big = filled(1e15, 1e15 + 1e5, 100.0);
    assert_eq!(
        invariants::check_with_round_trip(&big),
        Ok(()),
        "after a fill within tolerance"
    );
}

/// Was a bug: `calibrate_fee` takes ratio = actual_fee / expected_fee with no bound.
/// A tiny expected fee (a tiny price, quantity or rate, each accepted) gives an
/// infinite ratio; the next fill's predicted fee is then infinite, so K is -inf,
/// and a FILL_SETTLED for that fill makes it NaN (inf - inf).
/// Repro: taker_rate 0.0005, calibrate_fee(1e-300, 1.0, 1e6), then any fill.
#[test]
fn a_calibration_against_a_tiny_expected_fee_keeps_k_finite() {
    let mut k = Kernel::new(1).unwrap();
    k.set_exchange_config(&ExchangeConfigUpdate {
        taker_rate: Some(0.0005),
        ..ExchangeConfigUpdate::default()
    })
    .unwrap();
    if let Ok(c) = k.calibrate_fee(1e-300, 1.0, 1e6) {
        assert!(
            c.calibration_ratio.is_finite(),
            "calibration ratio {}",
            c.calibration_ratio
        );
    }
    let out = k.process_intent(&testkit::enter(0, "t0", Side::Long, 1.0));
    let cid = out.order.expect("entered").venue_client_id;
    assert!(k.submitted(0, Timestamp(1)).accepted);
    assert!(
        k.on_venue_event(&testkit::fill("f", &cid, EventKind::Fill, 100.0, 1.0))
            .accepted
    );
    let settle = account::AccountEvent {
        kind: account::AccountEventKind::FillSettled,
        event_id: "s".into(),
        timestamp: None,
        fill_id: "f".into(),
        fee: Some(0.05),
        wallet_balance: None,
        available_margin: None,
        used_margin: None,
        maint_margin: None,
        amount: None,
    };
    assert!(k.on_account_event(&settle).applied);
    assert_eq!(invariants::check(&k), Ok(()), "K {}", k.account().k_capital);
}

/// Was a bug: set_exchange_config accepts any lot_step or tick_size of at least 0,
/// and ExchangeConfig::fee rounds with (value / step).round() * step. For a
/// step just above zero the quotient overflows: a quantity rounds to inf, a
/// price far below its tick to 0, and the predicted fee is inf or NaN (inf * 0),
/// so K is NaN after one fill. A calibration against such a config gets a NaN
/// ratio the same way.
/// Repro: taker_rate 0.0005 and lot_step 5e-324, then any fill.
#[test]
fn a_tiny_lot_step_keeps_fees_finite() {
    let mut k = Kernel::new(1).unwrap();
    let config = ExchangeConfigUpdate {
        taker_rate: Some(0.0005),
        lot_step: Some(5e-324),
        ..ExchangeConfigUpdate::default()
    };
    if k.set_exchange_config(&config).is_err() {
        return; // refusing such a step is a fix too
    }
    let out = k.process_intent(&testkit::enter(0, "t0", Side::Long, 1.0));
    let cid = out.order.expect("entered").venue_client_id;
    assert!(k.submitted(0, Timestamp(1)).accepted);
    let fill = k.on_venue_event(&testkit::fill("f", &cid, EventKind::Fill, 100.0, 1.0));
    assert!(fill.accepted);
    assert_eq!(
        invariants::check(&k),
        Ok(()),
        "predicted fee {:?}",
        fill.details.get("predicted_fee")
    );
}

/// Was a bug: a fill may pass its order's intended size by the slot's tolerance,
/// SIZE_EPSILON × initial_size, and validate::order grants the same. A slot
/// written (set_slot, reconcile) with an initial_size far above its entry
/// order's intended size lets a fill overfill that order by much more than
/// the order's own tolerance; when the entry fills, initial_size becomes the
/// position's size, the tolerance shrinks, and the kernel holds a slot that
/// validate::slot refuses: its own checkpoint no longer restores.
/// Repro: set_slot(ENTRY_WORKING, initial_size 1e7, entry 0.25 of 0.5 filled),
/// then a FILL of 0.255.
#[test]
fn an_entry_cannot_overfill_on_a_big_initial_size() {
    let mut k = Kernel::new(1).unwrap();
    let slot = Slot {
        size: 0.25,
        initial_size: 1e7,
        fsm_state: Stage::EntryWorking,
        ..open_slot(0, "t0", order("c", "", 0.5, 0.25), None)
    };
    if k.set_slot(slot).is_err() {
        return; // refusing such a slot is a fix too
    }
    let fill = k.on_venue_event(&testkit::fill("f", "c", EventKind::Fill, 100.0, 0.255));
    assert_eq!(
        invariants::check_with_round_trip(&k),
        Ok(()),
        "fill accepted: {}, slot {:?}",
        fill.accepted,
        k.slot(0)
    );
}

/// Was a bug: an intent's (or event's, or slot's) metadata is taken at any depth,
/// and the checkpoint writes it, but `restore` reads msgpack with rmp_serde's
/// default depth limit (1024): metadata nested past it makes the kernel's own
/// checkpoint fail with "depth limit exceeded" (a restart fails).
/// Repro: ENTER with metadata {"a": {"a": ... }} 1,100 deep, then restore(checkpoint()).
#[test]
fn deeply_nested_metadata_still_restores() {
    // Debug builds recurse through nested values in big frames: room for them,
    // so the test is about the depth limit, not about this thread's stack.
    let run = || {
        let mut k = Kernel::new(1).unwrap();
        let deep = (0..1_100).fold(serde_json::Value::Null, |inner, _| serde_json::json!({ "a": inner }));
        let intent = Intent {
            metadata: deep.as_object().expect("an object").clone(),
            ..testkit::enter(0, "t0", Side::Long, 1.0)
        };
        let out = k.process_intent(&intent);
        assert_eq!(
            invariants::check_with_round_trip(&k),
            Ok(()),
            "intent accepted: {}",
            out.accepted
        );
    };
    let thread = std::thread::Builder::new().stack_size(256 << 20).spawn(run).unwrap();
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Was a bug: an ENTER into a slot holding a (closed) trade keeps that trade id
/// reserved, because a RATE_LIMITED answer rolls the slot back to it; ENTER
/// checks the reservation, but set_slot and reconcile_from_slots do not. If
/// another slot is written with that trade id meanwhile, the rollback puts the
/// id in two slots: the trade index points at one of them, and the kernel's
/// checkpoint no longer restores.
/// Repro: slot 0 holds t3 (closed); ENTER t9 into slot 0; set_slot(slot 3 with
/// t3); RATE_LIMITED for t9's order.
#[test]
fn a_rollback_cannot_bring_back_a_trade_another_slot_holds() {
    let mut k = Kernel::new(4).unwrap();
    let closed = Slot {
        fsm_state: Stage::Closed,
        closed: true,
        size: 0.0,
        ..open_slot(0, "t3", order("c-old", "", 1.0, 1.0), None)
    };
    k.set_slot(closed).unwrap();
    let out = k.process_intent(&testkit::enter(0, "t9", Side::Long, 1.0));
    let cid = out.order.expect("a closed slot takes an ENTER").venue_client_id;
    let working = Slot {
        fsm_state: Stage::EntryWorking,
        size: 0.5,
        ..open_slot(3, "t3", order("c-new", "", 1.0, 0.5), None)
    };
    let taken = k.set_slot(working).is_ok();
    let rolled_back = k
        .on_venue_event(&testkit::event("e0", &cid, EventKind::RateLimited))
        .accepted;
    assert_eq!(
        invariants::check_with_round_trip(&k),
        Ok(()),
        "slot 3 took t3: {taken}; the rate limit rolled slot 0 back: {rolled_back}"
    );
}

/// Was a fuzz finding: `restore` checked a checkpoint's slots but took its
/// account as it came, so corrupted bytes (calibration_ratio -inf) restored
/// into a kernel whose next fill made K NaN.
#[test]
fn a_checkpoint_with_a_broken_account_is_refused_by_name() {
    let bytes = Kernel::new(2).unwrap().checkpoint();
    let key = b"calibration_ratio";
    let at = bytes.windows(key.len()).position(|w| w == key).expect("named fields") + key.len();
    for (bad, why) in [(f64::NEG_INFINITY, "finite"), (f64::NAN, "finite"), (2e6, "within")] {
        let mut corrupted = bytes.clone();
        assert_eq!(corrupted[at], 0xcb, "calibration_ratio is a msgpack f64");
        corrupted[at + 1..at + 9].copy_from_slice(&bad.to_be_bytes());
        let Err(e) = Kernel::restore(&corrupted) else {
            panic!("a checkpoint with calibration_ratio {bad} restored");
        };
        assert_eq!(e.field, "checkpoint.account.calibration_ratio");
        assert!(e.reason.contains(why), "{e}");
    }
    assert!(Kernel::restore(&bytes).is_ok());
}
