//! Arbitrary operation sequences on one kernel; see `dita_kernel_fuzz::ops`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dita_kernel_fuzz::fuzz_one(data));
