//! Valid intents and venue events in one line, for tests, benches and fuzzing.

use crate::messages::{Intent, VenueEvent};
use crate::time::Timestamp;
use crate::types::{Command, EventKind, Side};

pub fn enter(slot_id: i64, trade_id: &str, side: Side, size: f64) -> Intent {
    Intent {
        intent_id: format!("{trade_id}/enter").into(),
        trade_id: trade_id.into(),
        slot_id,
        asset: "BTC-PERP".into(),
        side,
        action: Command::Enter,
        reference_price: 100.0,
        target_size: size,
        timestamp: Timestamp(1_000_000_000),
        ..Intent::default()
    }
}

pub fn enter_legs(slot_id: i64, trade_id: &str, side: Side, size: f64, legs: &[f64]) -> Intent {
    Intent {
        exit_leg_ratios: legs.to_vec(),
        ..enter(slot_id, trade_id, side, size)
    }
}

pub fn exit(slot_id: i64) -> Intent {
    Intent {
        intent_id: format!("exit/{slot_id}").into(),
        slot_id,
        action: Command::Exit,
        ..Intent::default()
    }
}

pub fn cancel(slot_id: i64) -> Intent {
    Intent {
        intent_id: format!("cancel/{slot_id}").into(),
        slot_id,
        action: Command::Cancel,
        ..Intent::default()
    }
}

/// An event about the order with client id `client_id`.
pub fn event(event_id: &str, client_id: &str, kind: EventKind) -> VenueEvent {
    VenueEvent {
        event_id: event_id.into(),
        venue_client_id: client_id.into(),
        kind,
        timestamp: Timestamp(2_000_000_000),
        ..VenueEvent::default()
    }
}

pub fn ack(event_id: &str, client_id: &str, venue_order_id: &str) -> VenueEvent {
    VenueEvent {
        venue_order_id: venue_order_id.into(),
        ..event(event_id, client_id, EventKind::OrderAck)
    }
}

pub fn fill(event_id: &str, client_id: &str, kind: EventKind, price: f64, qty: f64) -> VenueEvent {
    VenueEvent {
        price,
        size: qty,
        ..event(event_id, client_id, kind)
    }
}

/// One call of the benchmark scenario.
#[derive(Clone, Debug)]
pub enum Step {
    Intent(Intent),
    Submitted(i64),
    Event(VenueEvent),
    Mark(String, f64),
}

/// Applies one scenario step; true when the kernel accepted it.
pub fn apply(k: &mut crate::kernel::Kernel, step: &Step) -> bool {
    match step {
        Step::Intent(i) => k.process_intent(i).accepted,
        Step::Submitted(s) => k.submitted(*s, crate::time::Timestamp(3)).accepted,
        Step::Event(e) => k.on_venue_event(e).accepted,
        Step::Mark(a, p) => k.mark_price(a, *p).is_ok(),
    }
}

/// The benchmark scenario: per slot and round, an entry filled in two parts,
/// a price mark of each asset, a two-leg exit whose second leg is cancelled once and sent
/// again. Steps are interleaved across slots so every slot is touched between
/// two steps of one slot, as in a busy strategy. Client ids come from a dry
/// run, so replaying the steps on a fresh kernel of the same size is exact.
pub fn scenario(slots: usize, rounds: usize) -> Vec<Step> {
    use crate::kernel::Kernel;
    let mut dry = Kernel::new(slots).expect("valid size");
    let mut steps = Vec::new();
    let run = |k: &mut Kernel, step: Step, steps: &mut Vec<Step>| -> Option<String> {
        let client = match &step {
            Step::Intent(i) => k.process_intent(i).order.map(|o| o.venue_client_id.to_string()),
            other => {
                apply(k, other);
                None
            }
        };
        steps.push(step);
        client
    };
    let assets = ["BTC-PERP", "ETH-PERP", "SOL-PERP", "XRP-PERP"];
    for round in 0..rounds {
        let mut entry = vec![String::new(); slots];
        let mut exit_id = vec![String::new(); slots];
        for phase in 0..17 {
            for s in 0..slots {
                let (slot, asset) = (s as i64, assets[s % assets.len()]);
                let id = |what: &str| format!("r{round}s{s}/{what}");
                let step = match phase {
                    0 => {
                        let trade = format!("r{round}s{s}");
                        let intent = Intent {
                            asset: asset.into(),
                            ..enter_legs(slot, &trade, Side::Long, 2.0, &[0.5, 0.5])
                        };
                        Step::Intent(intent)
                    }
                    1 | 7 | 11 | 15 => Step::Submitted(slot),
                    2 => ack(&id("ea"), &entry[s], &id("V")).into(),
                    3 => fill(&id("ep"), &entry[s], EventKind::PartialFill, 100.0, 1.0).into(),
                    4 => fill(&id("ef"), &entry[s], EventKind::Fill, 101.0, 1.0).into(),
                    // Prices tick per asset, not per slot: one mark of each asset a round.
                    5 if s < assets.len() => Step::Mark(asset.into(), 100.0 + round as f64),
                    5 => continue,
                    6 | 10 | 14 => Step::Intent(exit(slot)),
                    8 => ack(&id("xa"), &exit_id[s], "").into(),
                    9 => fill(&id("x1"), &exit_id[s], EventKind::Fill, 102.0, 1.0).into(),
                    12 => Step::Intent(cancel(slot)),
                    13 => event(&id("xc"), &exit_id[s], EventKind::Cancelled).into(),
                    _ => fill(&id("x2"), &exit_id[s], EventKind::Fill, 103.0, 1.0).into(),
                };
                match (phase, run(&mut dry, step, &mut steps)) {
                    (0, Some(client)) => entry[s] = client,
                    (6 | 10 | 14, Some(client)) => exit_id[s] = client,
                    _ => {}
                }
            }
        }
    }
    steps
}

impl From<VenueEvent> for Step {
    fn from(e: VenueEvent) -> Step {
        Step::Event(e)
    }
}
