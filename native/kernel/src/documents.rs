//! Store documents: what `dita.slots` and `dita.accounts` hold for a kernel,
//! signed with the kernel's document key, and the cut that ties a set of
//! them to one moment.
//!
//! Anyone who can reach the cluster can write those maps, and a restarted
//! kernel reads them back to catch up with what it did after its last
//! checkpoint. The signature lets it take only what it wrote itself; the
//! cut lets it tell a whole set from a torn one (a kernel killed between two
//! of the writer's `putAll` requests leaves some keys of one moment and some
//! of another).
//!
//! # Documents
//!
//! Compact JSON (serde_json), the store's fields first, then the body's:
//! `{"kernel_id":…,"key":…,"updated_at":…,<slot or account fields>}`. An
//! account document adds its cut after the body:
//! `…,"cut":{"slots":<slots>,"digest":"<16 lowercase hex>"}`.
//!
//! # Signature (canonical rule)
//!
//! With a document key, a document ends in one more member, always the
//! last: `…,"mac":"<64 lowercase hex>"}`. The MAC is HMAC-SHA256 under the
//! key over the document's exact UTF-8 bytes without that member: the text
//! before `,"mac":` followed by `}`, which is the document exactly as it is
//! written without a key. A reader checks it on the text as stored, before
//! it parses anything: the last `MAC_SUFFIX_LEN` (74) bytes must be
//! `,"mac":"` + 64 lowercase hex + `"}`; what precedes them, plus `}`, is
//! what was signed. The kernel id and the key field are inside the signed
//! bytes, so a document copied to another key or kernel no longer matches
//! its place. Without a key a document carries no `mac`.
//!
//! # Cut
//!
//! `digest` is the wrapping (mod 2^64) sum over every slot `i` of
//! `mix(i, version_i)`, with
//!
//! ```text
//! fmix(z)  = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB; z ^ (z >> 31)
//! mix(i,v) = fmix(fmix(v + 0x9E3779B97F4A7C15) ^ i)          (all mod 2^64)
//! ```
//!
//! and `slots` the kernel's slot count. It is kept incrementally, folding in
//! each changed slot as it is drained (no cost on the kernel's calls), and the
//! account document of a drain names the versions of every slot as of that
//! drain. Every change of a slot moves the account's version too, so every
//! drain that carries a slot carries the account: once the writer has written
//! a drain whole, the slot versions in the map give back the account's digest
//! (a slot without a document counts as version 0, a slot's first). A set
//! written in part does not.
//!
//! The cut is not a cryptographic commitment: the MACs prove each document
//! genuine; the cut tells whether genuine documents belong to one moment.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};
use sha2::Sha256;

use crate::error::InputError;
use crate::kernel::Changes;
use crate::time::Timestamp;

/// The largest version a kernel takes from outside (a store's floor, a
/// projected document): readers of other languages keep integers exactly
/// up to 2^53 (IEEE doubles). Anything above is planted, never a kernel's,
/// and is ignored rather than raised to, so it can never freeze a version.
pub const MAX_VERSION: u64 = 1 << 53;

/// Whether a version from outside the kernel (a store's floor, a slot or account
/// written whole) may be taken: below `MAX_VERSION`, so that the version the
/// kernel then writes, one above it, is still one it reads back.
pub fn takes_version(version: u64) -> bool {
    version < MAX_VERSION
}

/// A shorter document key is refused: HMAC's strength is its key's.
pub const MIN_KEY_BYTES: usize = 16;
/// No key derivation needs more; a longer one is refused as a mistake.
pub const MAX_KEY_BYTES: usize = 4096;

const MAC_OPEN: &str = ",\"mac\":\"";
/// `,"mac":"` + 64 hex digits + `"}`: how many bytes a signature adds at the end of a document.
pub const MAC_SUFFIX_LEN: usize = MAC_OPEN.len() + 64 + 2;

/// HMAC-SHA256 under a kernel's document key, keyed once: signing a
/// document clones the keyed state rather than hashing the key again.
#[derive(Clone)]
pub struct DocumentKey(Hmac<Sha256>);

impl fmt::Debug for DocumentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DocumentKey(..)") // never the key itself
    }
}

impl DocumentKey {
    pub fn new(key: &[u8]) -> Result<DocumentKey, InputError> {
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(InputError::new(
                "document_key",
                format!("{} bytes", key.len()),
                format!("must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes"),
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
        Ok(DocumentKey(mac))
    }

    /// HMAC-SHA256 of `parts`, one after the other.
    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut m = self.0.clone();
        for part in parts {
            m.update(part);
        }
        m
    }

    /// Appends the `mac` member to a document (a JSON object, so ending `}`).
    pub fn sign(&self, document: &mut String) {
        debug_assert!(
            document.ends_with('}') && document.len() > 2,
            "a JSON object with members"
        );
        let tag = self.mac(&[document.as_bytes()]).finalize().into_bytes();
        document.pop();
        document.reserve(MAC_SUFFIX_LEN - 1);
        document.push_str(MAC_OPEN);
        push_hex(document, &tag);
        document.push_str("\"}");
    }

    /// Whether `text` ends in a `mac` member that verifies under this key (constant time).
    pub fn verify(&self, text: &str) -> bool {
        let Some(at) = text.len().checked_sub(MAC_SUFFIX_LEN) else {
            return false;
        };
        let (signed, suffix) = text.as_bytes().split_at(at);
        let hex = &suffix[MAC_OPEN.len()..MAC_OPEN.len() + 64];
        if !suffix.starts_with(MAC_OPEN.as_bytes()) || !suffix.ends_with(b"\"}") {
            return false;
        }
        let Some(tag) = parse_hex(hex) else {
            return false;
        };
        self.mac(&[signed, b"}"]).verify_slice(&tag).is_ok()
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

/// 64 lowercase hex digits as 32 bytes (the canonical spelling only).
fn parse_hex(hex: &[u8]) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn fmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 64-bit mix of one slot's (id, version) that a cut's digest sums.
pub fn mix(slot_id: u32, version: u64) -> u64 {
    fmix(fmix(version.wrapping_add(0x9E37_79B9_7F4A_7C15)) ^ u64::from(slot_id))
}

/// The digest of the slot versions `versions[i]` of slots `0..`.
pub fn digest(versions: impl IntoIterator<Item = u64>) -> u64 {
    versions
        .into_iter()
        .enumerate()
        .fold(0u64, |sum, (i, v)| sum.wrapping_add(mix(i as u32, v)))
}

/// Which slot versions an account document is consistent with (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    pub slots: usize,
    pub digest: u64,
}

impl Cut {
    /// The cut of slots whose versions are `versions`, in slot id order.
    pub fn of(versions: impl ExactSizeIterator<Item = u64>) -> Cut {
        let slots = versions.len();
        Cut {
            slots,
            digest: digest(versions),
        }
    }

    /// Slot `slot_id` moved from version `from` to `to`.
    pub fn moved(&mut self, slot_id: u32, from: u64, to: u64) {
        self.digest = self
            .digest
            .wrapping_sub(mix(slot_id, from))
            .wrapping_add(mix(slot_id, to));
    }

    /// The digest as a document spells it: 16 lowercase hex digits.
    pub fn digest_hex(&self) -> String {
        format!("{:016x}", self.digest)
    }
}

impl Serialize for Cut {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = s.serialize_struct("Cut", 2)?;
        out.serialize_field("slots", &self.slots)?;
        out.serialize_field("digest", &self.digest_hex())?;
        out.end()
    }
}

/// Changed keys as JSON documents: (key, version, json) per slot, and the account's (version, json).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Documents {
    pub slots: Vec<(String, u64, String)>,
    pub account: Option<(u64, String)>,
}

impl Documents {
    /// Drained changes as store documents (see `Kernel::drain_documents`),
    /// signed with `key` when there is one; apart from the kernel, so that a
    /// store's feed builds and signs them without holding it.
    pub fn of(changes: &Changes, kernel_id: &str, now: Timestamp, key: Option<&DocumentKey>) -> Documents {
        Documents {
            slots: changes
                .slots
                .iter()
                .map(|s| {
                    let doc_key = format!("{kernel_id}:{}", s.slot_id);
                    let json = document(kernel_id, &doc_key, now, s, None, key);
                    (doc_key, s.version, json)
                })
                .collect(),
            account: changes.account.as_ref().map(|a| {
                (
                    a.version,
                    document(kernel_id, kernel_id, now, a, Some(changes.cut), key),
                )
            }),
        }
    }
}

/// A store document: the body's fields beside the kernel id, key and write
/// time, the account's cut, and the signature when there is a key.
fn document<T: Serialize>(
    kernel_id: &str,
    key: &str,
    updated_at: Timestamp,
    body: &T,
    cut: Option<Cut>,
    signer: Option<&DocumentKey>,
) -> String {
    #[derive(Serialize)]
    struct Doc<'a, T: Serialize> {
        kernel_id: &'a str,
        key: &'a str,
        updated_at: Timestamp,
        #[serde(flatten)]
        body: &'a T,
        #[serde(skip_serializing_if = "Option::is_none")]
        cut: Option<Cut>,
    }
    let mut json = serde_json::to_string(&Doc {
        kernel_id,
        key,
        updated_at,
        body,
        cut,
    })
    .expect("documents serialize");
    if let Some(signer) = signer {
        signer.sign(&mut json);
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DocumentKey {
        DocumentKey::new(b"a document key of 32 bytes......").unwrap()
    }

    #[test]
    fn a_signature_is_hmac_sha256_over_the_document_without_its_mac_member() {
        let mut doc = r#"{"kernel_id":"k","key":"k:0","version":3}"#.to_owned();
        let unsigned = doc.clone();
        key().sign(&mut doc);
        assert_eq!(doc.len(), unsigned.len() - 1 + MAC_SUFFIX_LEN);
        assert!(doc.starts_with(&unsigned[..unsigned.len() - 1]));
        // RFC 2104 HMAC-SHA256, computed independently of the hmac crate.
        let tag = &doc[doc.len() - 66..doc.len() - 2];
        assert_eq!(
            tag,
            reference_hmac(b"a document key of 32 bytes......", unsigned.as_bytes())
        );
        assert!(key().verify(&doc));
        let parsed: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(parsed["mac"].as_str(), Some(tag));
        assert_eq!(parsed["version"], 3);
    }

    #[test]
    fn a_changed_byte_another_key_or_a_missing_or_odd_mac_does_not_verify() {
        let mut doc = r#"{"kernel_id":"k","key":"k:0","size":1.0}"#.to_owned();
        key().sign(&mut doc);
        assert!(key().verify(&doc));
        assert!(!key().verify(&doc.replace("1.0", "5000.0")));
        assert!(!key().verify(&doc.replace("k:0", "k:1")));
        assert!(!DocumentKey::new(b"another key, also 32 bytes long.")
            .unwrap()
            .verify(&doc));
        let upper = format!(
            "{}{}\"}}",
            &doc[..doc.len() - 66],
            doc[doc.len() - 66..doc.len() - 2].to_uppercase()
        );
        assert!(!key().verify(&upper), "only the canonical lowercase spelling");
        assert!(!key().verify(r#"{"kernel_id":"k"}"#));
        assert!(!key().verify(""));
        assert!(!key().verify(&doc[..doc.len() - 1]));
        assert!(!key().verify(&format!("{doc} ")));
    }

    #[test]
    fn keys_too_short_or_too_long_are_refused() {
        assert!(DocumentKey::new(b"").is_err());
        assert!(DocumentKey::new(&[7; MIN_KEY_BYTES - 1]).is_err());
        assert!(DocumentKey::new(&[7; MIN_KEY_BYTES]).is_ok());
        assert!(DocumentKey::new(&vec![7; MAX_KEY_BYTES + 1]).is_err());
        assert_eq!(format!("{:?}", key()), "DocumentKey(..)");
    }

    #[test]
    fn the_mix_is_the_documented_one_and_the_digest_sums_it() {
        // The formula of the module doc, written out once more.
        let fmix = |mut z: u64| {
            z ^= z >> 30;
            z = z.wrapping_mul(0xBF58476D1CE4E5B9);
            z ^= z >> 27;
            z = z.wrapping_mul(0x94D049BB133111EB);
            z ^ (z >> 31)
        };
        for (i, v) in [(0u32, 0u64), (1, 0), (0, 1), (7, 123_456), (1 << 20, MAX_VERSION)] {
            assert_eq!(mix(i, v), fmix(fmix(v.wrapping_add(0x9E3779B97F4A7C15)) ^ u64::from(i)));
        }
        assert_ne!(mix(0, 1), mix(1, 0));
        let versions = [4u64, 0, 9];
        let sum = mix(0, 4).wrapping_add(mix(1, 0)).wrapping_add(mix(2, 9));
        assert_eq!(digest(versions), sum);
        let mut cut = Cut::of(versions.into_iter());
        assert_eq!((cut.slots, cut.digest), (3, sum));
        cut.moved(1, 0, 5);
        assert_eq!(cut, Cut::of([4u64, 5, 9].into_iter()));
        assert_eq!(
            serde_json::to_string(&cut).unwrap(),
            format!(r#"{{"slots":3,"digest":"{:016x}"}}"#, cut.digest)
        );
    }

    // ----- the kernel's documents -----------------------------------------------------------

    use crate::kernel::Kernel;
    use crate::testkit::enter;
    use crate::types::Side;

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap()
    }

    /// What a reader of the maps does: the digest of the slot versions it holds.
    fn map_digest(versions: &std::collections::BTreeMap<String, u64>, kernel_id: &str, n: usize) -> String {
        let v = (0..n).map(|i| versions.get(&format!("{kernel_id}:{i}")).copied().unwrap_or(0));
        format!("{:016x}", digest(v))
    }

    #[test]
    fn a_keyed_kernel_signs_every_document_and_its_account_names_the_slot_versions() {
        let mut k = Kernel::new(4).unwrap();
        k.set_document_key(Some(key()));
        let mut map = std::collections::BTreeMap::new();
        let mut account = String::new();
        let mut write = |k: &mut Kernel, map: &mut std::collections::BTreeMap<String, u64>| {
            let docs = k.drain_documents("k", Timestamp(0));
            for (doc_key, version, text) in &docs.slots {
                assert!(key().verify(text), "{text}");
                map.insert(doc_key.clone(), *version);
            }
            if let Some((_, text)) = docs.account {
                assert!(key().verify(&text));
                account = text;
            }
            json(&account)["cut"]["digest"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            write(&mut k, &mut map),
            map_digest(&map, "k", 4),
            "a new kernel: every slot at 0"
        );
        let steps: [&dyn Fn(&mut Kernel) -> bool; 4] = [
            &|k| k.process_intent(&enter(1, "a", Side::Long, 1.0)).accepted,
            &|k| k.process_intent(&enter(3, "b", Side::Short, 2.0)).accepted,
            &|k| k.submitted(1, Timestamp(1)).accepted,
            &|k| k.mark_price("BTC-PERP", 101.0) == Ok(2),
        ];
        for (i, step) in steps.iter().enumerate() {
            let before = k.account().version;
            assert!(step(&mut k), "step {i}");
            assert!(k.account().version > before, "a slot change moves the account ({i})");
            assert_eq!(write(&mut k, &mut map), map_digest(&map, "k", 4), "after step {i}");
        }
        assert_eq!(json(&account)["cut"]["slots"], 4);
        // No key: no MAC, the same cut.
        k.set_document_key(None);
        k.mark_all_changed();
        let docs = k.drain_documents("k", Timestamp(0));
        assert!(docs.slots.iter().all(|(_, _, t)| !t.contains("\"mac\"")));
        let (_, text) = docs.account.unwrap();
        assert!(!text.contains("\"mac\"") && json(&text)["cut"]["digest"] == json(&account)["cut"]["digest"]);
    }

    #[test]
    fn documents_of_two_drains_mixed_do_not_match_the_cut() {
        let mut k = Kernel::new(2).unwrap();
        let first = k.drain_documents("k", Timestamp(0));
        assert!(k.process_intent(&enter(0, "a", Side::Long, 1.0)).accepted);
        let second = k.drain_documents("k", Timestamp(0));
        assert_eq!(second.slots.len(), 1, "slot 0 only; the account goes with it");
        let cut_of = |d: &Documents| json(&d.account.as_ref().unwrap().1)["cut"]["digest"].clone();
        let versions = |d: &Documents| d.slots.iter().map(|(_, v, _)| *v).collect::<Vec<_>>();
        let (v1, v2) = (versions(&first), versions(&second));
        assert_eq!(cut_of(&first), format!("{:016x}", digest(v1.clone())));
        assert_eq!(cut_of(&second), format!("{:016x}", digest([v2[0], v1[1]])));
        assert_ne!(
            cut_of(&second),
            format!("{:016x}", digest(v1)),
            "the later account, the earlier slot: torn"
        );
    }

    #[test]
    fn absurd_floors_are_ignored_and_a_restored_kernel_keeps_its_cut() {
        let mut k = Kernel::new(3).unwrap();
        k.drain_changes();
        k.raise_versions(&[(0, u64::MAX), (1, MAX_VERSION + 1), (2, 5)], Some(u64::MAX - 1));
        assert_eq!(
            (
                k.slot(0).unwrap().version,
                k.slot(1).unwrap().version,
                k.slot(2).unwrap().version
            ),
            (0, 0, 6)
        );
        assert!(k.account().version <= MAX_VERSION);
        let drained = k.drain_changes();
        assert_eq!(drained.cut, Cut::of([0u64, 0, 6].into_iter()));
        assert!(k.process_intent(&enter(0, "a", Side::Long, 1.0)).accepted);
        assert_eq!(k.slot(0).unwrap().version, 1, "the slot goes on growing");
        // An operator's slot with a planted version is taken, its version not.
        let mut planted = k.slot(1).unwrap().clone();
        planted.version = u64::MAX;
        k.set_slot(planted).unwrap();
        assert_eq!(k.slot(1).unwrap().version, 1);
        let cut = k.drain_changes().cut;
        let mut back = Kernel::restore(&k.checkpoint()).unwrap();
        assert_eq!(back.drain_changes().cut, cut, "restored: the same cut, nothing moved");
    }

    #[test]
    fn a_drained_account_is_the_account_as_it_is_and_its_cut_the_slots_as_they_are() {
        use crate::testkit::{apply, scenario};
        let mut k = Kernel::new(3).unwrap();
        k.set_seed_capital(1_000.0).unwrap();
        for (n, step) in scenario(3, 2).iter().enumerate() {
            apply(&mut k, step);
            // Drained now and then, so some drains carry several changes.
            if n % 3 == 0 {
                let changes = k.drain_changes();
                if !changes.slots.is_empty() {
                    assert_eq!(
                        changes.account.as_ref(),
                        Some(&k.account()),
                        "step {n}: the view is current"
                    );
                }
                assert_eq!(changes.cut, Cut::of(k.slots().iter().map(|s| s.version)), "step {n}");
            }
        }
    }

    /// HMAC-SHA256 by its definition, H((K ^ opad) || H((K ^ ipad) || m)), for a key under 64 bytes.
    fn reference_hmac(key: &[u8], message: &[u8]) -> String {
        use sha2::Digest;
        let mut padded = [0u8; 64];
        padded[..key.len()].copy_from_slice(key);
        let inner = sha2::Sha256::new()
            .chain_update(padded.map(|b| b ^ 0x36))
            .chain_update(message)
            .finalize();
        let outer = sha2::Sha256::new()
            .chain_update(padded.map(|b| b ^ 0x5c))
            .chain_update(inner)
            .finalize();
        let mut hex = String::new();
        push_hex(&mut hex, &outer);
        hex
    }
}
