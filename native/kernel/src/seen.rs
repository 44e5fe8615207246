//! The event ids a slot has applied, for idempotency.

use std::collections::VecDeque;
use std::hash::Hasher;

use rustc_hash::FxHasher;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::order::Id;

/// Event ids, newest last, each with a 32-bit fingerprint kept beside it.
///
/// The duplicate check runs on every venue event. Scanning the ids alone
/// reads each one's heap bytes, a cache miss apiece once a kernel has more
/// slots than the cache holds; the fingerprints sit in one contiguous block,
/// and an id's bytes are read only when its fingerprint matches.
#[derive(Clone, Debug, Default)]
pub struct SeenIds {
    ids: VecDeque<Id>,
    prints: VecDeque<u32>,
}

/// Room made at a slot's first event.
const FIRST_ROOM: usize = 8;

fn fingerprint(id: &str) -> u32 {
    let mut h = FxHasher::default();
    h.write(id.as_bytes());
    (h.finish() >> 32) as u32
}

impl SeenIds {
    pub fn contains(&self, id: &str) -> bool {
        let print = fingerprint(id);
        self.prints
            .iter()
            .enumerate()
            .any(|(i, &p)| p == print && &*self.ids[i] == id)
    }

    /// Remembers `id`, forgetting the oldest ones beyond `capacity`.
    pub fn push_bounded(&mut self, id: &Id, capacity: usize) {
        if capacity == 0 {
            return;
        }
        self.truncate_oldest(capacity - 1);
        if self.ids.capacity() == 0 {
            // A trade sees about seven events (ack, fills, exit legs): room for
            // eight at once, not a growth from four to eight on both queues.
            let room = capacity.min(FIRST_ROOM);
            self.ids.reserve_exact(room);
            self.prints.reserve_exact(room);
        }
        self.prints.push_back(fingerprint(id));
        self.ids.push_back(id.clone());
    }

    /// Forgets the oldest ids until at most `keep` remain.
    pub fn truncate_oldest(&mut self, keep: usize) {
        while self.ids.len() > keep {
            self.ids.pop_front();
            self.prints.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Id> {
        self.ids.iter()
    }
}

impl PartialEq for SeenIds {
    fn eq(&self, other: &Self) -> bool {
        self.ids == other.ids
    }
}

impl<I: Into<Id>> FromIterator<I> for SeenIds {
    fn from_iter<T: IntoIterator<Item = I>>(iter: T) -> Self {
        let ids: VecDeque<Id> = iter.into_iter().map(Into::into).collect();
        let prints = ids.iter().map(|id| fingerprint(id)).collect();
        SeenIds { ids, prints }
    }
}

impl Serialize for SeenIds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ids.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SeenIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(VecDeque::<Id>::deserialize(deserializer)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_ids_and_finds_only_those() {
        let mut seen = SeenIds::default();
        for i in 0..10 {
            seen.push_bounded(&Id::from(format!("e{i}")), 4);
        }
        assert_eq!(seen.len(), 4);
        assert!(seen.contains("e9") && seen.contains("e6"));
        assert!(!seen.contains("e5") && !seen.contains("e"));
        let round_trip: SeenIds = serde_json::from_str(&serde_json::to_string(&seen).unwrap()).unwrap();
        assert_eq!(round_trip, seen);
        assert!(round_trip.contains("e7"), "fingerprints are rebuilt when read back");
    }
}
