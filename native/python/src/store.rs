//! The projection writer as a Python class: documents go from a kernel to
//! the writer's threads without becoming Python objects on the way.

use std::time::Duration;

use dita_kernel::{Documents, Timestamp};
use dita_store::{codec, Config, Document, Writer};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::convert::guard;
use crate::kernel::PyKernel;

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
    writer: Writer,
}

#[pymethods]
impl PyStoreWriter {
    #[new]
    #[pyo3(signature = (
        members, cluster_name, *, slots_map = "dita.slots", accounts_map = "dita.accounts",
        client_name = "dita-store", client_version = "5.7.0", connect_timeout = 5.0, max_in_flight = 512,
        ping_interval = 5.0, answer_timeout = 10.0,
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
        let writer = py
            .allow_threads(|| Writer::start(config))
            .map_err(|e| StoreUnreachable::new_err(e.0))?;
        Ok(PyStoreWriter { writer })
    }

    /// Drains what changed in `kernel` since its last drain and takes it to
    /// write; returns how many documents that was. Never waits for the cluster.
    fn submit(&self, py: Python<'_>, mut kernel: PyRefMut<'_, PyKernel>, kernel_id: &str) -> PyResult<usize> {
        // Only taking the changed slots needs the kernel (and the interpreter
        // lock); their JSON is built while the kernel's thread runs on.
        let changes = guard(|| kernel.core.drain_changes())?;
        drop(kernel);
        let now = Timestamp::now();
        Ok(py.allow_threads(|| {
            let drained = Documents::of(&changes, kernel_id, now);
            let slots = drained.slots.into_iter().map(|(key, version, json)| Document {
                map: SLOTS,
                key,
                version,
                json,
            });
            let account = drained.account.map(|(version, json)| Document {
                map: ACCOUNTS,
                key: kernel_id.to_owned(),
                version,
                json,
            });
            self.writer.submit(slots.chain(account))
        }))
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
        py.allow_threads(|| self.writer.close());
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
