//! The parts of Hazelcast's wire formats the writer speaks: serialized `Data`
//! for a string key and a JSON document, the partition a key lives in, and
//! the open client protocol's frames for the three requests it sends
//! (authentication, `Map.putAll` and ping) and the answers it reads.
//!
//! `Data` follows Hazelcast's default, big-endian serialization: a 4-byte
//! partition hash (0: derived from the payload), a 4-byte type id, then the
//! payload. A client message is a sequence of frames, each a 4-byte
//! little-endian length (header included), 2-byte flags and content; its
//! first frame holds the message type, correlation id and partition id, its
//! last frame carries the final flag.

use std::io::{self, Read};

/// `Data` header: partition hash, then type id.
const DATA_OFFSET: usize = 8;
/// Type id of a `String` in Hazelcast serialization.
const TYPE_STRING: i32 = -11;
/// Type id of a `HazelcastJsonValue`: a JSON document the cluster can query.
const TYPE_JSON: i32 = -130;
const MURMUR_SEED: u32 = 0x0100_0193;

const FRAME_HEADER: usize = 6;
/// Far above any answer the writer expects; a larger length means a corrupt stream.
const MAX_FRAME: usize = 64 << 20;
/// Initial frame of a request: frame header, message type, correlation id, partition id.
const REQUEST_HEADER: usize = FRAME_HEADER + 4 + 8 + 4;
const CORRELATION_OFFSET: usize = FRAME_HEADER + 4;
const PARTITION_OFFSET: usize = CORRELATION_OFFSET + 8;
/// Content of a response's initial frame: message type, correlation id, backup acks.
const RESPONSE_HEADER: usize = 4 + 8 + 1;

const BEGIN_FRAGMENT: u16 = 1 << 15;
const END_FRAGMENT: u16 = 1 << 14;
const IS_FINAL: u16 = 1 << 13;
const BEGIN_DATA_STRUCTURE: u16 = 1 << 12;
const END_DATA_STRUCTURE: u16 = 1 << 11;
const IS_NULL: u16 = 1 << 10;
const IS_EVENT: u16 = 1 << 9;

pub const AUTHENTICATION: i32 = 0x00_0100;
pub const PING: i32 = 0x00_0B00;
pub const MAP_PUT_ALL: i32 = 0x01_2C00;
/// The message type of an error answer.
pub const EXCEPTION: i32 = 0;
/// The bytes a client sends first on a new connection: client protocol, version 2.
pub const PROTOCOL_PREAMBLE: &[u8] = b"CP2";

// ----- Data ----------------------------------------------------------------------

fn push_string_data(out: &mut Vec<u8>, type_id: i32, text: &str) {
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&type_id.to_be_bytes());
    out.extend_from_slice(&(text.len() as i32).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The serialized `Data` of a string key.
pub fn string_data(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_OFFSET + 4 + text.len());
    push_string_data(&mut out, TYPE_STRING, text);
    out
}

/// The serialized `Data` of a JSON document (`HazelcastJsonValue`).
pub fn json_data(json: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(DATA_OFFSET + 4 + json.len());
    push_string_data(&mut out, TYPE_JSON, json);
    out
}

/// MurmurHash3 (x86, 32-bit), as Hazelcast hashes a `Data` payload.
fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    let mut h = seed;
    let blocks = data.chunks_exact(4);
    let tail = blocks.remainder();
    for block in blocks {
        h ^= mix(u32::from_le_bytes([block[0], block[1], block[2], block[3]]));
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    if !tail.is_empty() {
        h ^= mix(tail.iter().rev().fold(0u32, |k, &b| (k << 8) | u32::from(b)));
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The partition a string key belongs to, out of `partition_count`
/// (Hazelcast's `hashToIndex` of the murmur hash of the key's payload).
pub fn partition_of(key: &str, partition_count: u32) -> u32 {
    let data = string_data(key);
    let hash = murmur3_32(&data[DATA_OFFSET..], MURMUR_SEED) as i32;
    if hash == i32::MIN || partition_count == 0 {
        0
    } else {
        hash.unsigned_abs() % partition_count
    }
}

// ----- requests ----------------------------------------------------------------------

/// A request being built, frame by frame.
pub struct Request {
    buf: Vec<u8>,
}

impl Request {
    /// Starts a request whose initial frame has `fixed` bytes of fields after the header.
    fn new(message_type: i32, fixed: &[u8], is_final: bool) -> Request {
        let len = REQUEST_HEADER + fixed.len();
        let mut buf = Vec::with_capacity(len + 256);
        let mut flags = BEGIN_FRAGMENT | END_FRAGMENT;
        if is_final {
            flags |= IS_FINAL;
        }
        buf.extend_from_slice(&(len as u32).to_le_bytes());
        buf.extend_from_slice(&flags.to_le_bytes());
        buf.extend_from_slice(&message_type.to_le_bytes());
        buf.extend_from_slice(&0i64.to_le_bytes());
        buf.extend_from_slice(&(-1i32).to_le_bytes());
        buf.extend_from_slice(fixed);
        Request { buf }
    }

    fn frame_header(&mut self, content_len: usize, flags: u16) {
        self.buf
            .extend_from_slice(&((FRAME_HEADER + content_len) as u32).to_le_bytes());
        self.buf.extend_from_slice(&flags.to_le_bytes());
    }

    fn string(&mut self, text: &str) -> &mut Self {
        self.frame_header(text.len(), 0);
        self.buf.extend_from_slice(text.as_bytes());
        self
    }

    fn null(&mut self) -> &mut Self {
        self.frame_header(0, IS_NULL);
        self
    }

    fn begin(&mut self) -> &mut Self {
        self.frame_header(0, BEGIN_DATA_STRUCTURE);
        self
    }

    fn end(&mut self, is_final: bool) -> &mut Self {
        self.frame_header(0, END_DATA_STRUCTURE | if is_final { IS_FINAL } else { 0 });
        self
    }

    /// A `Data` frame holding a string-valued object, written in place.
    fn string_data(&mut self, type_id: i32, text: &str) -> &mut Self {
        self.frame_header(DATA_OFFSET + 4 + text.len(), 0);
        push_string_data(&mut self.buf, type_id, text);
        self
    }

    pub fn set_correlation_id(&mut self, id: i64) {
        self.buf[CORRELATION_OFFSET..CORRELATION_OFFSET + 8].copy_from_slice(&id.to_le_bytes());
    }

    pub fn set_partition_id(&mut self, partition: i32) {
        self.buf[PARTITION_OFFSET..PARTITION_OFFSET + 4].copy_from_slice(&partition.to_le_bytes());
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Who the writer says it is when it authenticates.
pub struct Credentials<'a> {
    pub cluster_name: &'a str,
    pub client_uuid: u128,
    pub client_type: &'a str,
    pub client_version: &'a str,
    pub client_name: &'a str,
}

/// `Client.authentication` without username or password (open-source
/// clusters check only the cluster name).
pub fn authentication(c: &Credentials<'_>) -> Request {
    let mut fixed = Vec::with_capacity(18);
    fixed.push(0); // the uuid is not null
    fixed.extend_from_slice(&((c.client_uuid >> 64) as u64).to_le_bytes());
    fixed.extend_from_slice(&(c.client_uuid as u64).to_le_bytes());
    fixed.push(1); // serialization version
    let mut r = Request::new(AUTHENTICATION, &fixed, false);
    r.string(c.cluster_name)
        .null()
        .null()
        .string(c.client_type)
        .string(c.client_version)
        .string(c.client_name)
        .begin()
        .end(true);
    r
}

/// `Map.putAll` of JSON documents under string keys, all in `partition`.
pub fn put_all<'a>(map_name: &str, partition: u32, entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Request {
    let mut r = Request::new(MAP_PUT_ALL, &[0], false); // triggerMapLoader: false
    r.set_partition_id(partition as i32);
    r.string(map_name).begin();
    for (key, json) in entries {
        r.string_data(TYPE_STRING, key).string_data(TYPE_JSON, json);
    }
    r.end(true);
    r
}

pub fn ping() -> Request {
    Request::new(PING, &[], true)
}

// ----- answers ----------------------------------------------------------------------

#[derive(Debug)]
pub struct Frame {
    pub flags: u16,
    pub content: Vec<u8>,
}

impl Frame {
    fn has(&self, flag: u16) -> bool {
        self.flags & flag == flag
    }
}

/// A message read from the member: its frames, the initial one first.
#[derive(Debug)]
pub struct Message {
    pub frames: Vec<Frame>,
}

impl Message {
    /// Reads frames until the final one.
    pub fn read(from: &mut impl Read) -> io::Result<Message> {
        let mut frames = Vec::new();
        loop {
            let mut header = [0u8; FRAME_HEADER];
            from.read_exact(&mut header)?;
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
            let flags = u16::from_le_bytes([header[4], header[5]]);
            if !(FRAME_HEADER..=MAX_FRAME).contains(&len) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("frame length {len}"),
                ));
            }
            let mut content = vec![0u8; len - FRAME_HEADER];
            from.read_exact(&mut content)?;
            let frame = Frame { flags, content };
            let last = frame.has(IS_FINAL);
            frames.push(frame);
            if last {
                return Ok(Message { frames });
            }
        }
    }

    fn initial(&self) -> &[u8] {
        &self.frames[0].content
    }

    fn int_at(&self, offset: usize) -> Option<i32> {
        let b = self.initial().get(offset..offset + 4)?;
        Some(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn message_type(&self) -> i32 {
        self.int_at(0).unwrap_or(-1)
    }

    pub fn correlation_id(&self) -> i64 {
        self.initial()
            .get(4..12)
            .map_or(-1, |b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// Events come only to clients that registered listeners; the writer never does.
    pub fn is_event(&self) -> bool {
        self.frames[0].has(IS_EVENT)
    }

    /// "ClassName: message" of an error answer, as far as it can be read.
    pub fn error_text(&self) -> String {
        // Frames: initial, list begin, holder begin, holder fields, class name, message…
        let text = |i: usize| {
            self.frames
                .get(i)
                .filter(|f| !f.has(IS_NULL) && !f.has(BEGIN_DATA_STRUCTURE) && !f.has(END_DATA_STRUCTURE))
                .map(|f| String::from_utf8_lossy(&f.content).into_owned())
        };
        match (text(4), text(5)) {
            (Some(class), Some(message)) => format!("{class}: {message}"),
            (Some(class), None) => class,
            _ => "error answer from the member".to_owned(),
        }
    }
}

/// What the member answered to the writer's authentication.
#[derive(Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub partition_count: u32,
}

/// Reads an authentication answer; a refusal says why.
pub fn authenticated(answer: &Message) -> Result<Authenticated, String> {
    if answer.message_type() == EXCEPTION {
        return Err(answer.error_text());
    }
    let status = *answer
        .initial()
        .get(RESPONSE_HEADER)
        .ok_or("authentication answer too short")?;
    let partition_count = answer
        .int_at(RESPONSE_HEADER + 1 + 17 + 1)
        .ok_or("authentication answer too short")?;
    match status {
        0 if partition_count > 0 => Ok(Authenticated {
            partition_count: partition_count as u32,
        }),
        0 => Err(format!("the member reported {partition_count} partitions")),
        1 => Err("the member refused the credentials: is the cluster name right?".to_owned()),
        2 => Err("serialization version mismatch".to_owned()),
        3 => Err("the member does not allow this client in its cluster".to_owned()),
        s => Err(format!("authentication status {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_the_reference_vectors() {
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_32(b"Hello, world!", 0x9747_b28c), 0x2488_4cba);
        assert_eq!(
            murmur3_32(b"The quick brown fox jumps over the lazy dog", 0x9747_b28c),
            0x2fa8_26cd
        );
        assert_eq!(murmur3_32(b"aaa", 0x9747_b28c), 0x283e_0130);
    }

    fn frames_of(bytes: &[u8]) -> Message {
        Message::read(&mut &bytes[..]).expect("a whole message")
    }

    #[test]
    fn a_put_all_request_lists_its_entries_between_begin_and_end() {
        let mut r = put_all("dita.slots", 7, [("k:1", "{}")]);
        r.set_correlation_id(42);
        let m = frames_of(r.bytes());
        assert_eq!(m.message_type(), MAP_PUT_ALL);
        assert_eq!(m.correlation_id(), 42);
        assert_eq!(m.int_at(12), Some(7));
        let flags: Vec<u16> = m.frames.iter().map(|f| f.flags).collect();
        assert_eq!(
            flags,
            [
                BEGIN_FRAGMENT | END_FRAGMENT,
                0,
                BEGIN_DATA_STRUCTURE,
                0,
                0,
                END_DATA_STRUCTURE | IS_FINAL
            ]
        );
        assert_eq!(m.frames[1].content, b"dita.slots");
        assert_eq!(m.frames[3].content, string_data("k:1"));
        assert_eq!(m.frames[4].content, json_data("{}"));
    }

    #[test]
    fn an_authentication_answer_gives_the_partition_count_or_the_refusal() {
        let answer = |status: u8, partitions: i32| {
            let mut content = vec![0u8; RESPONSE_HEADER + 1 + 17 + 1 + 4 + 17 + 1];
            content[..4].copy_from_slice(&(AUTHENTICATION + 1).to_le_bytes());
            content[RESPONSE_HEADER] = status;
            content[RESPONSE_HEADER + 19..RESPONSE_HEADER + 23].copy_from_slice(&partitions.to_le_bytes());
            Message {
                frames: vec![Frame {
                    flags: IS_FINAL,
                    content,
                }],
            }
        };
        assert_eq!(
            authenticated(&answer(0, 271)),
            Ok(Authenticated { partition_count: 271 })
        );
        assert!(authenticated(&answer(1, 271)).unwrap_err().contains("cluster name"));
    }
}
