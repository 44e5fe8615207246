//! Arbitrary operation sequences: no panic, and the kernel's invariants hold after every step.

use dita_kernel::testkit::{ack, cancel, enter_legs, event, exit, fill};
use dita_kernel::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Enter {
        slot: i64,
        trade: u8,
        size: f64,
        two_legs: bool,
    },
    Submitted(i64),
    Exit(i64),
    Cancel(i64),
    Event {
        order: u8,
        id: u8,
        kind: u8,
        qty: f64,
        venue_id: u8,
    },
    Mark(f64),
    Control(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let qty = prop_oneof![
        Just(0.5),
        Just(1.0),
        Just(2.0),
        Just(1e-10),
        Just(f64::NAN),
        Just(-1.0),
        0.0..3.0f64
    ];
    prop_oneof![
        (-1i64..4, 0u8..6, qty.clone(), any::<bool>()).prop_map(|(slot, trade, size, two_legs)| Op::Enter {
            slot,
            trade,
            size,
            two_legs
        }),
        (0i64..3).prop_map(Op::Submitted),
        (0i64..3).prop_map(Op::Exit),
        (0i64..3).prop_map(Op::Cancel),
        (0u8..12, 0u8..20, 0u8..7, qty, 0u8..4).prop_map(|(order, id, kind, qty, venue_id)| Op::Event {
            order,
            id,
            kind,
            qty,
            venue_id
        }),
        prop_oneof![Just(f64::INFINITY), 1.0..200.0f64].prop_map(Op::Mark),
        (0u8..3).prop_map(Op::Control),
    ]
}

fn client_ids(k: &Kernel) -> Vec<String> {
    let mut ids: Vec<String> = k.client_order_index().keys().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

fn apply(k: &mut Kernel, op: &Op) {
    let kinds = [
        EventKind::OrderAck,
        EventKind::PartialFill,
        EventKind::Fill,
        EventKind::Cancelled,
        EventKind::Expired,
        EventKind::Rejected,
        EventKind::RateLimited,
    ];
    match op {
        Op::Enter {
            slot,
            trade,
            size,
            two_legs,
        } => {
            let legs: &[f64] = if *two_legs { &[0.5, 0.5] } else { &[1.0] };
            k.process_intent(&enter_legs(*slot, &format!("t{trade}"), Side::Long, *size, legs));
        }
        Op::Submitted(s) => {
            k.submitted(*s, Timestamp(1));
        }
        Op::Exit(s) => {
            k.process_intent(&exit(*s));
        }
        Op::Cancel(s) => {
            k.process_intent(&cancel(*s));
        }
        Op::Event {
            order,
            id,
            kind,
            qty,
            venue_id,
        } => {
            let ids = client_ids(k);
            let client = ids.get(*order as usize).cloned().unwrap_or_else(|| "nobody".into());
            let kind = kinds[*kind as usize];
            let venue = if *venue_id == 0 {
                String::new()
            } else {
                format!("V{venue_id}")
            };
            let ev = match kind {
                EventKind::Fill | EventKind::PartialFill => fill(&format!("e{id}"), &client, kind, 100.0, *qty),
                EventKind::OrderAck => ack(&format!("e{id}"), &client, &venue),
                _ => event(&format!("e{id}"), &client, kind),
            };
            k.on_venue_event(&ev);
        }
        Op::Mark(p) => {
            let _ = k.mark_price("BTC-PERP", *p);
        }
        Op::Control(m) => {
            let mode = [Mode::Active, Mode::ReduceOnly, Mode::Halted][*m as usize];
            k.set_control(Control { mode, ..k.control() });
        }
    }
}

fn check_invariants(k: &Kernel) {
    for s in k.slots() {
        assert!(s.size >= 0.0 && s.size.is_finite(), "size {}", s.size);
        for o in [&s.active_entry_order, &s.active_exit_order].into_iter().flatten() {
            assert!(
                o.filled_size <= o.intended_size + s.tolerance(),
                "filled {} of {}",
                o.filled_size,
                o.intended_size
            );
        }
    }
    for (index, name) in [
        (k.trade_index(), "trade"),
        (k.client_order_index(), "client"),
        (k.venue_order_index(), "venue"),
    ] {
        for (id, &slot) in index {
            let s = k.slot(slot as usize).unwrap();
            let holds = match name {
                "trade" => s.trade_id == *id,
                "client" => [&s.active_entry_order, &s.active_exit_order]
                    .into_iter()
                    .flatten()
                    .any(|o| o.venue_client_id == *id),
                _ => [&s.active_entry_order, &s.active_exit_order]
                    .into_iter()
                    .flatten()
                    .any(|o| o.venue_order_id == *id),
            };
            assert!(holds, "{name} index points {id} at slot {slot}, which does not hold it");
        }
    }
    let a = k.account();
    assert!(a.k_capital.is_finite() && a.k_fees_paid.is_finite() && a.k_realized_pnl.is_finite());
    let restored = Kernel::restore(&k.checkpoint()).expect("the kernel's own checkpoint restores");
    assert_eq!(restored.checkpoint(), k.checkpoint());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_step(ops in proptest::collection::vec(op(), 1..60)) {
        let mut k = Kernel::new(3).unwrap();
        for op in &ops {
            apply(&mut k, op);
            check_invariants(&k);
        }
    }
}
