//! dita's execution kernel, in plain Rust.
//!
//! A fixed array of trade slots, each driven through its order lifecycle by
//! intents from a strategy and events from a venue; an account that keeps the
//! kernel's own capital figure against the exchange's; change tracking for
//! projections, as signed store documents; msgpack checkpoints. Nothing here
//! knows about Python: the binding crate converts types and maps errors.

pub mod account;
pub mod documents;
pub mod error;
#[cfg(any(test, feature = "testkit"))]
pub mod invariants;
pub mod kernel;
pub mod lifecycle;
pub mod messages;
pub mod order;
pub mod outcome;
pub mod seen;
pub mod slot;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod time;
pub mod types;
pub mod validate;

pub use account::{AccountEvent, AccountView, Calibration, ExchangeConfig, ExchangeConfigUpdate, ProjectedAccount};
pub use documents::{Cut, DocumentKey, Documents, MAX_VERSION};
pub use error::InputError;
pub use kernel::{Changes, Control, Kernel};
pub use messages::{Intent, VenueEvent};
pub use order::{Id, Metadata, Order};
pub use outcome::{Detail, Details, Outcome, Transition};
pub use slot::Slot;
pub use time::Timestamp;
pub use types::*;
