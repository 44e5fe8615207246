//! Conversions between Python objects and the kernel's types, and errors.

use dita_kernel::seen::SeenIds;
use dita_kernel::{
    Command, Detail, Details, DiagnosticCode, EventKind, EventStatus, Id, InputError, Metadata, Mode, OrderStatus,
    OrderType, Severity, Side, Stage, Timestamp, Verbosity,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::DeserializeOwned;
use serde::Serialize;

pyo3::create_exception!(
    _native,
    KernelPanic,
    pyo3::exceptions::PyRuntimeError,
    "The Rust kernel hit a bug and stopped the call; restore the kernel from a checkpoint."
);

pub fn input_error(e: InputError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Runs a kernel call, turning a Rust panic into a Python exception that
/// `except Exception` catches (PyO3's own PanicException is a BaseException).
pub fn guard<T>(f: impl FnOnce() -> T) -> PyResult<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        KernelPanic::new_err(format!("kernel panic: {msg}"))
    })
}

/// How deep a Python object may nest on its way in: metadata's own limit
/// plus the containers a slot puts around it (slot, order, metadata).
const MAX_NESTING: usize = dita_kernel::validate::MAX_METADATA_DEPTH + 4;

/// Refuses objects nested deeper than `MAX_NESTING` before they are converted:
/// the conversion recurses once per level, and a deep enough object would
/// overflow the stack and kill the interpreter. Walked without recursion.
fn check_nesting<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<()> {
    // (object, depth, the top-level field it sits under)
    let mut stack: Vec<(Bound<'py, PyAny>, usize, String)> = vec![(obj.clone(), 0, String::new())];
    while let Some((o, depth, top)) = stack.pop() {
        let children: Vec<(Bound<'py, PyAny>, Option<String>)> = if let Ok(d) = o.downcast::<PyDict>() {
            d.iter()
                .map(|(k, v)| (v, k.str().ok().map(|s| s.to_string())))
                .collect()
        } else if let Ok(l) = o.downcast::<PyList>() {
            l.iter().map(|v| (v, None)).collect()
        } else if let Ok(t) = o.downcast::<PyTuple>() {
            t.iter().map(|v| (v, None)).collect()
        } else {
            continue;
        };
        if depth >= MAX_NESTING {
            return Err(too_deep(what, &top));
        }
        for (v, key) in children {
            let top = if depth == 0 {
                key.unwrap_or_default()
            } else {
                top.clone()
            };
            stack.push((v, depth + 1, top));
        }
    }
    Ok(())
}

#[cold]
fn too_deep(what: &str, top: &str) -> PyErr {
    let field = if top.is_empty() {
        what.to_owned()
    } else {
        format!("{what}.{top}")
    };
    PyValueError::new_err(format!(
        "{field}: nested more than {MAX_NESTING} levels deep: metadata may nest at most {} levels",
        dita_kernel::validate::MAX_METADATA_DEPTH
    ))
}

/// A dict (or keyword arguments) into a kernel type; the error names the field.
pub fn from_py<T: DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    check_nesting(obj, what)?;
    let mut de = pythonize::Depythonizer::from_object(obj);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let msg = if path == "." {
            format!("{what}: {inner}")
        } else {
            format!("{what}.{path}: {inner}")
        };
        let wrong_type =
            inner.contains("invalid type") || inner.contains("TypeError") || inner.contains("unknown field");
        if wrong_type {
            PyTypeError::new_err(msg)
        } else {
            PyValueError::new_err(msg)
        }
    })
}

pub fn to_py<'py, T: Serialize + ?Sized>(py: Python<'py>, value: &T) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, value).map_err(|e| PyValueError::new_err(e.to_string()))
}

const TIME_FIELDS: &[&str] = &["timestamp", "entry_time", "last_event_time"];
/// Fields where None means "the default" (now, one leg, no metadata) rather than a value.
const NONE_IS_DEFAULT: &[&str] = &["timestamp", "exit_leg_ratios", "metadata", "raw_payload"];

/// Keyword arguments with datetimes turned into epoch seconds, which the
/// kernel's serde types read; a naive datetime is refused, not guessed at.
pub fn normalized_fields<'py>(py: Python<'py>, fields: Option<&Bound<'py, PyDict>>) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let Some(fields) = fields else { return Ok(out) };
    for (k, v) in fields.iter() {
        let key: String = k.extract()?;
        if v.is_none() && NONE_IS_DEFAULT.contains(&key.as_str()) {
            continue;
        }
        let v = if TIME_FIELDS.contains(&key.as_str()) {
            time_value(&key, &v)?
        } else {
            v
        };
        out.set_item(key, v)?;
    }
    Ok(out)
}

fn time_value<'py>(field: &str, v: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if v.is_none() || v.is_instance_of::<PyFloat>() || v.is_instance_of::<PyInt>() || v.is_instance_of::<PyString>() {
        return Ok(v.clone());
    }
    if v.hasattr("tzinfo")? && v.hasattr("timestamp")? {
        if v.getattr("tzinfo")?.is_none() {
            return Err(PyValueError::new_err(format!(
                "{field}: {v} is a naive datetime: give a timezone-aware one (e.g. tzinfo=timezone.utc)"
            )));
        }
        return v.call_method0("timestamp");
    }
    Err(PyTypeError::new_err(format!(
        "{field}: {} is not a time: give a timezone-aware datetime, epoch seconds or RFC 3339 text",
        v.get_type().name()?
    )))
}

pub fn timestamp_arg(field: &str, v: Option<&Bound<'_, PyAny>>) -> PyResult<Timestamp> {
    let Some(v) = v.filter(|v| !v.is_none()) else {
        return Ok(Timestamp::now());
    };
    let v = time_value(field, v)?;
    if let Ok(text) = v.extract::<String>() {
        return Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| PyValueError::new_err(format!("{field}: '{text}' is not RFC 3339 time")));
    }
    let secs: f64 = v.extract()?;
    Timestamp::from_secs_f64(secs).ok_or_else(|| PyValueError::new_err(format!("{field}: {secs} is out of range")))
}

// ----- enums: the kernel's values as members of dita.enums' Python classes ---

struct EnumMembers {
    side: Vec<PyObject>,
    stage: Vec<PyObject>,
    command: Vec<PyObject>,
    event_kind: Vec<PyObject>,
    event_status: Vec<PyObject>,
    order_status: Vec<PyObject>,
    order_type: Vec<PyObject>,
    code: Vec<PyObject>,
    severity: Vec<PyObject>,
    mode: Vec<PyObject>,
    verbosity: Vec<PyObject>,
}

static ENUMS: GILOnceCell<EnumMembers> = GILOnceCell::new();

fn members(py: Python<'_>) -> PyResult<&'static EnumMembers> {
    ENUMS.get_or_try_init(py, || {
        let module = py.import("dita.enums")?;
        let load = |class: &str, values: &[&str]| -> PyResult<Vec<PyObject>> {
            let cls = module.getattr(class)?;
            values.iter().map(|v| cls.call1((*v,)).map(|m| m.unbind())).collect()
        };
        fn texts<E: Copy>(all: &[E], f: fn(E) -> &'static str) -> Vec<&'static str> {
            all.iter().map(|e| f(*e)).collect()
        }
        Ok(EnumMembers {
            side: load("TradeSide", &texts(Side::ALL, Side::as_str))?,
            stage: load("TradeStage", &texts(Stage::ALL, Stage::as_str))?,
            command: load("KernelCommandType", &texts(Command::ALL, Command::as_str))?,
            event_kind: load("KernelEventKind", &texts(EventKind::ALL, EventKind::as_str))?,
            event_status: load("VenueEventStatus", &texts(EventStatus::ALL, EventStatus::as_str))?,
            order_status: load("VenueOrderStatus", &texts(OrderStatus::ALL, OrderStatus::as_str))?,
            order_type: load("OrderType", &texts(OrderType::ALL, OrderType::as_str))?,
            code: load(
                "KernelDiagnosticCode",
                &texts(DiagnosticCode::ALL, DiagnosticCode::as_str),
            )?,
            severity: load("KernelSeverity", &texts(Severity::ALL, Severity::as_str))?,
            mode: load("KernelMode", &texts(Mode::ALL, Mode::as_str))?,
            verbosity: load("KernelVerbosity", &texts(Verbosity::ALL, Verbosity::as_str))?,
        })
    })
}

/// A kernel value as a Python object, for getters.
pub trait ToPy {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject>;
}

macro_rules! enum_to_py {
    ($($t:ty => $field:ident),+) => {$(
        impl ToPy for $t {
            fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
                Ok(members(py)?.$field[self.index()].clone_ref(py))
            }
        }
    )+};
}

enum_to_py!(
    Side => side, Stage => stage, Command => command, EventKind => event_kind,
    EventStatus => event_status, OrderStatus => order_status, OrderType => order_type,
    DiagnosticCode => code, Severity => severity, Mode => mode, Verbosity => verbosity
);

macro_rules! plain_to_py {
    ($($t:ty),+) => {$(
        impl ToPy for $t {
            fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
                Ok(self.into_pyobject(py)?.to_owned().into_any().unbind())
            }
        }
    )+};
}

plain_to_py!(String, f64, u32, i64, u64, bool, Vec<f64>);

impl ToPy for &'static str {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        Ok(PyString::new(py, self).into_any().unbind())
    }
}

impl ToPy for Id {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        Ok(PyString::new(py, self).into_any().unbind())
    }
}

impl ToPy for SeenIds {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        Ok(PyTuple::new(py, self.iter())?.into_any().unbind())
    }
}

impl ToPy for Metadata {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        if self.is_empty() {
            return Ok(PyDict::new(py).into_any().unbind());
        }
        Ok(to_py(py, self)?.unbind())
    }
}

struct DateTimeApi {
    fromtimestamp: PyObject,
    utc: PyObject,
}

static DATETIME: GILOnceCell<DateTimeApi> = GILOnceCell::new();

impl ToPy for Timestamp {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        let api = DATETIME.get_or_try_init(py, || -> PyResult<DateTimeApi> {
            let m = py.import("datetime")?;
            Ok(DateTimeApi {
                fromtimestamp: m.getattr("datetime")?.getattr("fromtimestamp")?.unbind(),
                utc: m.getattr("timezone")?.getattr("utc")?.unbind(),
            })
        })?;
        api.fromtimestamp.call1(py, (self.as_secs_f64(), api.utc.clone_ref(py)))
    }
}

impl<T: ToPy> ToPy for Option<T> {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        match self {
            Some(v) => v.to_py(py),
            None => Ok(py.None()),
        }
    }
}

impl ToPy for Details {
    fn to_py(&self, py: Python<'_>) -> PyResult<PyObject> {
        let d = PyDict::new(py);
        for (k, v) in &self.0 {
            let v: PyObject = match v {
                Detail::Text(s) => s.to_py(py)?,
                Detail::Id(s) => s.to_py(py)?,
                Detail::Static(s) => s.to_py(py)?,
                Detail::Number(n) => n.to_py(py)?,
                Detail::Integer(n) => n.to_py(py)?,
                Detail::Flag(b) => b.to_py(py)?,
            };
            d.set_item(*k, v)?;
        }
        Ok(d.into_any().unbind())
    }
}

/// Read-only properties that convert one field of the wrapped kernel value.
macro_rules! getters {
    ($class:ty { $($field:ident),+ $(,)? }) => {
        #[pymethods]
        impl $class {
            $(
                #[getter]
                fn $field(&self, py: Python<'_>) -> PyResult<PyObject> {
                    $crate::convert::ToPy::to_py(&self.inner.$field, py)
                }
            )+
        }
    };
}
pub(crate) use getters;
