//! `dita._native`: the thin binding between Python and the kernel crate.
//! Type conversion and error mapping only; all behaviour lives in `dita-kernel`.

mod contracts;
mod convert;
mod kernel;
mod store;

use pyo3::prelude::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Panics inside a guarded call, to prove the panic boundary (tests only).
#[pyfunction]
fn _panic_for_test(message: &str) -> PyResult<()> {
    convert::guard(|| panic!("{message}"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<kernel::PyKernel>()?;
    m.add_class::<contracts::PyIntent>()?;
    m.add_class::<contracts::PyVenueEvent>()?;
    m.add_class::<contracts::PyOrder>()?;
    m.add_class::<contracts::PySlot>()?;
    m.add_class::<contracts::PyTransition>()?;
    m.add_class::<contracts::PyOutcome>()?;
    m.add_class::<store::PyStoreWriter>()?;
    m.add("StoreUnreachable", m.py().get_type::<store::StoreUnreachable>())?;
    m.add_function(wrap_pyfunction!(store::_put_all_request_for_test, m)?)?;
    // Benchmarks refuse a debug build: it is 10x slower or worse.
    m.add(
        "BUILD_PROFILE",
        if cfg!(debug_assertions) { "debug" } else { "release" },
    )?;
    m.add("KernelPanic", m.py().get_type::<convert::KernelPanic>())?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    Ok(())
}
