//! An order the kernel asked a venue to work.

use serde::{Deserialize, Serialize};

use crate::types::{OrderStatus, OrderType, Side};

pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// Sizes within this fraction of a trade's size count as equal: fills are
/// floats, and a position worked down to 1e-12 is a closed position. Defined
/// here, with the order, so the slot reads it from the order (as it reads
/// the rest of it) and never the other way; `slot::SIZE_EPSILON` names it too.
pub const SIZE_EPSILON: f64 = 1e-9;

/// A trade, order or event id. An id is held by its slot, the indices,
/// transitions and outcomes at once, so cloning must be cheap: ids of up to
/// 23 bytes (most venue and client ids) are held inline and copied, longer
/// ones are shared behind a refcount. Inline, an id's bytes sit in the slot
/// or the index entry that holds it, so reading, hashing and dropping it
/// touch no other memory: with ids behind a pointer, each was a cache miss
/// once the kernel has more slots than the cache holds.
pub type Id = smol_str::SmolStr;

/// The client id of the kernel's `seq`-th order, `{trade}{tag}{seq}`
/// (e.g. `T1-E7`). Not `format!`: that was a fifth of an ENTER or EXIT.
pub fn client_order_id(trade: &str, tag: &str, seq: u64) -> Id {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(seq);
    let mut id = String::with_capacity(trade.len() + tag.len() + digits.len());
    id.push_str(trade);
    id.push_str(tag);
    id.push_str(digits);
    id.into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Order {
    pub internal_trade_id: Id,
    pub venue_order_id: Id,
    pub venue_client_id: Id,
    pub side: Side,
    pub order_type: OrderType,
    pub intended_size: f64,
    pub filled_size: f64,
    pub average_fill_price: f64,
    pub status: OrderStatus,
    /// The intent's reason, kept so a closing fill can say why the trade closed.
    pub reason: String,
    pub metadata: Metadata,
}

impl Default for Order {
    fn default() -> Self {
        Order {
            internal_trade_id: Id::default(),
            venue_order_id: Id::default(),
            venue_client_id: Id::default(),
            side: Side::Flat,
            order_type: OrderType::Market,
            intended_size: 0.0,
            filled_size: 0.0,
            average_fill_price: 0.0,
            status: OrderStatus::New,
            reason: String::new(),
            metadata: Metadata::new(),
        }
    }
}

impl Order {
    /// How far fills may pass `intended_size`: fills are floats, and a fill
    /// rounding just past its order completes it rather than overfilling.
    pub fn tolerance(&self) -> f64 {
        SIZE_EPSILON * self.intended_size.max(1.0)
    }

    pub fn remaining(&self) -> f64 {
        (self.intended_size - self.filled_size).max(0.0)
    }

    /// Still at the venue: a cancel can reach it and events can follow.
    pub fn is_working(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::New
                | OrderStatus::Sent
                | OrderStatus::Acked
                | OrderStatus::PartiallyFilled
                | OrderStatus::CancelRequested
        )
    }

    /// Records one execution and moves the average fill price.
    pub fn apply_fill(&mut self, price: f64, qty: f64) {
        let filled = self.filled_size + qty;
        self.average_fill_price = (self.average_fill_price * self.filled_size + price * qty) / filled;
        self.filled_size = filled;
    }
}

#[cfg(test)]
mod tests {
    use super::client_order_id;

    #[test]
    fn client_order_ids_read_as_trade_tag_and_sequence() {
        for seq in [0, 7, 10, 1_234_567, u64::MAX] {
            assert_eq!(&*client_order_id("T1", "-X", seq), format!("T1-X{seq}"));
        }
        assert_eq!(&*client_order_id("", "-E", 42), "-E42");
    }
}
