//! dita's projection writer: kernel documents into Hazelcast maps.
//!
//! The kernel's state reaches dashboards through Hazelcast, and the writer
//! that puts it there must never slow the kernel down. Written in Python on
//! the Hazelcast client, every key cost tens of microseconds of encoding and
//! request bookkeeping under the interpreter lock, shared with the kernel's
//! own thread: at 10,000 kernel calls a second that was most of a core and
//! tens of milliseconds of lag. This crate speaks the part of Hazelcast's open
//! client protocol a writer needs (authenticate, `Map.putAll`, ping) from
//! threads of its own, and its feed (`feed.rs`) takes each attached kernel's
//! changes as they happen, so the interpreter is not involved at all.
//!
//! Plain Rust, no Python: the binding crate exposes it.

pub mod codec;
pub mod feed;
pub mod writer;

pub use feed::{Feed, Sink, Source, Wake};
pub use writer::{Config, ConnectError, Document, Stats, Writer};
