//! The projection writer as a Python class: documents go from a kernel to
//! the writer's threads without becoming Python objects on the way.

use std::sync::Arc;
use std::time::Duration;

use dita_kernel::{Documents, Timestamp};
use dita_store::{codec, Config, Document, Feed, Source, Wake, Writer};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::kernel::{KernelCell, PyKernel};

pyo3::create_exception!(
    _native,
    StoreUnreachable,
    PyRuntimeError,
    "No member of the cluster accepted the projection writer."
);

/// Map indices of the documents a kernel drains.
const SLOTS: usize = 0;
const ACCOUNTS: usize = 1;

fn seconds(field: &str, value: f64) -> PyResult<Duration> {
    if value.is_finite() && value > 0.0 && value < 1e6 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(PyValueError::new_err(format!(
            "{field} = {value}: must be a number of seconds above 0"
        )))
    }
}

#[pyclass(module = "dita._native", name = "StoreWriter")]
pub struct PyStoreWriter {
    writer: Arc<Writer>,
    feed: Feed,
}

/// An attached kernel, as the feed sees it.
struct KernelSource {
    cell: Arc<KernelCell>,
    kernel_id: String,
}

impl Source for KernelSource {
    fn take(&self) -> Vec<Document> {
        // Only taking the changed slots holds the kernel; their JSON is built
        // and signed while the kernel's thread runs on.
        let (changes, key) = {
            let mut held = self.cell.lock();
            (held.kernel.drain_changes(), held.kernel.document_key())
        };
        if changes.slots.is_empty() && changes.account.is_none() {
            return Vec::new();
        }
        let drained = Documents::of(&changes, &self.kernel_id, Timestamp::now(), key.as_deref());
        let slots = drained.slots.into_iter().map(|(key, version, json)| Document {
            map: SLOTS,
            key,
            version,
            json,
        });
        let account = drained.account.map(|(version, json)| Document {
            map: ACCOUNTS,
            key: self.kernel_id.clone(),
            version,
            json,
        });
        slots.chain(account).collect()
    }

    fn has_changes(&self) -> bool {
        self.cell.lock().kernel.pending_changes() > 0
    }

    fn mark_all_changed(&self) {
        self.cell.lock().kernel.mark_all_changed();
    }

    fn watch(&self, wake: &Arc<Wake>) {
        self.cell.lock().wakes.push(wake.clone());
    }

    fn unwatch(&self, wake: &Arc<Wake>) {
        self.cell.lock().wakes.retain(|w| !Arc::ptr_eq(w, wake));
    }
}

#[pymethods]
impl PyStoreWriter {
    #[new]
    #[pyo3(signature = (
        members, cluster_name, *, slots_map = "dita.slots", accounts_map = "dita.accounts",
        client_name = "dita-store", client_version = "5.7.0", connect_timeout = 5.0, max_in_flight = 512,
        ping_interval = 5.0, answer_timeout = 10.0, gap = 0.0005, idle = 0.05,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        members: Vec<String>,
        cluster_name: String,
        slots_map: &str,
        accounts_map: &str,
        client_name: &str,
        client_version: &str,
        connect_timeout: f64,
        max_in_flight: usize,
        ping_interval: f64,
        answer_timeout: f64,
        gap: f64,
        idle: f64,
    ) -> PyResult<Self> {
        if members.is_empty() {
            return Err(PyValueError::new_err("members = []: give at least one 'host:port'"));
        }
        if max_in_flight == 0 {
            return Err(PyValueError::new_err("max_in_flight = 0: must be at least 1"));
        }
        let mut config = Config::new(
            members,
            cluster_name,
            vec![slots_map.to_owned(), accounts_map.to_owned()],
        );
        config.client_name = client_name.to_owned();
        config.client_version = client_version.to_owned();
        config.connect_timeout = seconds("connect_timeout", connect_timeout)?;
        config.max_in_flight = max_in_flight;
        config.ping_interval = seconds("ping_interval", ping_interval)?;
        config.answer_timeout = seconds("answer_timeout", answer_timeout)?;
        let (gap, idle) = (seconds("gap", gap)?, seconds("idle", idle)?);
        let writer = Arc::new(
            py.allow_threads(|| Writer::start(config))
                .map_err(|e| StoreUnreachable::new_err(e.0))?,
        );
        let feed = Feed::start(writer.clone(), gap, idle)
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the projection feed thread: {e}")))?;
        Ok(PyStoreWriter { writer, feed })
    }

    /// Writes `kernel`'s changes under `kernel_id` from now on, as they happen
    /// (everything it holds first); replaces a kernel attached under that id.
    fn attach(&self, py: Python<'_>, kernel: PyRef<'_, PyKernel>, kernel_id: &str) {
        let source = Arc::new(KernelSource {
            cell: kernel.cell.clone(),
            kernel_id: kernel_id.to_owned(),
        });
        drop(kernel);
        py.allow_threads(|| self.feed.attach(kernel_id, source));
    }

    /// Stops writing the kernel attached under `kernel_id`; False when none is.
    fn detach(&self, py: Python<'_>, kernel_id: &str) -> bool {
        py.allow_threads(|| self.feed.detach(kernel_id))
    }

    /// Hands what changed in every attached kernel to the writer now; returns
    /// how many documents that was. Never waits for the cluster.
    fn drain(&self, py: Python<'_>) -> usize {
        py.allow_threads(|| self.feed.drain())
    }

    /// Waits until everything submitted before the call is acknowledged;
    /// False when `timeout` seconds passed first or no member is connected.
    fn flush(&self, py: Python<'_>, timeout: f64) -> PyResult<bool> {
        let timeout = if timeout <= 0.0 {
            Duration::ZERO
        } else {
            seconds("timeout", timeout)?
        };
        Ok(py.allow_threads(|| self.writer.flush(timeout)))
    }

    /// Counters: writes, batches, errors, resyncs, last_error, last_write_at,
    /// lag_ms_p50, lag_ms_p99, lag_ms_max, backlog, in_flight, connected, generation, partition_count.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = py.allow_threads(|| self.writer.stats());
        let d = PyDict::new(py);
        d.set_item("writes", s.writes)?;
        d.set_item("batches", s.batches)?;
        d.set_item("errors", s.errors)?;
        d.set_item("resyncs", s.resyncs)?;
        d.set_item("last_error", s.last_error)?;
        d.set_item("last_write_at", s.last_write_at)?;
        d.set_item("lag_ms_p50", s.lag_ms_p50)?;
        d.set_item("lag_ms_p99", s.lag_ms_p99)?;
        d.set_item("lag_ms_max", s.lag_ms_max)?;
        d.set_item("backlog", s.backlog)?;
        d.set_item("in_flight", s.in_flight)?;
        d.set_item("connected", s.connected)?;
        d.set_item("generation", s.generation)?;
        d.set_item("partition_count", s.partition_count)?;
        Ok(d)
    }

    /// Keys submitted and not yet acknowledged (at most one document per key).
    #[getter]
    fn backlog(&self, py: Python<'_>) -> usize {
        py.allow_threads(|| self.writer.backlog())
    }

    #[getter]
    fn connected(&self, py: Python<'_>) -> bool {
        py.allow_threads(|| self.writer.connected())
    }

    /// Grows on every reconnection: the cluster may have lost everything, so
    /// every kernel must submit all its keys again.
    #[getter]
    fn generation(&self, py: Python<'_>) -> u64 {
        py.allow_threads(|| self.writer.generation())
    }

    /// Stops the writer's threads and closes its connection (flush first).
    fn close(&self, py: Python<'_>) {
        py.allow_threads(|| {
            self.feed.close();
            self.writer.close();
        });
    }
}

/// The `Map.putAll` request the writer sends for one document, and its
/// partition out of `partition_count` (for checking against the client's codec).
#[pyfunction]
pub fn _put_all_request_for_test<'py>(
    py: Python<'py>,
    map_name: &str,
    key: &str,
    json: &str,
    partition_count: u32,
) -> (u32, Bound<'py, PyBytes>) {
    let partition = codec::partition_of(key, partition_count);
    let request = codec::put_all(map_name, partition, [(key, json)]);
    (partition, PyBytes::new(py, request.bytes()))
}
