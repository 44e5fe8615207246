//! The kernel as a Python class: each method converts, calls the core, converts back.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

use dita_kernel::account::{AccountEvent, ProjectedAccount};
use dita_kernel::{Control, DocumentKey, ExchangeConfigUpdate, Kernel, Mode, Slot, Verbosity};
use dita_store::Wake;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::contracts::{PyIntent, PyOutcome, PySlot, PyVenueEvent};
use crate::convert::{from_py, guard, input_error, timestamp_arg, to_py, ToPy};

/// ([(key, version, json) per slot], (version, json) of the account or None)
type DrainedDocuments = (Vec<(String, u64, String)>, Option<(u64, String)>);

#[pyclass(module = "dita._native", name = "Kernel")]
pub struct PyKernel {
    pub(crate) cell: Arc<KernelCell>,
}

/// The kernel behind a lock of its own, not only the interpreter's: a
/// projection feed takes its changes from a thread that never holds the
/// interpreter lock (see `dita_store::feed`). Uncontended, the lock costs a
/// call two atomic operations.
pub(crate) struct KernelCell(Mutex<Guarded>);

pub(crate) struct Guarded {
    pub(crate) kernel: Kernel,
    /// The feeds this kernel is attached to.
    pub(crate) wakes: Vec<Arc<Wake>>,
}

impl KernelCell {
    fn new(kernel: Kernel) -> Arc<KernelCell> {
        Arc::new(KernelCell(Mutex::new(Guarded {
            kernel,
            wakes: Vec::new(),
        })))
    }

    /// The kernel, without poking feeds when released (for the feeds themselves).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Guarded> {
        // A caught panic inside a call leaves the lock poisoned; the call has
        // already been reported as KernelPanic, and the kernel stays usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The kernel for one call; on release, a sleeping feed learns that it changed.
pub(crate) struct Locked<'a>(MutexGuard<'a, Guarded>);

impl Deref for Locked<'_> {
    type Target = Kernel;
    fn deref(&self) -> &Kernel {
        &self.0.kernel
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Kernel {
        &mut self.0.kernel
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let g = &self.0;
        for wake in &g.wakes {
            if wake.is_asleep() && g.kernel.pending_changes() > 0 {
                wake.poke();
            }
        }
    }
}

impl PyKernel {
    fn of(kernel: Kernel) -> PyKernel {
        PyKernel {
            cell: KernelCell::new(kernel),
        }
    }

    pub(crate) fn core(&self) -> Locked<'_> {
        Locked(self.cell.lock())
    }
}

fn parse_enum<T>(field: &str, text: &str, parse: fn(&str) -> Option<T>, all: &[&str]) -> PyResult<T> {
    parse(text).ok_or_else(|| PyValueError::new_err(format!("{field} = '{text}': must be one of {}", all.join(", "))))
}

#[pymethods]
impl PyKernel {
    #[new]
    #[pyo3(signature = (max_slots = 10, *, seen_event_capacity = 64))]
    fn new(max_slots: usize, seen_event_capacity: usize) -> PyResult<Self> {
        Ok(PyKernel::of(
            Kernel::with_seen_capacity(max_slots, seen_event_capacity).map_err(input_error)?,
        ))
    }

    #[getter]
    fn max_slots(&self) -> usize {
        self.core().max_slots()
    }

    fn process_intent(&mut self, intent: PyRef<'_, PyIntent>) -> PyResult<PyOutcome> {
        guard(|| PyOutcome {
            inner: self.core().process_intent(&intent.inner),
        })
    }

    /// The venue adapter handed the slot's order to the venue (ORDER_REQUESTED -> ORDER_SENT).
    #[pyo3(signature = (slot_id, timestamp = None))]
    fn submitted(&mut self, slot_id: i64, timestamp: Option<&Bound<'_, PyAny>>) -> PyResult<PyOutcome> {
        let at = timestamp_arg("timestamp", timestamp)?;
        guard(|| PyOutcome {
            inner: self.core().submitted(slot_id, at),
        })
    }

    fn on_venue_event(&mut self, event: PyRef<'_, PyVenueEvent>) -> PyResult<PyOutcome> {
        guard(|| PyOutcome {
            inner: self.core().on_venue_event(&event.inner),
        })
    }

    fn mark_price(&mut self, asset: &str, price: f64) -> PyResult<usize> {
        guard(|| self.core().mark_price(asset, price))?.map_err(input_error)
    }

    fn slot(&self, slot_id: i64) -> PyResult<PySlot> {
        let core = self.core();
        usize::try_from(slot_id)
            .ok()
            .and_then(|i| core.slot(i))
            .map(|s| PySlot { inner: s.clone() })
            .ok_or_else(|| PyIndexError::new_err(format!("slot_id = {slot_id}: must be 0 to {}", core.max_slots() - 1)))
    }

    /// Overwrites one slot, bypassing the lifecycle; checked like reconcile.
    fn set_slot(&mut self, slot: PyRef<'_, PySlot>) -> PyResult<()> {
        guard(|| self.core().set_slot(slot.inner.clone()))?.map_err(input_error)
    }

    fn free_slot(&self) -> Option<u32> {
        self.core().free_slot()
    }

    #[pyo3(signature = (slots, timestamp = None))]
    fn reconcile_from_slots(
        &mut self,
        slots: &Bound<'_, PyAny>,
        timestamp: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyOutcome> {
        let at = timestamp_arg("timestamp", timestamp)?;
        let mut parsed: Vec<Slot> = Vec::new();
        for (k, item) in slots.try_iter()?.enumerate() {
            let item = item?;
            parsed.push(match item.downcast::<PySlot>() {
                Ok(s) => s.get().inner.clone(),
                Err(_) => from_py(&item, &format!("slots[{k}]"))?,
            });
        }
        guard(|| PyOutcome {
            inner: self.core().reconcile_from_slots(parsed, at),
        })
    }

    #[pyo3(signature = (mode, verbosity, journal = false))]
    fn set_control(&mut self, mode: &str, verbosity: &str, journal: bool) -> PyResult<()> {
        let mode = parse_enum(
            "mode",
            mode,
            Mode::parse,
            &Mode::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        )?;
        let verbosity = parse_enum(
            "verbosity",
            verbosity,
            Verbosity::parse,
            &Verbosity::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
        )?;
        self.core().set_control(Control {
            mode,
            verbosity,
            journal,
        });
        Ok(())
    }

    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.core().control().mode.to_py(py)
    }

    #[getter]
    fn verbosity(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.core().control().verbosity.to_py(py)
    }

    #[getter]
    fn journal(&self) -> bool {
        self.core().control().journal
    }

    fn set_seed_capital(&mut self, seed: f64) -> PyResult<()> {
        self.core().set_seed_capital(seed).map_err(input_error)
    }

    /// Takes the K and E figures of a `dita.accounts` document (a restart
    /// meeting a projection newer than its checkpoint); a bad figure raises
    /// and changes nothing.
    fn adopt_account(&mut self, document: &Bound<'_, PyAny>) -> PyResult<()> {
        let projected: ProjectedAccount = from_py(document, "account")?;
        self.core().adopt_account(&projected).map_err(input_error)
    }

    fn set_exchange_config(&mut self, config: &Bound<'_, PyAny>) -> PyResult<()> {
        let update: ExchangeConfigUpdate = from_py(config, "exchange_config")?;
        self.core().set_exchange_config(&update).map_err(input_error)
    }

    fn calibrate_fee<'py>(
        &mut self,
        py: Python<'py>,
        fill_price: f64,
        fill_qty: f64,
        actual_fee: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self
            .core()
            .calibrate_fee(fill_price, fill_qty, actual_fee)
            .map_err(input_error)?;
        to_py(py, &c)
    }

    /// Applies one account event; the answer is the account after it, plus
    /// applied, diagnostic_code and details (why it was refused, if it was).
    fn on_account_event<'py>(&mut self, py: Python<'py>, event: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let event: AccountEvent = from_py(event, "account_event")?;
        let answer = guard(|| self.core().on_account_event(&event))?;
        let out = to_py(py, &self.core().account())?.downcast_into::<PyDict>()?;
        out.set_item("applied", answer.applied)?;
        out.set_item("diagnostic_code", answer.diagnostic_code.to_py(py)?)?;
        out.set_item("details", answer.details.to_py(py)?)?;
        Ok(out.into_any())
    }

    fn account<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.core().account())
    }

    /// The whole kernel as plain data: control, every slot, account, indices.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.core().snapshot())
    }

    fn trade_index<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.core().trade_index())
    }

    fn venue_order_index<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.core().venue_order_index())
    }

    fn client_order_index<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, self.core().client_order_index())
    }

    fn pending_changes(&self) -> usize {
        self.core().pending_changes()
    }

    /// Each slot changed since the last drain, once, in its latest state, and
    /// the account if it changed (else None).
    fn drain_changes<'py>(&mut self, py: Python<'py>) -> PyResult<(Bound<'py, PyList>, Bound<'py, PyAny>)> {
        let changes = self.core().drain_changes();
        let slots = changes
            .slots
            .into_iter()
            .map(|s| Bound::new(py, PySlot { inner: s }))
            .collect::<PyResult<Vec<_>>>()?;
        let account = match &changes.account {
            Some(a) => to_py(py, a)?,
            None => py.None().into_bound(py),
        };
        Ok((PyList::new(py, slots)?, account))
    }

    /// Lifts slot and account versions above a store's ({slot_id: version}, account
    /// version); a floor above 2**53 is no kernel's and is ignored.
    #[pyo3(signature = (slot_versions, account_version = None))]
    fn raise_versions(&mut self, slot_versions: std::collections::HashMap<u32, u64>, account_version: Option<u64>) {
        let floors: Vec<(u32, u64)> = slot_versions.into_iter().collect();
        self.core().raise_versions(&floors, account_version);
    }

    /// Signs every slot and account document this kernel builds from now on
    /// (`drain_documents`, a store writer's feed) with HMAC-SHA256 under `key`
    /// (16 to 4096 bytes); None: unsigned. Not part of checkpoints.
    #[pyo3(signature = (key))]
    fn set_document_key(&mut self, key: Option<&[u8]>) -> PyResult<()> {
        let key = key.map(DocumentKey::new).transpose().map_err(input_error)?;
        self.core().set_document_key(key);
        Ok(())
    }

    /// Every slot and the account count as changed: the next drain returns all.
    fn mark_all_changed(&mut self) {
        self.core().mark_all_changed();
    }

    /// Changed slots and account as JSON documents built in Rust, for stores:
    /// ([(key, version, json), ...], (version, json) or None); signed when
    /// the kernel has a document key.
    #[pyo3(signature = (kernel_id, now = None))]
    fn drain_documents(&mut self, kernel_id: &str, now: Option<&Bound<'_, PyAny>>) -> PyResult<DrainedDocuments> {
        let now = timestamp_arg("now", now)?;
        let docs = guard(|| self.core().drain_documents(kernel_id, now))?;
        Ok((docs.slots, docs.account))
    }

    fn checkpoint<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.core().checkpoint())
    }

    #[staticmethod]
    fn restore(data: &[u8]) -> PyResult<PyKernel> {
        Ok(PyKernel::of(Kernel::restore(data).map_err(input_error)?))
    }
}
