//! Bad input, reported as which field, which value and why.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct InputError {
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl InputError {
    pub fn new(field: impl Into<String>, value: impl fmt::Display, reason: impl Into<String>) -> InputError {
        InputError {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: {}", self.field, self.value, self.reason)
    }
}

impl std::error::Error for InputError {}

/// A float that must be finite and at least `min` (`strict` makes it greater than).
#[inline]
pub fn check_number(field: &str, value: f64, min: f64, strict: bool) -> Result<f64, InputError> {
    let in_range = if strict { value > min } else { value >= min };
    if in_range && value.abs() <= MAX_MAGNITUDE {
        return Ok(value);
    }
    refuse_number(field, value, min, strict)
}

#[cold]
fn refuse_number(field: &str, value: f64, min: f64, strict: bool) -> Result<f64, InputError> {
    if !value.is_finite() {
        return Err(InputError::new(field, value, "must be a finite number"));
    }
    if value < min || (strict && value == min) {
        let rel = if strict { "greater than" } else { "at least" };
        return Err(InputError::new(field, value, format!("must be {rel} {min}")));
    }
    if value.abs() > MAX_MAGNITUDE {
        return Err(InputError::new(
            field,
            value,
            format!("is beyond {MAX_MAGNITUDE:e}, the largest figure the kernel accepts"),
        ));
    }
    Ok(value)
}

/// Far above any price, size or balance, yet small enough that products of
/// two figures stay finite: a value past it is a unit or parsing mistake.
pub const MAX_MAGNITUDE: f64 = 1e15;

/// The bound on figures the kernel derives from accepted ones (PnL is a price
/// difference times a size, a size a sum of fills): what its own calls can
/// reach, with room to spare, so every state it reaches it also takes back.
pub const MAX_DERIVED: f64 = 1e31;

/// A derived figure: finite, at least `min`, within `MAX_DERIVED`.
pub fn check_derived(field: &str, value: f64, min: f64) -> Result<f64, InputError> {
    if !value.is_finite() {
        return Err(InputError::new(field, value, "must be a finite number"));
    }
    if value < min {
        return Err(InputError::new(field, value, format!("must be at least {min}")));
    }
    if value.abs() > MAX_DERIVED {
        return Err(InputError::new(
            field,
            value,
            format!("is beyond {MAX_DERIVED:e}, more than any sequence of accepted calls can reach"),
        ));
    }
    Ok(value)
}
