//! The slot lifecycle (docs/ARCHITECTURE.md, "Slot lifecycle"), end to end through
//! the kernel's public calls.

use dita_kernel::testkit::{ack, cancel, enter, enter_legs, event, exit, fill};
use dita_kernel::*;

fn kernel(slots: usize) -> Kernel {
    Kernel::new(slots).unwrap()
}

/// ENTER, submit and ACK a trade; returns the entry order's client id.
fn working_entry(k: &mut Kernel, slot: i64, trade: &str, side: Side, size: f64) -> String {
    let out = k.process_intent(&enter(slot, trade, side, size));
    assert!(out.accepted, "{out:?}");
    let cid = out.order.unwrap().venue_client_id;
    assert!(k.submitted(slot, Timestamp(1)).accepted);
    assert!(
        k.on_venue_event(&ack(&format!("{trade}/ack"), &cid, &format!("V-{trade}")))
            .accepted
    );
    cid.to_string()
}

fn open_position(k: &mut Kernel, slot: i64, trade: &str, side: Side, size: f64, price: f64) -> String {
    let cid = working_entry(k, slot, trade, side, size);
    let out = k.on_venue_event(&fill(&format!("{trade}/fill"), &cid, EventKind::Fill, price, size));
    assert_eq!(out.state, Stage::PositionOpen, "{out:?}");
    cid
}

#[test]
fn entry_goes_requested_sent_working_open() {
    let mut k = kernel(4);
    let out = k.process_intent(&enter(1, "t1", Side::Long, 2.0));
    assert_eq!((out.accepted, out.state), (true, Stage::OrderRequested));
    assert_eq!(out.transitions[0].prev_state, Stage::Idle);
    let cid = out.order.unwrap().venue_client_id;
    assert_eq!(k.submitted(1, Timestamp(1)).state, Stage::OrderSent);
    assert_eq!(k.on_venue_event(&ack("a", &cid, "V1")).state, Stage::EntryWorking);
    let p = k.on_venue_event(&fill("f1", &cid, EventKind::PartialFill, 100.0, 0.5));
    assert_eq!(p.state, Stage::EntryWorking);
    let f = k.on_venue_event(&fill("f2", &cid, EventKind::Fill, 110.0, 1.5));
    assert_eq!(f.state, Stage::PositionOpen);
    let s = k.slot(1).unwrap();
    assert_eq!(s.size, 2.0);
    assert!((s.entry_price - 107.5).abs() < 1e-12, "size-weighted entry price");
    assert_eq!(k.venue_order_index().get("V1"), Some(&1));
    assert_eq!(k.trade_index().get("t1"), Some(&1));
}

#[test]
fn multi_leg_exit_realizes_pnl_and_closes_on_the_last_leg() {
    let mut k = kernel(2);
    open_position(&mut k, 0, "t", Side::Short, 10.0, 100.0);
    let mut legs = Vec::new();
    k.process_intent(&Intent {
        exit_leg_ratios: vec![1.0],
        ..exit(0)
    });
    // exit_leg_ratios live on the trade; this one was entered with a single leg
    let o = k.slot(0).unwrap().active_exit_order.clone().unwrap();
    assert_eq!(o.intended_size, 10.0);
    assert_eq!(o.side, Side::Long, "a SHORT is exited by buying");
    legs.push(o);
    let out = k.on_venue_event(&fill("x1", &legs[0].venue_client_id, EventKind::Fill, 90.0, 10.0));
    assert_eq!(out.state, Stage::Closed);
    let s = k.slot(0).unwrap();
    assert!(
        (s.realized_pnl - 100.0).abs() < 1e-9,
        "short from 100 covered at 90 on 10: +100"
    );
    assert!(s.closed && s.close_reason == "EXIT" && s.size == 0.0);
    assert_eq!(k.account().k_realized_pnl, s.realized_pnl);

    let mut k = kernel(1);
    k.process_intent(&enter_legs(0, "m", Side::Long, 10.0, &[0.5, 0.3, 0.2]));
    let cid = k.slot(0).unwrap().active_entry_order.clone().unwrap().venue_client_id;
    k.submitted(0, Timestamp(1));
    k.on_venue_event(&fill("e", &cid, EventKind::Fill, 100.0, 10.0));
    let mut sizes = Vec::new();
    for leg in 0..3 {
        let out = k.process_intent(&exit(0));
        let o = out.order.unwrap();
        sizes.push(o.intended_size);
        k.on_venue_event(&ack(&format!("xa{leg}"), &o.venue_client_id, ""));
        let out = k.on_venue_event(&fill(
            &format!("xf{leg}"),
            &o.venue_client_id,
            EventKind::Fill,
            101.0,
            o.intended_size,
        ));
        assert_eq!(out.state, if leg < 2 { Stage::PositionOpen } else { Stage::Closed });
    }
    assert!(
        (sizes[0] - 5.0).abs() < 1e-9 && (sizes[1] - 3.0).abs() < 1e-9 && (sizes[2] - 2.0).abs() < 1e-9,
        "{sizes:?}"
    );
    assert!((k.slot(0).unwrap().realized_pnl - 10.0).abs() < 1e-9);
}

#[test]
fn cancel_with_nothing_filled_closes_and_with_a_fill_opens() {
    let mut k = kernel(2);
    let cid = working_entry(&mut k, 0, "a", Side::Long, 1.0);
    let out = k.process_intent(&cancel(0));
    assert!(out.accepted && out.order.as_ref().unwrap().status == OrderStatus::CancelRequested);
    let out = k.on_venue_event(&event("c", &cid, EventKind::Cancelled));
    assert_eq!(out.state, Stage::Closed);
    assert_eq!(k.slot(0).unwrap().close_reason, "CANCELLED");
    assert_eq!(k.free_slot(), Some(0), "a CLOSED slot is free");

    let cid = working_entry(&mut k, 1, "b", Side::Long, 4.0);
    k.on_venue_event(&fill("p", &cid, EventKind::PartialFill, 10.0, 1.0));
    let out = k.on_venue_event(&event("x", &cid, EventKind::Expired));
    assert_eq!(out.state, Stage::PositionOpen);
    assert_eq!(k.slot(1).unwrap().initial_size, 1.0, "the position is what filled");
}

#[test]
fn rejects_close_entries_and_reopen_exits() {
    let mut k = kernel(2);
    let cid = working_entry(&mut k, 0, "a", Side::Long, 1.0);
    let out = k.on_venue_event(&event("r", &cid, EventKind::Rejected));
    assert_eq!(
        (out.state, k.slot(0).unwrap().close_reason.as_str()),
        (Stage::Closed, "REJECTED")
    );

    open_position(&mut k, 1, "b", Side::Long, 1.0, 50.0);
    let o = k.process_intent(&exit(1)).order.unwrap();
    let out = k.on_venue_event(&event("xr", &o.venue_client_id, EventKind::Rejected));
    assert_eq!(out.state, Stage::PositionOpen);
}

#[test]
fn rate_limits_roll_back_to_the_slot_before_the_intent() {
    let mut k = kernel(1);
    open_position(&mut k, 0, "old", Side::Long, 1.0, 10.0);
    let o = k.process_intent(&exit(0)).order.unwrap();
    let x = k.on_venue_event(&fill("xf", &o.venue_client_id, EventKind::Fill, 11.0, 1.0));
    assert_eq!(x.state, Stage::Closed);
    let before = k.slot(0).unwrap().clone();

    let out = k.process_intent(&enter(0, "new", Side::Short, 3.0));
    let cid = out.order.unwrap().venue_client_id;
    let rl = VenueEvent {
        retry_after_ms: 250,
        ..event("rl", &cid, EventKind::RateLimited)
    };
    let out = k.on_venue_event(&rl);
    assert_eq!(out.diagnostic_code, DiagnosticCode::RateLimited);
    assert_eq!(out.details.get("retry_after_ms"), Some(&Detail::Integer(250)));
    let after = k.slot(0).unwrap();
    assert_eq!(&*after.trade_id, "old", "the closed trade is back, readable");
    assert_eq!(
        Slot {
            version: 0,
            seen_event_ids: Default::default(),
            ..after.clone()
        },
        Slot {
            version: 0,
            seen_event_ids: Default::default(),
            ..before
        }
    );
    assert!(
        !k.client_order_index().contains_key(&cid),
        "the refused order is unindexed"
    );
    assert!(!k.trade_index().contains_key("new"));
}

#[test]
fn a_rate_limited_exit_brings_back_the_previous_leg_order_and_its_ids() {
    let mut k = kernel(1);
    k.process_intent(&enter_legs(0, "t", Side::Long, 2.0, &[0.5, 0.5]));
    let cid = k.slot(0).unwrap().active_entry_order.clone().unwrap().venue_client_id;
    k.submitted(0, Timestamp(1));
    k.on_venue_event(&fill("e", &cid, EventKind::Fill, 100.0, 2.0));
    let first = k.process_intent(&exit(0)).order.unwrap().venue_client_id;
    k.submitted(0, Timestamp(1));
    k.on_venue_event(&ack("x1a", &first, "V-x1"));
    k.on_venue_event(&fill("x1f", &first, EventKind::Fill, 101.0, 1.0));
    let leg_one = k.slot(0).unwrap().active_exit_order.clone().unwrap();

    let second = k.process_intent(&exit(0)).order.unwrap().venue_client_id;
    let out = k.on_venue_event(&event("x2rl", &second, EventKind::RateLimited));
    assert_eq!(
        (out.diagnostic_code, out.state),
        (DiagnosticCode::RateLimited, Stage::PositionOpen)
    );
    assert_eq!(k.slot(0).unwrap().active_exit_order.as_ref(), Some(&leg_one));
    assert_eq!(
        k.client_order_index().get(&first),
        Some(&0),
        "the first leg's ids route again"
    );
    assert_eq!(k.venue_order_index().get("V-x1"), Some(&0));
    assert!(
        !k.client_order_index().contains_key(&second),
        "the refused leg is unindexed"
    );
}

#[test]
fn refusals_change_nothing() {
    let mut k = kernel(2);
    let cid = working_entry(&mut k, 0, "a", Side::Long, 1.0);
    let cp = k.checkpoint();
    let cases = [
        (
            k.on_venue_event(&fill("o", &cid, EventKind::PartialFill, 10.0, 1.5)),
            DiagnosticCode::Overfill,
        ),
        (
            k.on_venue_event(&fill("u", "nobody", EventKind::Fill, 10.0, 1.0)),
            DiagnosticCode::UnknownOrder,
        ),
        (
            k.on_venue_event(&ack("a/ack", &cid, "V-a")),
            DiagnosticCode::DuplicateEvent,
        ),
        (
            k.on_venue_event(&ack("a2", &cid, "V-a")),
            DiagnosticCode::InvalidTransition,
        ),
        (
            k.on_venue_event(&fill("nan", &cid, EventKind::Fill, f64::NAN, 1.0)),
            DiagnosticCode::InvalidEvent,
        ),
        (
            k.process_intent(&enter(0, "b", Side::Long, 1.0)),
            DiagnosticCode::SlotBusy,
        ),
        (
            k.process_intent(&enter(1, "a", Side::Long, 1.0)),
            DiagnosticCode::InvalidIntent,
        ),
        (
            k.process_intent(&enter(7, "c", Side::Long, 1.0)),
            DiagnosticCode::InvalidSlotId,
        ),
        (
            k.process_intent(&enter(1, "c", Side::Long, f64::INFINITY)),
            DiagnosticCode::InvalidIntent,
        ),
        (
            k.process_intent(&enter(1, "c", Side::Flat, 1.0)),
            DiagnosticCode::InvalidIntent,
        ),
        (
            k.process_intent(&enter_legs(1, "c", Side::Long, 1.0, &[0.5, 0.6])),
            DiagnosticCode::InvalidIntent,
        ),
        (k.process_intent(&exit(1)), DiagnosticCode::InvalidTransition),
        (k.process_intent(&exit(0)), DiagnosticCode::SlotBusy),
    ];
    for (out, code) in cases {
        assert_eq!(out.diagnostic_code, code, "{out:?}");
        assert!(!out.accepted && out.transitions.is_empty());
        assert!(out.details.get("reason").is_some(), "every refusal says why: {out:?}");
    }
    assert_eq!(k.checkpoint(), cp, "no refusal changed the kernel");
}

#[test]
fn invalid_input_names_field_value_and_reason() {
    let mut k = kernel(1);
    let out = k.process_intent(&enter(0, "c", Side::Long, -2.0));
    assert_eq!(out.details.get("field"), Some(&Detail::Text("target_size".into())));
    assert_eq!(out.details.get("value"), Some(&Detail::Text("-2".into())));
    assert!(matches!(out.details.get("reason"), Some(Detail::Text(r)) if r.contains("at least 0")));
}

#[test]
fn mode_gates_intents_and_transitions_record_it() {
    let mut k = kernel(2);
    open_position(&mut k, 0, "a", Side::Long, 1.0, 10.0);
    k.set_control(Control {
        mode: Mode::ReduceOnly,
        verbosity: Verbosity::Verbose,
        journal: false,
    });
    assert_eq!(
        k.process_intent(&enter(1, "b", Side::Long, 1.0)).diagnostic_code,
        DiagnosticCode::ModeBlocked
    );
    let out = k.process_intent(&exit(0));
    assert!(out.accepted);
    assert_eq!(out.transitions[0].control_mode, Mode::ReduceOnly);
    assert_eq!(out.transitions[0].control_verbosity, Verbosity::Verbose);
    k.set_control(Control {
        mode: Mode::Halted,
        ..k.control()
    });
    assert!(k.process_intent(&cancel(0)).accepted, "CANCEL passes a halt");
    let o = k.slot(0).unwrap().active_exit_order.clone().unwrap();
    assert!(
        k.on_venue_event(&event("c", &o.venue_client_id, EventKind::Cancelled))
            .accepted,
        "venue events pass a halt"
    );
    assert_eq!(k.process_intent(&exit(0)).diagnostic_code, DiagnosticCode::ModeBlocked);
}

#[test]
fn verbosity_sets_detail() {
    let mut k = kernel(1);
    k.set_control(Control {
        verbosity: Verbosity::Quiet,
        ..Control::default()
    });
    let quiet = k.process_intent(&enter(0, "a", Side::Long, 1.0));
    assert!(quiet.details.is_empty() && quiet.transitions[0].details.is_empty());
    let mut k = kernel(1);
    k.set_control(Control {
        verbosity: Verbosity::Trace,
        ..Control::default()
    });
    let trace = k.process_intent(&enter(0, "a", Side::Long, 1.0));
    assert!(trace.details.get("k_capital").is_some() && trace.details.get("size").is_some());
}

#[test]
fn fees_are_predicted_then_settled_and_k_tracks_e() {
    let mut k = kernel(1);
    k.set_seed_capital(1000.0).unwrap();
    k.set_exchange_config(&ExchangeConfigUpdate {
        taker_rate: Some(0.001),
        ..Default::default()
    })
    .unwrap();
    open_position(&mut k, 0, "a", Side::Long, 2.0, 100.0);
    let a = k.account();
    assert!((a.k_fees_paid - 0.2).abs() < 1e-12, "2 x 100 x 0.1 %");
    let settle = AccountEvent {
        kind: account::AccountEventKind::FillSettled,
        event_id: "s1".into(),
        timestamp: None,
        fill_id: "a/fill".into(),
        fee: Some(0.25),
        wallet_balance: None,
        available_margin: None,
        used_margin: None,
        maint_margin: None,
        amount: None,
    };
    assert!(k.on_account_event(&settle).applied);
    assert!(!k.on_account_event(&settle).applied, "an account event applies once");
    let a = k.account();
    assert!((a.k_fees_paid - 0.25).abs() < 1e-12);
    assert_eq!((a.event_seq, a.unsettled_fills), (1, 0));
    let update = AccountEvent {
        kind: account::AccountEventKind::AccountUpdate,
        event_id: "u1".into(),
        wallet_balance: Some(999.75),
        available_margin: Some(800.0),
        fee: None,
        ..settle.clone()
    };
    k.on_account_event(&update);
    let a = k.account();
    assert_eq!((a.reconcile_status, a.available_capital), ("OK", 800.0));
}

#[test]
fn calibration_reports_deviation_and_moves_the_ratio() {
    let mut k = kernel(1);
    assert_eq!(k.calibrate_fee(100.0, 1.0, 0.1).unwrap_err().field, "expected_fee");
    k.set_exchange_config(&ExchangeConfigUpdate {
        taker_rate: Some(0.0005),
        ..Default::default()
    })
    .unwrap();
    let c = k.calibrate_fee(100.0, 2.0, 0.103).unwrap();
    assert!((c.expected_fee - 0.1).abs() < 1e-12);
    assert_eq!(c.calibration_status, "WARN");
    assert!((c.ratio - 1.03).abs() < 1e-9 && c.calibration_samples == 1);
    let c = k.calibrate_fee(100.0, 2.0, 0.1).unwrap();
    assert!((c.calibration_ratio - (0.2 * 1.0 + 0.8 * 1.03)).abs() < 1e-9);
    assert_eq!(k.calibrate_fee(f64::NAN, 1.0, 0.1).unwrap_err().field, "fill_price");
}

#[test]
fn marks_move_unrealized_pnl_of_that_asset_only() {
    let mut k = kernel(3);
    open_position(&mut k, 0, "a", Side::Long, 2.0, 100.0);
    open_position(&mut k, 1, "b", Side::Short, 1.0, 100.0);
    assert_eq!(k.mark_price("BTC-PERP", 105.0).unwrap(), 2);
    assert_eq!(k.mark_price("ETH-PERP", 5.0).unwrap(), 0);
    assert_eq!(k.slot(0).unwrap().unrealized_pnl, 10.0);
    assert_eq!(k.slot(1).unwrap().unrealized_pnl, -5.0);
    assert_eq!(k.account().unrealized_pnl, 5.0);
    assert!(k.mark_price("BTC-PERP", -1.0).is_err());
}

#[test]
fn changes_drain_once_with_growing_versions() {
    let mut k = kernel(3);
    assert_eq!(
        k.drain_changes().slots.len(),
        3,
        "a new kernel projects every slot once"
    );
    assert!(k.drain_changes().slots.is_empty() && k.pending_changes() == 0);
    k.process_intent(&enter(2, "a", Side::Long, 1.0));
    k.submitted(2, Timestamp(1));
    let ch = k.drain_changes();
    assert_eq!(ch.slots.len(), 1, "coalesced per key");
    assert_eq!(ch.slots[0].fsm_state, Stage::OrderSent, "latest state");
    let v = ch.slots[0].version;
    k.process_intent(&cancel(2));
    assert!(k.drain_changes().slots[0].version > v);
}

#[test]
fn checkpoint_restores_an_identical_kernel() {
    let mut k = kernel(4);
    k.set_seed_capital(50.0).unwrap();
    open_position(&mut k, 1, "a", Side::Long, 2.0, 100.0);
    let cid = working_entry(&mut k, 2, "b", Side::Short, 1.0);
    k.mark_price("BTC-PERP", 99.0).unwrap();
    let bytes = k.checkpoint();
    let mut r = Kernel::restore(&bytes).unwrap();
    assert_eq!(r.checkpoint(), bytes);
    assert_eq!(
        serde_json::to_value(r.snapshot()).unwrap(),
        serde_json::to_value(k.snapshot()).unwrap()
    );
    // and it keeps working the same way
    let a = k.on_venue_event(&fill("f", &cid, EventKind::Fill, 98.0, 1.0));
    let b = r.on_venue_event(&fill("f", &cid, EventKind::Fill, 98.0, 1.0));
    assert_eq!(a, b);
    assert!(Kernel::restore(b"not msgpack").is_err());
}

#[test]
fn reconcile_validates_the_whole_set_first() {
    let mut k = kernel(3);
    open_position(&mut k, 0, "a", Side::Long, 2.0, 100.0);
    let good = k.slot(0).unwrap().clone();
    let bad = Slot {
        slot_id: 1,
        size: f64::NAN,
        ..good.clone()
    };
    let before = k.checkpoint();
    let out = k.reconcile_from_slots(vec![good.clone(), bad], Timestamp(5));
    assert_eq!(out.diagnostic_code, DiagnosticCode::InvalidSlots);
    assert!(matches!(out.details.get("field"), Some(Detail::Text(f)) if f == "slots[1].size"));
    assert_eq!(k.checkpoint(), before);
    let twice = Slot {
        slot_id: 2,
        ..good.clone()
    };
    let out = k.reconcile_from_slots(vec![good.clone(), twice], Timestamp(5));
    assert!(
        matches!(out.details.get("field"), Some(Detail::Text(f)) if f == "slots[1].trade_id"),
        "{out:?}"
    );

    let moved = Slot { slot_id: 2, ..good };
    let out = k.reconcile_from_slots(vec![moved], Timestamp(5));
    assert!(out.accepted);
    assert_eq!(k.trade_index().get("a"), Some(&2));
    assert_eq!(k.slot(0).unwrap().fsm_state, Stage::Idle);
    assert_eq!(k.free_slot(), Some(0));
}

#[test]
fn the_benchmark_scenario_runs_every_trade_to_closed() {
    use dita_kernel::testkit::{apply, scenario, Step};
    let marks = |steps: &[Step]| steps.iter().filter(|s| matches!(s, Step::Mark(..))).count();
    assert_eq!(
        marks(&scenario(10, 3)),
        3 * 4,
        "one mark per asset and round, whatever the slots"
    );
    let steps = scenario(3, 2);
    let mut k = kernel(3);
    for step in &steps {
        assert!(apply(&mut k, step), "{step:?}");
    }
    for s in k.slots() {
        assert_eq!((s.fsm_state, s.size), (Stage::Closed, 0.0));
        assert!((s.realized_pnl - (102.0 - 100.5 + 103.0 - 100.5)).abs() < 1e-9);
    }
    assert_eq!(
        steps.len(),
        3 * 2 * 16 + 2 * 3,
        "16 steps per slot and round, plus a mark per asset"
    );
}

#[test]
fn versions_can_be_raised_above_a_store_but_never_lowered() {
    let mut k = kernel(2);
    k.drain_changes();
    k.raise_versions(&[(0, 40), (1, 0), (9, 5)], Some(7));
    let ch = k.drain_changes();
    assert_eq!(
        ch.slots.iter().map(|s| (s.slot_id, s.version)).collect::<Vec<_>>(),
        vec![(0, 41), (1, 1)]
    );
    assert_eq!(ch.account.unwrap().version, 8);
    k.raise_versions(&[(0, 3)], Some(2));
    assert_eq!(k.slot(0).unwrap().version, 41);
    assert!(k.drain_changes().slots.is_empty());
}

#[test]
fn documents_carry_kernel_id_key_and_version_and_can_be_requested_again() {
    let mut k = kernel(2);
    k.drain_changes();
    k.process_intent(&enter(1, "a", Side::Long, 1.0));
    let docs = k.drain_documents("k1", Timestamp(0));
    assert_eq!(docs.slots.len(), 1);
    let (key, version, json) = &docs.slots[0];
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(key, "k1:1");
    assert_eq!((v["kernel_id"].as_str(), v["key"].as_str()), (Some("k1"), Some("k1:1")));
    assert_eq!(v["version"].as_u64(), Some(*version));
    assert_eq!(v["fsm_state"], "ORDER_REQUESTED");
    assert_eq!(v["updated_at"], "1970-01-01T00:00:00Z");
    assert!(k.drain_documents("k1", Timestamp(0)).slots.is_empty());
    k.mark_all_changed();
    let again = k.drain_documents("k1", Timestamp(0));
    assert_eq!((again.slots.len(), again.account.is_some()), (2, true));
}

#[test]
fn a_restart_adopts_a_newer_projected_account_and_refuses_a_bad_one_whole() {
    let mut k = kernel(2);
    k.set_seed_capital(1_000.0).unwrap();
    open_position(&mut k, 0, "a", Side::Long, 2.0, 100.0);
    k.process_intent(&exit(0));
    assert!(k.submitted(0, Timestamp(2)).accepted);
    let cid = k.slot(0).unwrap().active_exit_order.clone().unwrap().venue_client_id;
    k.on_venue_event(&fill("a/x", &cid, EventKind::Fill, 110.0, 2.0));
    let projected: ProjectedAccount = serde_json::from_value(serde_json::to_value(k.account()).unwrap()).unwrap();

    let mut restarted = kernel(2);
    restarted.adopt_account(&projected).unwrap();
    let (was, now) = (k.account(), restarted.account());
    assert_eq!(now.k_realized_pnl, 20.0);
    assert_eq!(
        (now.k_capital, now.k_fees_paid, now.event_seq, now.version),
        (was.k_capital, was.k_fees_paid, was.event_seq, was.version)
    );

    let before = restarted.checkpoint();
    let bad = ProjectedAccount {
        k_fees_paid: f64::NAN,
        k_realized_pnl: 5.0,
        ..projected
    };
    let err = restarted.adopt_account(&bad).unwrap_err();
    assert!(err.to_string().contains("k_fees_paid"), "{err}");
    assert_eq!(restarted.checkpoint(), before, "a refused adoption changes nothing");
}

#[test]
fn marks_reach_exactly_the_live_trades_of_their_asset_after_closes_in_any_order() {
    // Closing a trade takes its slot out of its asset's list in constant time
    // (the last entry moves into its place); marks must still find every
    // live trade of the asset, once, and none that closed.
    let mut k = kernel(8);
    for s in 0..6 {
        open_position(&mut k, s, &format!("t{s}"), Side::Long, 1.0, 100.0);
    }
    for s in [1, 5, 0] {
        let out = k.process_intent(&exit(s));
        let cid = out.order.expect("an exit order").venue_client_id;
        assert!(k.submitted(s, Timestamp(2)).accepted);
        let closed = k.on_venue_event(&fill(&format!("x{s}"), &cid, EventKind::Fill, 100.0, 1.0));
        assert_eq!(closed.state, Stage::Closed, "{closed:?}");
    }
    assert_eq!(k.mark_price("BTC-PERP", 110.0), Ok(3));
    for s in 0..6 {
        let expected = if [2, 3, 4].contains(&s) { 10.0 } else { 0.0 };
        assert_eq!(k.slot(s).unwrap().unrealized_pnl, expected, "slot {s}");
    }
    open_position(&mut k, 1, "again", Side::Long, 1.0, 100.0);
    assert_eq!(k.mark_price("BTC-PERP", 120.0), Ok(4));
    let mut restored = Kernel::restore(&k.checkpoint()).unwrap();
    assert_eq!(restored.mark_price("BTC-PERP", 130.0), Ok(4));
}
