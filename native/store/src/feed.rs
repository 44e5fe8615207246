//! The feed: what changed in each source (a kernel) goes to the writer as
//! soon as it changes, from a thread of the feed's own.
//!
//! Polled from a Python thread, a hand-over had to take the interpreter lock
//! from the kernel's thread first: up to a switch interval (5 ms) whenever
//! the kernel's thread was busy, the largest part of the projection's lag.
//! Here nothing waits on the interpreter. A source pokes the feed's `Wake`
//! after a change, which costs the kernel's thread one atomic read unless
//! the feed is asleep; the feed takes what changed and then pauses `gap`
//! (longer after a hand-over that took long), so that at high call rates the
//! changes of that pause go as one batch (each key once) instead of one
//! request per call.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::writer::{Document, Writer};

/// Where the feed hands documents: the writer (a stand-in in tests).
pub trait Sink: Send + Sync {
    /// Takes documents to write; returns how many.
    fn submit(&self, documents: Vec<Document>) -> usize;
    /// Grows when the cluster may have lost everything written before.
    fn generation(&self) -> u64;
}

impl Sink for Writer {
    fn submit(&self, documents: Vec<Document>) -> usize {
        Writer::submit(self, documents)
    }

    fn generation(&self) -> u64 {
        Writer::generation(self)
    }
}

/// Something whose changes the feed moves into the writer.
pub trait Source: Send + Sync {
    /// Documents of what changed since the last take, each key once, newest state.
    fn take(&self) -> Vec<Document>;
    fn has_changes(&self) -> bool;
    /// Makes the next take return everything (the cluster may have lost it all).
    fn mark_all_changed(&self);
    /// From now on, poke `wake` after every change.
    fn watch(&self, wake: &Arc<Wake>);
    /// Poke `wake` no more.
    fn unwatch(&self, wake: &Arc<Wake>);
}

/// How a source tells a sleeping feed that it changed.
#[derive(Default)]
pub struct Wake {
    asleep: AtomicBool,
    lock: Mutex<()>,
    ready: Condvar,
}

impl Wake {
    /// Cheap enough for every kernel call: one atomic read while the feed is awake.
    pub fn is_asleep(&self) -> bool {
        self.asleep.load(Ordering::SeqCst)
    }

    pub fn poke(&self) {
        if self.asleep.swap(false, Ordering::SeqCst) {
            let _held = lock(&self.lock);
            self.ready.notify_one();
        }
    }
}

/// After a hand-over the feed pauses at least this many times the CPU time
/// it took. On 2 cores, 9 (a tenth of a core) doubled the lag's p99 at
/// 10,000 calls/s, and 1 cost a third of the highest call rate.
const BUSY_SHARE: u32 = 3;

/// CPU time of the calling thread (zero where the clock is missing).
fn thread_cpu_time() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `t` is, and reads nothing else.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    if status != 0 {
        return Duration::ZERO;
    }
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic on another thread must not take the projection down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Attached {
    id: String,
    source: Arc<dyn Source>,
    /// The writer generation this source last handed everything over in.
    generation: u64,
}

struct Shared {
    writer: Arc<dyn Sink>,
    sources: Mutex<Vec<Attached>>,
    wake: Arc<Wake>,
    stop: AtomicBool,
    gap: Duration,
    idle: Duration,
}

/// Moves sources' changes into a writer from a thread of its own.
pub struct Feed {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Feed {
    /// `gap`: the pause after a hand-over, in which further changes coalesce.
    /// `idle`: the longest sleep without a poke (a new writer generation is
    /// noticed within it).
    pub fn start(writer: Arc<dyn Sink>, gap: Duration, idle: Duration) -> std::io::Result<Feed> {
        let shared = Arc::new(Shared {
            writer,
            sources: Mutex::new(Vec::new()),
            wake: Arc::new(Wake::default()),
            stop: AtomicBool::new(false),
            gap,
            idle,
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dita-store-feed".into())
            .spawn(move || worker.run())?;
        Ok(Feed {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Starts feeding `source` under `id`, replacing a source of that id;
    /// everything it holds goes first.
    pub fn attach(&self, id: &str, source: Arc<dyn Source>) {
        let wake = &self.shared.wake;
        source.watch(wake);
        source.mark_all_changed();
        let generation = self.shared.writer.generation();
        let replaced = {
            let mut sources = lock(&self.shared.sources);
            let old = sources.iter().position(|a| a.id == id).map(|i| sources.remove(i));
            sources.push(Attached {
                id: id.to_owned(),
                source,
                generation,
            });
            old
        };
        if let Some(old) = replaced {
            old.source.unwatch(wake);
        }
        wake.poke();
    }

    /// Stops feeding the source attached under `id`; false when none is.
    pub fn detach(&self, id: &str) -> bool {
        let removed = {
            let mut sources = lock(&self.shared.sources);
            sources.iter().position(|a| a.id == id).map(|i| sources.remove(i))
        };
        removed.map(|a| a.source.unwatch(&self.shared.wake)).is_some()
    }

    /// Hands over what changed now, on the caller's thread; returns how many documents.
    pub fn drain(&self) -> usize {
        self.shared.hand_over()
    }

    pub fn close(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Cleared, so that a feed between its last look and its wait does not wait.
        self.shared.wake.asleep.store(false, Ordering::SeqCst);
        {
            let _held = lock(&self.shared.wake.lock);
            self.shared.wake.ready.notify_all();
        }
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
        for a in std::mem::take(&mut *lock(&self.shared.sources)) {
            a.source.unwatch(&self.shared.wake);
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn run(&self) {
        while !self.stop.load(Ordering::SeqCst) {
            let began = thread_cpu_time();
            if self.hand_over() > 0 {
                // A hand-over holds each kernel's lock while it takes the
                // changed slots, and builds their documents on a core the
                // kernel may want: when many keys change at once, hand over
                // less often (the feed's own work under a quarter of a core)
                // and let the kernels coalesce their changes meanwhile. CPU
                // time, not wall time: a hand-over the scheduler interrupted
                // did no more work, and must not buy a longer pause.
                let spent = thread_cpu_time().saturating_sub(began);
                std::thread::sleep(self.gap.max(spent * BUSY_SHARE));
            } else {
                self.sleep();
            }
        }
    }

    /// Sleeps until a source pokes, or `idle` passes.
    fn sleep(&self) {
        self.wake.asleep.store(true, Ordering::SeqCst);
        // A change made before the flag was up poked nobody: look once more.
        let changed = lock(&self.sources).iter().any(|a| a.source.has_changes());
        if changed || self.stop.load(Ordering::SeqCst) {
            self.wake.asleep.store(false, Ordering::SeqCst);
            return;
        }
        let held = lock(&self.wake.lock);
        // A poke between the look and here cleared the flag: do not sleep through it.
        if self.wake.asleep.load(Ordering::SeqCst) {
            let _ = self.wake.ready.wait_timeout(held, self.idle);
        }
        self.wake.asleep.store(false, Ordering::SeqCst);
    }

    fn hand_over(&self) -> usize {
        let generation = self.writer.generation();
        let sources: Vec<Arc<dyn Source>> = {
            let mut sources = lock(&self.sources);
            for a in sources.iter_mut().filter(|a| a.generation != generation) {
                a.source.mark_all_changed();
                a.generation = generation;
            }
            sources.iter().map(|a| a.source.clone()).collect()
        };
        let mut handed = 0;
        for source in &sources {
            // A source that panics loses this take, not the feed: the other
            // kernels, and its own next changes, go on being written.
            if let Ok(documents) = std::panic::catch_unwind(AssertUnwindSafe(|| source.take())) {
                handed += self.writer.submit(documents);
            }
        }
        handed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    #[derive(Default)]
    struct Counter {
        docs: Mutex<Vec<Document>>,
        generation: AtomicU64,
    }

    impl Sink for Counter {
        fn submit(&self, documents: Vec<Document>) -> usize {
            let n = documents.len();
            lock(&self.docs).extend(documents);
            n
        }
        fn generation(&self) -> u64 {
            self.generation.load(Ordering::SeqCst)
        }
    }

    /// A source whose "kernel" is a list of changed keys; it pokes what watches it, as a kernel call does.
    #[derive(Default)]
    struct Keys {
        changed: Mutex<Vec<String>>,
        all: Vec<String>,
        wakes: Mutex<Vec<Arc<Wake>>>,
    }

    impl Keys {
        fn new(all: &[&str]) -> Arc<Keys> {
            Arc::new(Keys {
                all: all.iter().map(|k| k.to_string()).collect(),
                ..Keys::default()
            })
        }

        fn change(&self, key: &str) {
            lock(&self.changed).push(key.into());
            for wake in lock(&self.wakes).iter() {
                wake.poke();
            }
        }

        fn watched(&self) -> bool {
            !lock(&self.wakes).is_empty()
        }

        fn asleep(&self) -> bool {
            lock(&self.wakes).iter().any(|w| w.is_asleep())
        }
    }

    impl Source for Keys {
        fn take(&self) -> Vec<Document> {
            std::mem::take(&mut *lock(&self.changed))
                .into_iter()
                .map(|key| Document {
                    map: 0,
                    key,
                    version: 1,
                    json: "{}".into(),
                })
                .collect()
        }
        fn has_changes(&self) -> bool {
            !lock(&self.changed).is_empty()
        }
        fn mark_all_changed(&self) {
            *lock(&self.changed) = self.all.clone();
        }
        fn watch(&self, wake: &Arc<Wake>) {
            lock(&self.wakes).push(wake.clone());
        }
        fn unwatch(&self, wake: &Arc<Wake>) {
            lock(&self.wakes).retain(|w| !Arc::ptr_eq(w, wake));
        }
    }

    /// A feed into a counting sink that pauses 100 µs after a hand-over.
    fn started(idle: Duration) -> (Arc<Counter>, Feed) {
        let sink = Arc::new(Counter::default());
        let feed = Feed::start(sink.clone(), Duration::from_micros(100), idle).unwrap();
        (sink, feed)
    }

    fn wait_for(what: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if what() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    fn keys(sink: &Counter) -> Vec<String> {
        lock(&sink.docs).iter().map(|d| d.key.clone()).collect()
    }

    #[test]
    fn a_change_wakes_the_feed_however_long_it_may_sleep() {
        // An idle sleep of an hour: only the source's poke can wake it in time.
        let (sink, feed) = started(Duration::from_secs(3600));
        let source = Keys::new(&["k:0", "k:1"]);
        feed.attach("k", source.clone());
        assert!(wait_for(|| keys(&sink).len() == 2), "attaching hands over everything");
        assert!(wait_for(|| source.asleep()), "nothing changed: the feed sleeps");
        source.change("k:1");
        assert!(wait_for(|| keys(&sink).len() == 3), "the change woke the feed");
        assert_eq!(keys(&sink)[2], "k:1");
        feed.close();
        assert!(!source.watched(), "a closed feed is poked no more");
    }

    struct Broken;

    impl Source for Broken {
        fn take(&self) -> Vec<Document> {
            panic!("a kernel bug");
        }
        fn has_changes(&self) -> bool {
            true
        }
        fn mark_all_changed(&self) {}
        fn watch(&self, _: &Arc<Wake>) {}
        fn unwatch(&self, _: &Arc<Wake>) {}
    }

    #[test]
    fn a_source_that_panics_does_not_stop_the_feed_for_the_others() {
        let (sink, feed) = started(Duration::from_millis(5));
        feed.attach("broken", Arc::new(Broken));
        let source = Keys::new(&["k:0"]);
        feed.attach("k", source.clone());
        assert!(wait_for(|| keys(&sink).len() == 1));
        source.change("k:0");
        assert!(wait_for(|| keys(&sink).len() == 2), "the feed lives on");
        feed.close();
    }

    #[test]
    fn a_new_generation_hands_over_everything_again_and_a_detached_source_is_left_alone() {
        let (sink, feed) = started(Duration::from_millis(5));
        let source = Keys::new(&["k:0", "k:1"]);
        feed.attach("k", source.clone());
        assert!(wait_for(|| keys(&sink).len() == 2));
        sink.generation.fetch_add(1, Ordering::SeqCst);
        assert!(
            wait_for(|| keys(&sink).len() == 4),
            "a reconnected writer gets every key again, without a change"
        );
        assert!(feed.detach("k"));
        assert!(!source.watched(), "a detached source pokes the feed no more");
        assert!(!feed.detach("k"));
        source.change("k:0");
        assert_eq!(feed.drain(), 0, "a detached source is not fed");
        assert_eq!(keys(&sink).len(), 4);
        feed.close();
    }

    #[test]
    fn a_source_attached_again_under_its_id_replaces_the_first() {
        let (sink, feed) = started(Duration::from_millis(5));
        let (first, second) = (Keys::new(&["a:0"]), Keys::new(&["b:0"]));
        feed.attach("k", first.clone());
        feed.attach("k", second.clone());
        assert!(!first.watched() && second.watched());
        assert!(wait_for(|| keys(&sink).contains(&"b:0".to_string())));
        first.change("a:1");
        second.change("b:1");
        assert!(wait_for(|| keys(&sink).contains(&"b:1".to_string())));
        assert!(
            !keys(&sink).contains(&"a:1".to_string()),
            "the replaced source is not fed"
        );
        feed.close();
    }
}
