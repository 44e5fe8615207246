//! The event ids a slot has applied, for idempotency.

use std::hash::Hasher;

use rustc_hash::FxHasher;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Event ids, oldest first, copied into one block: per id a 32-bit
/// fingerprint, its length, then its bytes.
///
/// The duplicate check runs on every venue event and the block is freed when
/// the slot's trade is replaced, both usually long after the slot was last
/// touched, so once a kernel has more slots than the cache holds every
/// separate allocation is a cache miss. One block costs one; a queue of ids
/// and one of fingerprints cost two, plus one per id too long to be held
/// inline. An id's bytes are compared only when its fingerprint matches.
#[derive(Clone, Debug, Default)]
pub struct SeenIds {
    /// Records from `head` on are live; those before it are forgotten and
    /// cut away once they fill half the block.
    block: Vec<u8>,
    head: usize,
    len: usize,
}

const HEADER: usize = 8;

/// Records a slot's first event makes room for: a trade sees about seven
/// events (ack, fills, exit legs), so the block never regrows for one.
const FIRST_ROOM: usize = 8;

fn fingerprint(id: &str) -> u32 {
    let mut h = FxHasher::default();
    h.write(id.as_bytes());
    (h.finish() >> 32) as u32
}

/// The live records, oldest first: (fingerprint, id bytes).
struct Records<'a> {
    block: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = (u32, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (header, rest) = self.block.split_at(HEADER);
        let print = u32::from_le_bytes(header[..4].try_into().expect("four bytes"));
        let n = u32::from_le_bytes(header[4..].try_into().expect("four bytes")) as usize;
        let (id, rest) = rest.split_at(n);
        self.block = rest;
        self.left -= 1;
        Some((print, id))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Records<'_> {}

impl SeenIds {
    fn records(&self) -> Records<'_> {
        Records {
            block: &self.block[self.head..],
            left: self.len,
        }
    }

    pub fn contains(&self, id: &str) -> bool {
        let print = fingerprint(id);
        self.records().any(|(p, bytes)| p == print && bytes == id.as_bytes())
    }

    /// Remembers `id`, forgetting the oldest ones beyond `capacity`.
    pub fn push_bounded(&mut self, id: &str, capacity: usize) {
        if capacity == 0 {
            return;
        }
        self.truncate_oldest(capacity - 1);
        let n = u32::try_from(id.len()).expect("an id is shorter than 4 GiB");
        if self.block.capacity() == 0 {
            self.block.reserve_exact(capacity.min(FIRST_ROOM) * (HEADER + id.len()));
        }
        self.block.extend_from_slice(&fingerprint(id).to_le_bytes());
        self.block.extend_from_slice(&n.to_le_bytes());
        self.block.extend_from_slice(id.as_bytes());
        self.len += 1;
    }

    /// Forgets the oldest ids until at most `keep` remain.
    pub fn truncate_oldest(&mut self, keep: usize) {
        while self.len > keep {
            let n = self.records().next().expect("len counts the records").1.len();
            self.head += HEADER + n;
            self.len -= 1;
        }
        if self.head > self.block.len() / 2 {
            self.block.drain(..self.head);
            self.head = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ids, oldest first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> {
        // Only whole `&str`s are ever written, so this cannot fail.
        self.records()
            .map(|(_, id)| std::str::from_utf8(id).expect("ids are stored as whole strings"))
    }
}

impl PartialEq for SeenIds {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<S: AsRef<str>> FromIterator<S> for SeenIds {
    fn from_iter<T: IntoIterator<Item = S>>(iter: T) -> Self {
        let mut seen = SeenIds::default();
        for id in iter {
            seen.push_bounded(id.as_ref(), usize::MAX);
        }
        seen
    }
}

impl Serialize for SeenIds {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len))?;
        for id in self.iter() {
            seq.serialize_element(id)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for SeenIds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<String>::deserialize(deserializer)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_ids_and_finds_only_those() {
        let mut seen = SeenIds::default();
        for i in 0..10 {
            seen.push_bounded(&format!("e{i}"), 4);
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(seen.iter().collect::<Vec<_>>(), ["e6", "e7", "e8", "e9"]);
        assert!(seen.contains("e9") && seen.contains("e6"));
        assert!(!seen.contains("e5") && !seen.contains("e"));
        let round_trip: SeenIds = serde_json::from_str(&serde_json::to_string(&seen).unwrap()).unwrap();
        assert_eq!(round_trip, seen);
        assert!(round_trip.contains("e7"), "fingerprints are rebuilt when read back");
    }

    #[test]
    fn forgotten_ids_do_not_pile_up() {
        let mut seen = SeenIds::default();
        for i in 0..10_000 {
            seen.push_bounded(&format!("event-{i}"), 3);
        }
        assert_eq!(
            seen.iter().collect::<Vec<_>>(),
            ["event-9997", "event-9998", "event-9999"]
        );
        // Three live records of 18 bytes, and at most as many forgotten ones.
        assert!(
            seen.block.len() <= 2 * 3 * 18 + 18,
            "block grew to {}",
            seen.block.len()
        );
    }

    #[test]
    fn empty_and_multibyte_ids() {
        let mut seen = SeenIds::default();
        seen.push_bounded("", 8);
        seen.push_bounded("é", 8);
        assert!(seen.contains("") && seen.contains("é") && !seen.contains("e"));
        assert_eq!(seen.len(), 2);
        seen.truncate_oldest(0);
        assert!(seen.is_empty() && !seen.contains(""));
    }
}
