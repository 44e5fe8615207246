//! The writer: kernel documents into Hazelcast maps from threads of its own.
//!
//! A caller submits documents (key, version, JSON) and returns at once; the
//! writer keeps the newest unsent version of each key, sends what changed as
//! `Map.putAll` requests, one per partition, without waiting for earlier
//! answers, and books each answer as it arrives.
//!
//! A key has at most one write in flight: its next version goes once the
//! previous one is answered. Requests to different partitions need not apply
//! in the order sent (a member forwarding a write to a member that dies
//! retries it later on the new owner), so two writes of one key in flight at
//! once could land newest first and leave the older one in the map.
//!
//! While no member answers, submitted documents coalesce (at most one per
//! key) and the writer reconnects with a growing pause. Every new connection
//! after the first starts a new *generation*: the cluster may have lost
//! everything, so the writer forgets what it had written and its callers
//! submit every key again; and once more after `settle`, in case a write of
//! the lost connection was still being retried inside the cluster and landed
//! after the rewrite.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustc_hash::FxHashMap;

use crate::codec::{self, Credentials, Message, Request};

/// What the writer connects to and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// "host:port" (or "host", port 5701) of members to try, in order.
    pub members: Vec<String>,
    pub cluster_name: String,
    pub client_name: String,
    /// The client version the writer reports to members.
    pub client_version: String,
    /// The maps documents go to; a document names its map by index.
    pub maps: Vec<String>,
    /// How long one member may take to accept and authenticate.
    pub connect_timeout: Duration,
    /// Requests awaiting an answer before the writer holds back and lets changes coalesce.
    pub max_in_flight: usize,
    /// Quiet time after which the writer pings, so the member keeps the connection.
    pub ping_interval: Duration,
    /// An unanswered request older than this means the connection is dead.
    pub answer_timeout: Duration,
    /// The longest pause between two reconnection attempts.
    pub max_reconnect_pause: Duration,
    /// After a reconnection, when everything is written a second time.
    pub settle: Duration,
}

impl Config {
    pub fn new(members: Vec<String>, cluster_name: impl Into<String>, maps: Vec<String>) -> Config {
        Config {
            members,
            cluster_name: cluster_name.into(),
            client_name: "dita-store".into(),
            client_version: "5.7.0".into(),
            maps,
            connect_timeout: Duration::from_secs(5),
            max_in_flight: 512,
            ping_interval: Duration::from_secs(5),
            answer_timeout: Duration::from_secs(10),
            max_reconnect_pause: Duration::from_secs(1),
            settle: Duration::from_secs(2),
        }
    }
}

/// One document for a map: the writer keeps the newest version per key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub map: usize,
    pub key: String,
    pub version: u64,
    pub json: String,
}

/// Counters since the writer started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Entries the cluster acknowledged.
    pub writes: u64,
    /// Requests the cluster acknowledged.
    pub batches: u64,
    pub errors: u64,
    /// Reconnections after which everything was written again.
    pub resyncs: u64,
    pub last_error: String,
    /// Unix seconds of the last acknowledged write (0 before the first).
    pub last_write_at: f64,
    /// Submission to acknowledgement, over the last 1,000 entries.
    pub lag_ms_p50: f64,
    pub lag_ms_p99: f64,
    pub lag_ms_max: f64,
    /// Keys submitted and not yet acknowledged.
    pub backlog: usize,
    pub in_flight: usize,
    pub connected: bool,
    pub generation: u64,
    pub partition_count: u32,
}

#[derive(Debug)]
pub struct ConnectError(pub String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

type Key = (usize, String);

struct Pending {
    version: u64,
    json: String,
    /// When the oldest change this entry stands for was submitted.
    submitted_at: f64,
    /// Submission order, for flushes.
    seq: u64,
}

struct Carried {
    key: Key,
    version: u64,
    submitted_at: f64,
}

struct InFlight {
    carried: Vec<Carried>,
    sent: Instant,
}

const LAG_SAMPLES: usize = 1_000;

#[derive(Default)]
struct State {
    pending: FxHashMap<Key, Pending>,
    in_flight: FxHashMap<Key, u64>,
    written: FxHashMap<Key, u64>,
    requests: FxHashMap<i64, InFlight>,
    next_correlation: i64,
    seq: u64,
    /// Which connection is live; answers and failures of older ones are ignored.
    link: u64,
    connected: bool,
    partition_count: u32,
    generation: u64,
    /// When the second rewrite after a reconnection is due.
    resettle_at: Option<Instant>,
    stop: bool,
    lags: VecDeque<f64>,
    stats: Stats,
}

impl State {
    fn keep(&mut self, doc: Document, now: f64) {
        let key = (doc.map, doc.key);
        if self.written.get(&key).is_some_and(|&w| w >= doc.version) {
            return;
        }
        self.seq += 1;
        let seq = self.seq;
        let in_flight = self.in_flight.get(&key).copied();
        match self.pending.get_mut(&key) {
            Some(old) if old.version > doc.version => {}
            Some(old) => {
                // An unsent older version is coalesced into this one and has
                // been waiting since it was submitted; one in flight has not.
                if in_flight.is_some_and(|v| v >= old.version) {
                    old.submitted_at = now;
                }
                old.version = doc.version;
                old.json = doc.json;
                old.seq = seq;
            }
            None => {
                self.pending.insert(
                    key,
                    Pending {
                        version: doc.version,
                        json: doc.json,
                        submitted_at: now,
                        seq,
                    },
                );
            }
        }
    }

    /// Pending keys with no write in flight, grouped by map and partition, as
    /// requests registered in flight.
    fn requests(&mut self, maps: &[String]) -> Vec<Request> {
        let mut groups: FxHashMap<(usize, u32), Vec<&Key>> = FxHashMap::default();
        for key in self.pending.keys() {
            if self.in_flight.contains_key(key) {
                continue;
            }
            groups
                .entry((key.0, codec::partition_of(&key.1, self.partition_count)))
                .or_default()
                .push(key);
        }
        let mut out = Vec::with_capacity(groups.len());
        let mut registered = Vec::with_capacity(groups.len());
        for ((map, partition), keys) in groups {
            let entries = keys.iter().map(|k| (k.1.as_str(), self.pending[*k].json.as_str()));
            let mut request = codec::put_all(&maps[map], partition, entries);
            self.next_correlation += 1;
            request.set_correlation_id(self.next_correlation);
            let carried = keys
                .iter()
                .map(|k| Carried {
                    key: (*k).clone(),
                    version: self.pending[*k].version,
                    submitted_at: self.pending[*k].submitted_at,
                })
                .collect::<Vec<_>>();
            registered.push((self.next_correlation, carried));
            out.push(request);
        }
        let sent = Instant::now();
        for (correlation, carried) in registered {
            for c in &carried {
                self.in_flight.insert(c.key.clone(), c.version);
            }
            self.requests.insert(correlation, InFlight { carried, sent });
        }
        out
    }

    fn acknowledged(&mut self, carried: Vec<Carried>, now: f64) {
        self.stats.batches += 1;
        self.stats.writes += carried.len() as u64;
        self.stats.last_write_at = now;
        for c in carried {
            if self.written.get(&c.key).is_none_or(|&w| w < c.version) {
                self.written.insert(c.key.clone(), c.version);
            }
            if self.pending.get(&c.key).is_some_and(|p| p.version <= c.version) {
                self.pending.remove(&c.key);
            }
            if self.in_flight.get(&c.key) == Some(&c.version) {
                self.in_flight.remove(&c.key);
            }
            if self.lags.len() == LAG_SAMPLES {
                self.lags.pop_front();
            }
            self.lags.push_back((now - c.submitted_at) * 1e3);
        }
    }

    /// Forgets what was written, so callers submit every key again.
    fn new_generation(&mut self) {
        self.generation += 1;
        self.written.clear();
    }

    /// The entries stay pending: the next round sends them again.
    fn failed(&mut self, carried: Vec<Carried>) {
        for c in carried {
            if self.in_flight.get(&c.key) == Some(&c.version) {
                self.in_flight.remove(&c.key);
            }
        }
    }

    fn error(&mut self, message: String) {
        self.stats.errors += 1;
        self.stats.last_error = message;
    }

    /// The connection is gone: every request on it failed.
    fn lost(&mut self, why: String) {
        if !self.connected {
            return;
        }
        self.connected = false;
        for (_, request) in std::mem::take(&mut self.requests) {
            self.failed(request.carried);
        }
        self.error(why);
    }
}

struct Shared {
    config: Config,
    state: Mutex<State>,
    /// The writer thread waits here: submissions, answers, lost connections, stop.
    work: Condvar,
    /// Flushes wait here: answers and lost connections.
    progress: Condvar,
    /// A handle on the live socket, so `close` can end a blocked read or write.
    socket: Mutex<Option<TcpStream>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic on another thread must not take the projection down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes documents into Hazelcast maps from its own threads.
pub struct Writer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn client_uuid() -> u128 {
    let random = std::collections::hash_map::RandomState::new();
    let half = |salt: u64| {
        let mut h = random.build_hasher();
        h.write_u64(salt);
        h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.write_u32(std::process::id());
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// Connects to the first member that accepts and authenticates the writer.
fn connect(config: &Config) -> Result<(TcpStream, codec::Authenticated), ConnectError> {
    let mut failures = Vec::new();
    for member in &config.members {
        match connect_one(config, member) {
            Ok(link) => return Ok(link),
            Err(e) => failures.push(format!("{member}: {e}")),
        }
    }
    Err(ConnectError(if failures.is_empty() {
        "no member address given".to_owned()
    } else {
        failures.join("; ")
    }))
}

fn connect_one(config: &Config, member: &str) -> Result<(TcpStream, codec::Authenticated), String> {
    let address = if member.contains(':') {
        member.to_owned()
    } else {
        format!("{member}:5701")
    };
    let target = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .next()
        .ok_or("no address")?;
    let mut stream = TcpStream::connect_timeout(&target, config.connect_timeout).map_err(|e| e.to_string())?;
    let setup = |s: &TcpStream| -> io::Result<()> {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(config.connect_timeout))?;
        s.set_write_timeout(Some(config.connect_timeout))
    };
    setup(&stream).map_err(|e| e.to_string())?;
    let mut hello = codec::PROTOCOL_PREAMBLE.to_vec();
    let mut auth = codec::authentication(&Credentials {
        cluster_name: &config.cluster_name,
        client_uuid: client_uuid(),
        client_type: "PYH",
        client_version: &config.client_version,
        client_name: &config.client_name,
    });
    auth.set_correlation_id(0);
    hello.extend_from_slice(auth.bytes());
    stream.write_all(&hello).map_err(|e| e.to_string())?;
    let answer = Message::read(&mut stream).map_err(|e| format!("no authentication answer: {e}"))?;
    let authenticated = codec::authenticated(&answer)?;
    // From here on a read waits for answers as long as it takes; a dead
    // member is noticed by unanswered requests and failed writes.
    stream.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok((stream, authenticated))
}

impl Writer {
    /// Connects (failing with a clear error when no member accepts within
    /// `connect_timeout` each) and starts the writer's threads.
    pub fn start(config: Config) -> Result<Writer, ConnectError> {
        let (stream, auth) = connect(&config)?;
        let shared = Arc::new(Shared {
            config,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            progress: Condvar::new(),
            socket: Mutex::new(None),
        });
        let first = shared.clone().adopt(stream, auth, false)?;
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dita-store-writer".into())
            .spawn(move || worker.run(first))
            .map_err(|e| ConnectError(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Takes documents to write; returns at once.
    pub fn submit(&self, documents: impl IntoIterator<Item = Document>) -> usize {
        let now = unix_now();
        let mut n = 0;
        {
            let mut state = self.shared.lock();
            for doc in documents {
                state.keep(doc, now);
                n += 1;
            }
        }
        if n > 0 {
            self.shared.work.notify_one();
        }
        n
    }

    /// Waits until everything submitted before the call is acknowledged;
    /// false when `timeout` passed first or no member is connected.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        let ticket = state.seq;
        loop {
            if !state.pending.values().any(|p| p.seq <= ticket) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !state.connected || state.stop {
                return false;
            }
            state = self
                .shared
                .progress
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn stats(&self) -> Stats {
        let state = self.shared.lock();
        let mut lags: Vec<f64> = state.lags.iter().copied().collect();
        lags.sort_by(f64::total_cmp);
        Stats {
            lag_ms_p50: lags.get(lags.len() / 2).copied().unwrap_or(0.0),
            lag_ms_p99: lags.get(lags.len() * 99 / 100).copied().unwrap_or(0.0),
            lag_ms_max: lags.last().copied().unwrap_or(0.0),
            backlog: state.pending.len(),
            in_flight: state.requests.len(),
            connected: state.connected,
            generation: state.generation,
            partition_count: state.partition_count,
            ..state.stats.clone()
        }
    }

    pub fn backlog(&self) -> usize {
        self.shared.lock().pending.len()
    }

    pub fn connected(&self) -> bool {
        self.shared.lock().connected
    }

    pub fn generation(&self) -> u64 {
        self.shared.lock().generation
    }

    /// Stops the threads and closes the connection (flush first to write what is pending).
    pub fn close(&self) {
        self.shared.lock().stop = true;
        self.shared.work.notify_all();
        self.shared.progress.notify_all();
        if let Some(s) = self.shared.socket.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    /// Makes a new connection the live one and starts its reader.
    fn adopt(
        self: Arc<Self>,
        stream: TcpStream,
        auth: codec::Authenticated,
        again: bool,
    ) -> Result<TcpStream, ConnectError> {
        let reader = stream
            .try_clone()
            .map_err(|e| ConnectError(format!("cannot share the socket: {e}")))?;
        *self.socket.lock().unwrap_or_else(|e| e.into_inner()) = stream.try_clone().ok();
        let link = {
            let mut state = self.lock();
            state.link += 1;
            state.connected = true;
            state.partition_count = auth.partition_count;
            if again {
                state.new_generation();
                state.stats.resyncs += 1;
                state.resettle_at = Some(Instant::now() + self.config.settle);
            }
            state.link
        };
        let shared = self.clone();
        std::thread::Builder::new()
            .name("dita-store-reader".into())
            .spawn(move || shared.read_answers(reader, link))
            .map_err(|e| ConnectError(format!("cannot start the reader thread: {e}")))?;
        Ok(stream)
    }

    fn read_answers(self: Arc<Self>, mut stream: TcpStream, link: u64) {
        loop {
            let message = Message::read(&mut stream);
            let mut state = self.lock();
            if state.link != link {
                return;
            }
            match message {
                Ok(m) if m.is_event() => continue,
                Ok(m) => {
                    let Some(request) = state.requests.remove(&m.correlation_id()) else {
                        continue; // a ping's answer
                    };
                    if m.message_type() == codec::EXCEPTION {
                        state.failed(request.carried);
                        state.error(format!("the member refused a write: {}", m.error_text()));
                    } else {
                        state.acknowledged(request.carried, unix_now());
                    }
                }
                Err(e) => {
                    if !state.stop {
                        state.lost(format!("connection lost: {e}"));
                    }
                    drop(state);
                    self.work.notify_all();
                    self.progress.notify_all();
                    return;
                }
            }
            drop(state);
            self.progress.notify_all();
            self.work.notify_one();
        }
    }

    fn run(self: Arc<Self>, first: TcpStream) {
        let mut stream = Some(first);
        let mut last_sent = Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let Some(live) = stream.as_mut() else {
                if self.lock().stop {
                    return;
                }
                match connect(&self.config) {
                    Ok((s, auth)) => match self.clone().adopt(s, auth, true) {
                        Ok(s) => {
                            stream = Some(s);
                            pause = Duration::from_millis(50);
                        }
                        Err(e) => self.lock().error(e.0),
                    },
                    Err(e) => {
                        let state = self.lock();
                        let mut state = state;
                        state.error(format!("reconnecting: {e}"));
                        let _ = self.work.wait_timeout(state, pause);
                        pause = (pause * 2).min(self.config.max_reconnect_pause);
                    }
                }
                continue;
            };
            let mut state = self.lock();
            if state.stop {
                return;
            }
            if !state.connected {
                drop(state);
                stream = None;
                continue;
            }
            if state.resettle_at.is_some_and(|at| Instant::now() >= at) {
                state.resettle_at = None;
                state.new_generation();
            }
            let stalled = state
                .requests
                .values()
                .any(|r| r.sent.elapsed() > self.config.answer_timeout);
            if stalled {
                state.lost(format!(
                    "no answer within {:?}: the member is not responding",
                    self.config.answer_timeout
                ));
                drop(state);
                let _ = live.shutdown(Shutdown::Both);
                stream = None;
                self.progress.notify_all();
                continue;
            }
            let requests = if state.requests.len() < self.config.max_in_flight {
                state.requests(&self.config.maps)
            } else {
                Vec::new()
            };
            let ping_due = last_sent.elapsed() >= self.config.ping_interval;
            if requests.is_empty() && !ping_due {
                let wait = self.config.ping_interval.saturating_sub(last_sent.elapsed());
                let _ = self.work.wait_timeout(state, wait.min(Duration::from_millis(100)));
                continue;
            }
            drop(state);
            let mut bytes = Vec::with_capacity(requests.iter().map(|r| r.bytes().len()).sum());
            for r in &requests {
                bytes.extend_from_slice(r.bytes());
            }
            if requests.is_empty() {
                let mut ping = codec::ping();
                ping.set_correlation_id(-1);
                bytes.extend_from_slice(ping.bytes());
            }
            if let Err(e) = live.write_all(&bytes) {
                self.lock().lost(format!("write failed: {e}"));
                let _ = live.shutdown(Shutdown::Both);
                stream = None;
                self.progress.notify_all();
            }
            last_sent = Instant::now();
        }
    }
}
