//! The pure-Rust kernel on the benchmark scenario (entries, acks, partial
//! fills, marks, multi-leg exits, cancels), per step, at 10 and 1,000 slots.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dita_kernel::testkit::{scenario, Step};
use dita_kernel::{Kernel, Timestamp};

fn run(k: &mut Kernel, steps: &[Step]) {
    for step in steps {
        match step {
            Step::Intent(i) => {
                std::hint::black_box(k.process_intent(i));
            }
            Step::Submitted(s) => {
                std::hint::black_box(k.submitted(*s, Timestamp(3)));
            }
            Step::Event(e) => {
                std::hint::black_box(k.on_venue_event(e));
            }
            Step::Mark(a, p) => {
                std::hint::black_box(k.mark_price(a, *p).ok());
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel_step");
    for slots in [10usize, 1_000] {
        let rounds = (20_000 / (slots * 17)).max(1);
        let steps = scenario(slots, rounds);
        group.throughput(Throughput::Elements(steps.len() as u64));
        group.bench_function(format!("{slots}_slots"), |b| {
            b.iter_batched_ref(|| Kernel::new(slots).unwrap(), |k| run(k, &steps), BatchSize::LargeInput)
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
