//! The pure-Rust kernel on the benchmark scenario (entries, acks, partial
//! fills, marks, multi-leg exits, cancels), per step, at 10 and 1,000 slots.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dita_kernel::testkit::{apply, scenario, Step};
use dita_kernel::Kernel;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn run(k: &mut Kernel, steps: &[Step]) {
    for step in steps {
        std::hint::black_box(apply(k, step));
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernel_step");
    for slots in [10usize, 1_000] {
        let rounds = (20_000 / (slots * 17)).max(1);
        let steps = scenario(slots, rounds);
        group.throughput(Throughput::Elements(steps.len() as u64));
        group.bench_function(format!("{slots}_slots"), |b| {
            b.iter_batched_ref(
                || Kernel::new(slots).unwrap(),
                |k| run(k, &steps),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
