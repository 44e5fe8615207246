//! Time per step of the pure-Rust kernel on the benchmark scenario, step by
//! step: median and p99 at 10, 1,000 and 10,000 slots.
//!
//! Criterion (benches/kernel.rs) times whole scenarios and reports their mean
//! per step; a median per step needs each step timed alone. The clock's own
//! cost (the median of back-to-back reads) is measured first and taken off
//! every sample, and said so in the output. `cargo bench --bench steps`.

use std::hint::black_box;
use std::time::Instant;

use dita_kernel::testkit::{apply, scenario};
use dita_kernel::Kernel;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn clock_cost() -> u64 {
    let mut samples: Vec<u64> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            black_box(t.elapsed().as_nanos() as u64)
        })
        .collect();
    samples.sort_unstable();
    percentile(&samples, 0.5)
}

fn main() {
    let overhead = clock_cost();
    println!("clock read: {overhead} ns (taken off each sample)");
    println!("| slots | steps | median ns/step | p99 ns/step | mean ns/step |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    let mut medians = Vec::new();
    for slots in [10usize, 1_000, 10_000] {
        // About 200,000 steps per slot count, in at least two rounds.
        let rounds = (200_000 / (slots * 16)).max(2);
        let steps = scenario(slots, rounds);
        let mut samples = Vec::with_capacity(steps.len() * 3);
        for _ in 0..3 {
            let mut k = Kernel::new(slots).expect("valid size");
            for step in &steps {
                let t = Instant::now();
                black_box(apply(&mut k, step));
                samples.push((t.elapsed().as_nanos() as u64).saturating_sub(overhead));
            }
        }
        let mean = samples.iter().sum::<u64>() as f64 / samples.len() as f64;
        samples.sort_unstable();
        let median = percentile(&samples, 0.5);
        println!(
            "| {slots} | {} | {median} | {} | {mean:.0} |",
            samples.len(),
            percentile(&samples, 0.99)
        );
        medians.push((slots, median));
    }
    let base = medians[0].1.max(1) as f64;
    for &(slots, m) in &medians[1..] {
        println!("{slots} slots / 10 slots median: {:.2}x", m as f64 / base);
    }
}
