//! The contracts as Python classes: immutable wrappers around kernel values.
//!
//! Built from keyword arguments (a wrong type raises TypeError, an unknown
//! field or enum text ValueError, each naming the field), read through
//! properties, and turned into plain dicts with `to_dict`.

use dita_kernel::{Intent, Order, Outcome, Slot, Transition, VenueEvent};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{from_py, getters, normalized_fields, to_py, ToPy};

macro_rules! value_class {
    ($class:ident, $inner:ty, $name:literal, $sig:literal) => {
        #[pyclass(frozen, module = "dita._native", name = $name)]
        #[derive(Clone)]
        pub struct $class {
            pub inner: $inner,
        }

        #[pymethods]
        impl $class {
            #[new]
            #[pyo3(signature = (**fields), text_signature = $sig)]
            fn new(py: Python<'_>, fields: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
                let fields = normalized_fields(py, fields)?;
                Ok($class {
                    inner: from_py(&fields, $name)?,
                })
            }

            /// A plain dict: enums as text, times as RFC 3339 text.
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                to_py(py, &self.inner)
            }

            /// A copy with some fields changed, checked like the constructor.
            #[pyo3(signature = (**changes))]
            fn replace(&self, py: Python<'_>, changes: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
                let fields = to_py(py, &self.inner)?.downcast_into::<PyDict>()?;
                if let Some(changes) = changes {
                    fields.update(normalized_fields(py, Some(changes))?.as_mapping())?;
                }
                Ok($class {
                    inner: from_py(&fields, $name)?,
                })
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
                other
                    .downcast::<$class>()
                    .is_ok_and(|o| o.get().inner == self.inner)
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let fields = to_py(py, &self.inner)?.downcast_into::<PyDict>()?;
                let parts = fields
                    .iter()
                    .map(|(k, v)| Ok(format!("{}={}", k, v.repr()?)))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(format!("{}({})", $name, parts.join(", ")))
            }
        }
    };
}

value_class!(
    PyIntent,
    Intent,
    "KernelIntent",
    "(*, action, slot_id, trade_id='', asset='', side='FLAT', intent_id='', timestamp=None, reference_price=0.0, target_size=0.0, leverage=1.0, exit_leg_ratios=None, reason='', metadata=None, stage='IDLE', order_type='MARKET', limit_price=0.0)"
);
getters!(PyIntent {
    timestamp,
    intent_id,
    trade_id,
    slot_id,
    asset,
    side,
    action,
    reference_price,
    target_size,
    leverage,
    exit_leg_ratios,
    reason,
    metadata,
    stage,
    order_type,
    limit_price
});

value_class!(
    PyVenueEvent,
    VenueEvent,
    "VenueEvent",
    "(*, event_id, kind, venue_client_id='', venue_order_id='', trade_id='', slot_id=-1, timestamp=None, status=None, side='FLAT', asset='', price=0.0, size=0.0, filled_size=0.0, remaining_size=0.0, reason='', retry_after_ms=0, raw_payload=None, metadata=None)"
);
getters!(PyVenueEvent {
    timestamp,
    event_id,
    trade_id,
    slot_id,
    kind,
    venue_order_id,
    venue_client_id,
    side,
    asset,
    price,
    size,
    filled_size,
    remaining_size,
    reason,
    retry_after_ms,
    raw_payload,
    metadata
});

#[pymethods]
impl PyVenueEvent {
    /// The status the venue reported, or the one its kind implies.
    #[getter]
    fn status(&self, py: Python<'_>) -> PyResult<PyObject> {
        self.inner.status().to_py(py)
    }
}

value_class!(
    PyOrder,
    Order,
    "VenueOrder",
    "(*, internal_trade_id='', venue_order_id='', venue_client_id='', side='FLAT', order_type='MARKET', intended_size=0.0, filled_size=0.0, average_fill_price=0.0, status='NEW', reason='', metadata=None)"
);
getters!(PyOrder {
    internal_trade_id,
    venue_order_id,
    venue_client_id,
    side,
    order_type,
    intended_size,
    filled_size,
    average_fill_price,
    status,
    reason,
    metadata
});

#[pymethods]
impl PyOrder {
    fn remaining(&self) -> f64 {
        self.inner.remaining()
    }

    fn is_working(&self) -> bool {
        self.inner.is_working()
    }
}

impl ToPy for Order {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        Ok(Bound::new(py, PyOrder { inner: self.clone() })?.into_any().unbind())
    }
}

value_class!(
    PySlot,
    Slot,
    "TradeSlot",
    "(*, slot_id=0, trade_id='', asset='', side='FLAT', entry_price=0.0, size=0.0, initial_size=0.0, leverage=0.0, entry_time=None, unrealized_pnl=0.0, realized_pnl=0.0, closed=False, exit_leg_ratios=None, active_leg_index=0, active_entry_order=None, active_exit_order=None, fsm_state='IDLE', close_reason='', last_event_time=None, seen_event_ids=(), metadata=None, last_mark_price=0.0, version=0)"
);
getters!(PySlot {
    slot_id,
    trade_id,
    asset,
    side,
    entry_price,
    size,
    initial_size,
    leverage,
    entry_time,
    unrealized_pnl,
    realized_pnl,
    closed,
    exit_leg_ratios,
    active_leg_index,
    active_entry_order,
    active_exit_order,
    fsm_state,
    close_reason,
    last_event_time,
    seen_event_ids,
    metadata,
    last_mark_price,
    version
});

#[pymethods]
impl PySlot {
    /// IDLE or CLOSED: the next ENTER may use this slot.
    fn is_free(&self) -> bool {
        self.inner.is_free()
    }

    /// Holds a position that price moves change.
    fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    /// The fraction of initial_size the active exit leg stands for.
    fn next_exit_ratio(&self) -> f64 {
        self.inner.next_exit_ratio()
    }

    /// The quantity the next EXIT will work.
    fn next_exit_size(&self) -> f64 {
        self.inner.next_exit_size()
    }
}

#[pyclass(frozen, module = "dita._native", name = "KernelTransition")]
pub struct PyTransition {
    pub inner: Transition,
}

getters!(PyTransition {
    timestamp,
    trade_id,
    slot_id,
    prev_state,
    next_state,
    trigger,
    intent_id,
    event_id,
    control_mode,
    control_verbosity,
    details
});

#[pymethods]
impl PyTransition {
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        let t = &self.inner;
        format!(
            "KernelTransition(slot {}: {} -{}-> {})",
            t.slot_id, t.prev_state, t.trigger, t.next_state
        )
    }
}

#[pyclass(frozen, module = "dita._native", name = "KernelOutcome")]
pub struct PyOutcome {
    pub inner: Outcome,
}

getters!(PyOutcome {
    accepted,
    slot_id,
    trade_id,
    state,
    diagnostic_code,
    severity,
    details,
    order
});

#[pymethods]
impl PyOutcome {
    #[getter]
    fn transitions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .inner
            .transitions
            .iter()
            .map(|t| Bound::new(py, PyTransition { inner: t.clone() }))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    #[getter]
    fn emitted_events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let items = self
            .inner
            .emitted_events
            .iter()
            .map(|e| Bound::new(py, PyVenueEvent { inner: e.clone() }))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// This intent's outcome once the venue's immediate answers are applied.
    fn followed_by(&self, answers: Vec<PyRef<'_, PyOutcome>>, emitted: Vec<PyRef<'_, PyVenueEvent>>) -> PyOutcome {
        let answers = answers.iter().map(|a| a.inner.clone()).collect();
        let emitted = emitted.iter().map(|e| e.inner.clone()).collect();
        PyOutcome {
            inner: self.inner.clone().followed_by(answers, emitted),
        }
    }

    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        let o = &self.inner;
        format!(
            "KernelOutcome(accepted={}, slot_id={}, state={}, diagnostic_code={}, details={})",
            if o.accepted { "True" } else { "False" },
            o.slot_id,
            o.state,
            o.diagnostic_code,
            serde_json::to_string(&o.details).unwrap_or_default()
        )
    }
}
