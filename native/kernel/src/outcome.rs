//! What comes out of the kernel: an outcome per call, with the transitions it made.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::messages::VenueEvent;
use crate::order::{Id, Order};
use crate::time::Timestamp;
use crate::types::{DiagnosticCode, Mode, Severity, Stage, Verbosity};

#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    Text(String),
    Id(Id),
    Static(&'static str),
    Number(f64),
    Integer(i64),
    Flag(bool),
}

impl From<&str> for Detail {
    fn from(v: &str) -> Self {
        Detail::Text(v.to_owned())
    }
}
impl From<&Id> for Detail {
    fn from(v: &Id) -> Self {
        Detail::Id(v.clone())
    }
}
impl From<String> for Detail {
    fn from(v: String) -> Self {
        Detail::Text(v)
    }
}
impl From<f64> for Detail {
    fn from(v: f64) -> Self {
        Detail::Number(v)
    }
}
impl From<i64> for Detail {
    fn from(v: i64) -> Self {
        Detail::Integer(v)
    }
}
impl From<u64> for Detail {
    fn from(v: u64) -> Self {
        Detail::Integer(v as i64)
    }
}
impl From<bool> for Detail {
    fn from(v: bool) -> Self {
        Detail::Flag(v)
    }
}

impl Serialize for Detail {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Detail::Text(v) => s.serialize_str(v),
            Detail::Id(v) => s.serialize_str(v),
            Detail::Static(v) => s.serialize_str(v),
            // JSON has no NaN: a refused non-finite value is reported as its text.
            Detail::Number(v) if !v.is_finite() => s.serialize_str(&v.to_string()),
            Detail::Number(v) => s.serialize_f64(*v),
            Detail::Integer(v) => s.serialize_i64(*v),
            Detail::Flag(v) => s.serialize_bool(*v),
        }
    }
}

/// Ordered key/value details; a later key replaces an earlier one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Details(pub Vec<(&'static str, Detail)>);

impl Details {
    pub fn with_capacity(n: usize) -> Details {
        Details(Vec::with_capacity(n))
    }

    pub fn with(mut self, key: &'static str, value: impl Into<Detail>) -> Self {
        self.set(key, value);
        self
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Detail>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Adds a key these details do not hold yet: no search for it.
    pub fn push(&mut self, key: &'static str, value: impl Into<Detail>) {
        debug_assert!(self.get(key).is_none(), "detail {key} set twice");
        self.0.push((key, value.into()));
    }

    pub fn get(&self, key: &str) -> Option<&Detail> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Details {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    pub timestamp: Timestamp,
    pub trade_id: Id,
    pub slot_id: u32,
    pub prev_state: Stage,
    pub next_state: Stage,
    pub trigger: &'static str,
    pub intent_id: Id,
    pub event_id: Id,
    pub control_mode: Mode,
    pub control_verbosity: Verbosity,
    pub details: Details,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    pub accepted: bool,
    pub slot_id: i64,
    pub trade_id: Id,
    pub state: Stage,
    pub diagnostic_code: DiagnosticCode,
    pub severity: Severity,
    pub transitions: Vec<Transition>,
    pub emitted_events: Vec<VenueEvent>,
    pub details: Details,
    /// The order a venue adapter should now submit or cancel, if any.
    pub order: Option<Order>,
}

impl Outcome {
    pub fn refused(code: DiagnosticCode, slot_id: i64, trade_id: &Id, state: Stage, details: Details) -> Outcome {
        Outcome {
            accepted: false,
            slot_id,
            trade_id: trade_id.clone(),
            state,
            diagnostic_code: code,
            severity: code.severity(),
            transitions: Vec::new(),
            emitted_events: Vec::new(),
            details,
            order: None,
        }
    }

    /// The outcome of an intent once the venue's immediate answers are in:
    /// their transitions appended, the slot's final state, and a venue that
    /// rate-limited the request turning the answer into a retryable refusal.
    pub fn followed_by(mut self, answers: Vec<Outcome>, emitted: Vec<VenueEvent>) -> Outcome {
        for answer in answers {
            if answer.slot_id == self.slot_id && answer.accepted {
                self.state = answer.state;
            }
            if answer.accepted && answer.diagnostic_code == DiagnosticCode::RateLimited {
                self.accepted = false;
                self.diagnostic_code = DiagnosticCode::RateLimited;
                self.severity = Severity::Warning;
                for (k, v) in answer.details.0 {
                    self.details.set(k, v);
                }
            }
            self.transitions.extend(answer.transitions);
        }
        self.emitted_events = emitted;
        self
    }
}
