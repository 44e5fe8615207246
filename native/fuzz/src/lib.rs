//! Fuzzing dita's kernel: the operation interpreter (`ops`) the fuzz targets
//! and the kernel's property test share, and the operation count a long run reports.

pub mod ops;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

static OPERATIONS: AtomicU64 = AtomicU64::new(0);
static INPUTS: AtomicU64 = AtomicU64::new(0);
static REPORT: Once = Once::new();

extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
}

extern "C" fn report() {
    eprintln!(
        "dita fuzz: {} kernel operations in {} inputs, every invariant held after each",
        OPERATIONS.load(Ordering::Relaxed),
        INPUTS.load(Ordering::Relaxed)
    );
}

/// Runs one fuzz input and counts its operations; the total is printed when
/// the process exits (libFuzzer ends a timed run with `exit`).
pub fn fuzz_one(data: &[u8]) {
    REPORT.call_once(|| {
        // SAFETY: registers a plain function with no captured state.
        unsafe {
            atexit(report);
        }
    });
    let n = ops::run(data);
    OPERATIONS.fetch_add(n, Ordering::Relaxed);
    INPUTS.fetch_add(1, Ordering::Relaxed);
}
