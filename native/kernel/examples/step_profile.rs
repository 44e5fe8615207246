//! Per-kind timing of the benchmark scenario (a diagnostic, not a test).
use std::time::Instant;
use dita_kernel::testkit::{scenario, Step};
use dita_kernel::{Kernel, Timestamp};

fn main() {
    let slots: usize = std::env::args().nth(1).map_or(10, |s| s.parse().unwrap());
    let steps = scenario(slots, (20_000 / (slots * 17)).max(1));
    let mut totals = [(0u128, 0u64); 4];
    for _ in 0..std::env::args().nth(2).map_or(20, |s| s.parse().unwrap()) {
        let mut k = Kernel::new(slots).unwrap();
        for step in &steps {
            let t = Instant::now();
            let kind = match step {
                Step::Intent(i) => { std::hint::black_box(k.process_intent(i)); 0 }
                Step::Submitted(s) => { std::hint::black_box(k.submitted(*s, Timestamp(3))); 1 }
                Step::Event(e) => { std::hint::black_box(k.on_venue_event(e)); 2 }
                Step::Mark(a, p) => { std::hint::black_box(k.mark_price(a, *p).ok()); 3 }
            };
            totals[kind].0 += t.elapsed().as_nanos();
            totals[kind].1 += 1;
        }
        let t = Instant::now();
        drop(k);
        if slots == 0 { println!("{:?}", t.elapsed()); }
    }
    for (name, (ns, n)) in ["intent", "submitted", "event", "mark"].iter().zip(totals) {
        println!("{name}: {} ns/call over {n}", ns / n.max(1) as u128);
    }
}
