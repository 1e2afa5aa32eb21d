//! The Redis driver's local read cache (`local_cache`): sessions this process
//! read, kept in its memory and dropped the moment Redis says they changed.
//!
//! # Coherence
//! One connection per process, the *channel*, asks Redis to report every change
//! of a key under the store's prefix (`CLIENT TRACKING on REDIRECT <itself> BCAST
//! PREFIX <key_prefix>`, then `SUBSCRIBE __redis__:invalidate`). Redis then sends
//! the names of changed keys (written, expired, deleted, renamed, their TTL moved)
//! to that connection, and a listener thread drops those sessions from the cache.
//! Broadcast mode ties the whole registration to the channel: the pooled
//! connections that read the sessions track nothing, so a pooled connection that
//! closes cannot leave an entry without its invalidations; only the channel can,
//! and when it breaks the whole cache is emptied and bypassed until a new channel
//! is set up.
//!
//! Races between a read and an invalidation are settled by recording every read
//! in flight before its request is sent ([`LocalCache::begin`]): an invalidation
//! of the same key (or a broken channel) marks it spoiled, and a spoiled read does
//! not fill the cache. The driver's own writes drop the session from the cache
//! after they return, so a process always reads its own writes.
//!
//! # Bounded staleness
//! The listener sends a `PING` every quarter of `max_stale_ms` and, once its
//! answer has come and every invalidation that arrived before it has been
//! applied, records when that `PING` was sent. The cache answers only while that
//! record is younger than `max_stale_ms`. Redis sends a write's invalidation
//! before the write's own reply, so every write that returned before the `PING`
//! was sent is applied by then. Hence the guarantee, which does not depend on the
//! listener being scheduled in time: **a get that starts more than `max_stale_ms`
//! after a write (by any client) returned sees that write or a later one.**
//! Usually an invalidation is applied well under a millisecond after the write.
//!
//! # Expiry
//! Each entry keeps the session's end as Redis reported it (`PTTL`, counted from
//! before the read was sent) and its absolute end, on the monotonic clock: an
//! entry past its end is never served, whatever the wall clock does, and a get
//! that must move the idle end goes to Redis.
//!
//! # Memory and processes
//! At most `max_entries` sessions and `max_bytes` bytes (data plus a fixed
//! [`ENTRY_OVERHEAD`] per entry); the least recently used entries go first. A
//! forked child starts with an empty cache and opens its own channel.

use super::super::CacheStats;
use crate::id::SessionId;
use once_cell::sync::Lazy;
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `local_cache` of a Redis store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most sessions kept.
    pub max_entries: usize,
    /// Most bytes kept: data plus [`ENTRY_OVERHEAD`] per session.
    pub max_bytes: usize,
    /// The cache answers only while the channel has proved, this recently, that
    /// every invalidation sent to it was applied.
    pub max_stale: Duration,
}

/// Default `local_cache.max_entries`.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// Default `local_cache.max_bytes` (64 MiB).
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;
/// Default `local_cache.max_stale_ms`.
pub const DEFAULT_MAX_STALE: Duration = Duration::from_millis(100);

/// The memory an entry takes besides its data (the id twice, the entry, the
/// maps' slots and the allocator's headers), counted against `max_bytes`.
pub const ENTRY_OVERHEAD: usize = 320;

/// The longest a listener waits for a message before it looks whether its
/// store is closing.
pub const LISTENER_TICK: Duration = Duration::from_millis(20);

/// The Pub/Sub channel Redis sends invalidations to (RESP2 redirection).
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// Nanoseconds on the monotonic clock, since the first call in the process.
pub fn mono_ns() -> u64 {
    static BASE: Lazy<Instant> = Lazy::new(Instant::now);
    u64::try_from(BASE.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A session as the cache holds it.
struct Entry {
    data: Vec<u8>,
    version: u64,
    /// The session's absolute end and its current end (monotonic ns).
    absolute_ns: u64,
    end_ns: u64,
    read_only: bool,
    /// Its key in `Inner::lru`.
    used: u64,
}

impl Entry {
    fn cost(&self) -> usize {
        self.data.len() + ENTRY_OVERHEAD
    }
}

/// What a get found in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub data: Vec<u8>,
    pub version: u64,
    /// The session's absolute end and current end (monotonic ns).
    pub absolute_ns: u64,
    pub end_ns: u64,
    /// The old id of a regenerated session, within its grace.
    pub read_only: bool,
}

/// The invalidation channel's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// None: nothing is cached. A get may try to open one from `retry_ns` on.
    Down { retry_ns: u64 },
    /// A get is opening one.
    Opening,
    /// Open, on the server with this tag (see [`super::Conn::server`]).
    Up { server: u64 },
}

/// A read in flight: how many, and whether an invalidation came meanwhile.
#[derive(Default)]
struct Inflight {
    reads: u32,
    spoiled: bool,
}

struct Inner {
    /// Grows whenever a channel is opened or lost: a listener of another epoch
    /// stops.
    epoch: u64,
    channel: Channel,
    /// Failed attempts to open a channel since one was last open.
    failures: u32,
    entries: HashMap<SessionId, Entry>,
    /// Least recently used first.
    lru: BTreeMap<u64, SessionId>,
    tick: u64,
    bytes: usize,
    inflight: HashMap<SessionId, Inflight>,
    /// Threads of the channel (opening it, or listening) not yet finished, and
    /// their handles, joined when the store closes.
    threads: u32,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Inner {
    fn remove(&mut self, id: &SessionId) -> bool {
        match self.entries.remove(id) {
            Some(entry) => {
                self.lru.remove(&entry.used);
                self.bytes -= entry.cost();
                true
            }
            None => false,
        }
    }

    /// Drops every entry and spoils every read in flight.
    fn clear(&mut self) {
        self.entries.clear();
        self.lru.clear();
        self.bytes = 0;
        for read in self.inflight.values_mut() {
            read.spoiled = true;
        }
    }

    /// A channel lost: nothing cached, nothing filled from reads under way.
    fn lose_channel(&mut self, retry_ns: u64) {
        self.clear();
        self.epoch += 1;
        self.channel = Channel::Down { retry_ns };
    }

    fn new() -> Inner {
        Inner {
            epoch: 0,
            channel: Channel::Down { retry_ns: 0 },
            failures: 0,
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            bytes: 0,
            inflight: HashMap::new(),
            threads: 0,
            handles: Vec::new(),
        }
    }

    fn done_reading(&mut self, id: &SessionId) -> bool {
        let Some(read) = self.inflight.get_mut(id) else {
            return false;
        };
        let spoiled = read.spoiled;
        read.reads -= 1;
        if read.reads == 0 {
            self.inflight.remove(id);
        }
        !spoiled
    }
}

pub struct LocalCache {
    config: CacheConfig,
    key_prefix: Vec<u8>,
    /// This process's cache (see [`LocalCache::lock`]).
    state: AtomicPtr<State>,
    /// Taken only in a forked child making its own state, so never held in the
    /// process that owns the state.
    fork_gate: Mutex<()>,
    /// When the last `PING` the listener has seen answered was sent (mono ns).
    alive_ns: AtomicU64,
    /// The store is gone: its listener stops.
    stopped: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
}

/// The cache of one process.
struct State {
    pid: u32,
    inner: Mutex<Inner>,
    /// Signalled when a thread of the channel finishes.
    finished: Condvar,
}

/// A read recorded in flight; it fills the cache with [`Reading::fill`], or
/// just ends when dropped.
pub struct Reading<'a> {
    cache: &'a LocalCache,
    id: SessionId,
    epoch: u64,
    done: bool,
}

impl LocalCache {
    pub fn new(config: CacheConfig, key_prefix: &[u8]) -> LocalCache {
        LocalCache {
            config,
            key_prefix: key_prefix.to_vec(),
            state: AtomicPtr::new(Box::into_raw(Box::new(State {
                pid: std::process::id(),
                inner: Mutex::new(Inner::new()),
                finished: Condvar::new(),
            }))),
            fork_gate: Mutex::new(()),
            alive_ns: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    /// This process's cache. A forked child makes a new, empty one with no
    /// channel, and leaves its copy of the parent's alone: the parent's listener
    /// thread may have held its lock at the fork, and no thread of the child
    /// would ever release it.
    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.state().inner.lock()
    }

    fn state(&self) -> &State {
        let pid = std::process::id();
        // SAFETY: `state` always points to a live State: it is freed only when
        // the cache is dropped, and a State replaced in a child is leaked.
        let state = unsafe { &*self.state.load(Ordering::Acquire) };
        if state.pid == pid {
            return state;
        }
        let _gate = self.fork_gate.lock();
        // SAFETY: as above.
        let state = unsafe { &*self.state.load(Ordering::Acquire) };
        if state.pid == pid {
            return state;
        }
        let own = Box::leak(Box::new(State {
            pid,
            inner: Mutex::new(Inner::new()),
            finished: Condvar::new(),
        }));
        self.state.store(own, Ordering::Release);
        for counter in [&self.hits, &self.misses, &self.invalidations, &self.flushes] {
            counter.store(0, Ordering::Relaxed);
        }
        own
    }

    /// Whether the channel has proved fresh enough at `now` for the cache to answer.
    fn fresh(&self, now: u64) -> bool {
        let alive = self.alive_ns.load(Ordering::Acquire);
        now.saturating_sub(alive) < super::super::nanos(self.config.max_stale)
    }

    /// The cached session `id`, if the cache may answer at `now` (mono ns).
    pub fn lookup(&self, id: &SessionId, now: u64) -> Option<Hit> {
        let mut inner = self.lock();
        if !matches!(inner.channel, Channel::Up { .. }) || !self.fresh(now) {
            return None;
        }
        let tick = inner.tick + 1;
        let Some(entry) = inner.entries.get_mut(id) else {
            drop(inner);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        if now >= entry.end_ns {
            inner.remove(id);
            drop(inner);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let old = std::mem::replace(&mut entry.used, tick);
        let hit = Hit {
            data: entry.data.clone(),
            version: entry.version,
            absolute_ns: entry.absolute_ns,
            end_ns: entry.end_ns,
            read_only: entry.read_only,
        };
        inner.tick = tick;
        inner.lru.remove(&old);
        inner.lru.insert(tick, *id);
        drop(inner);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(hit)
    }

    /// Records a read of `id` about to be sent; `None` when no channel is open
    /// (what it reads must not be cached).
    pub fn begin(&self, id: &SessionId) -> Option<Reading<'_>> {
        let mut inner = self.lock();
        if !matches!(inner.channel, Channel::Up { .. }) {
            return None;
        }
        inner.inflight.entry(*id).or_default().reads += 1;
        Some(Reading {
            cache: self,
            id: *id,
            epoch: inner.epoch,
            done: false,
        })
    }

    /// Drops the session `id` and spoils reads of it in flight: after the
    /// driver's own writes, and for each invalidation.
    pub fn forget(&self, id: &SessionId) {
        let mut inner = self.lock();
        if let Some(read) = inner.inflight.get_mut(id) {
            read.spoiled = true;
        }
        inner.remove(id);
    }

    /// Applies one invalidation message: the changed keys, or `None` when Redis
    /// dropped its whole tracking table (FLUSHALL, FLUSHDB).
    pub fn invalidate(&self, keys: Option<&[Vec<u8>]>) {
        let Some(keys) = keys else {
            self.lock().clear();
            self.flushes.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut inner = self.lock();
        for key in keys {
            // Other keys under the prefix (the owner index) are not sessions.
            let Some(id) = key
                .strip_prefix(self.key_prefix.as_slice())
                .and_then(|id| SessionId::parse(id).ok())
            else {
                continue;
            };
            if let Some(read) = inner.inflight.get_mut(&id) {
                read.spoiled = true;
            }
            if inner.remove(&id) {
                self.invalidations.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// When a get should open a channel (none is open, none is being opened,
    /// and the wait after the last failure is over): the epoch to open it in.
    pub fn should_open(&self, now: u64) -> Option<u64> {
        let mut inner = self.lock();
        match inner.channel {
            Channel::Down { retry_ns, .. } if now >= retry_ns => {
                inner.epoch += 1;
                inner.channel = Channel::Opening;
                Some(inner.epoch)
            }
            _ => None,
        }
    }

    /// The channel of `epoch` is open on `server`, as of `since` (mono ns, before
    /// tracking was asked for). False if it was given up meanwhile (a fork).
    pub fn opened(&self, epoch: u64, server: u64, since: u64) -> bool {
        let mut inner = self.lock();
        if inner.epoch != epoch
            || inner.channel != Channel::Opening
            || self.stopped.load(Ordering::Relaxed)
        {
            return false;
        }
        inner.channel = Channel::Up { server };
        inner.failures = 0;
        self.alive_ns.store(since, Ordering::Release);
        true
    }

    /// Opening the channel of `epoch` failed: the next try waits 100 ms, doubling
    /// up to 5 s.
    pub fn open_failed(&self, epoch: u64, now: u64) {
        let mut inner = self.lock();
        if inner.epoch != epoch {
            return;
        }
        inner.failures = inner.failures.saturating_add(1);
        let wait = (100_000_000u64 << (inner.failures - 1).min(6)).min(5_000_000_000);
        inner.channel = Channel::Down {
            retry_ns: now.saturating_add(wait),
        };
        inner.clear();
    }

    /// The channel of `epoch` broke: empty the cache; the next get opens another.
    pub fn lost(&self, epoch: u64) {
        let mut inner = self.lock();
        if inner.epoch == epoch {
            inner.lose_channel(0);
            drop(inner);
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The store now reaches the server tagged `server`: a channel that watches
    /// another one is lost (the cache is emptied), and a new one is opened on
    /// the new server at the next get.
    pub fn follow(&self, server: u64) {
        let mut inner = self.lock();
        if matches!(inner.channel, Channel::Up { server: watched } if watched != server) {
            inner.lose_channel(0);
            drop(inner);
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether the listener of `epoch` should go on.
    fn current(&self, epoch: u64) -> bool {
        !self.stopped.load(Ordering::Relaxed) && self.lock().epoch == epoch
    }

    /// Runs `run` in a new thread of the channel (opening it or listening).
    pub fn spawn(self: &Arc<Self>, run: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let cache = Arc::clone(self);
        let mut inner = self.lock();
        inner.threads += 1;
        let spawned = std::thread::Builder::new()
            .name("session-cache".to_string())
            .spawn(move || {
                run();
                let state = cache.state();
                state.inner.lock().threads -= 1;
                state.finished.notify_all();
            });
        match spawned {
            Ok(handle) => {
                // (Dropping the handle of a finished thread frees what is left.)
                inner.handles.retain(|h| !h.is_finished());
                inner.handles.push(handle);
                Ok(())
            }
            Err(err) => {
                inner.threads -= 1;
                Err(err)
            }
        }
    }

    /// The store is closing: its channel's threads stop (a listener within
    /// [`LISTENER_TICK`]); waits up to `limit` for them, so that none outlives
    /// the store, unless one is stuck in a connect or a command (bounded by
    /// their timeouts), which is then left to finish on its own.
    pub fn stop(&self, limit: Duration) {
        self.stopped.store(true, Ordering::Relaxed);
        let state = self.state();
        let deadline = Instant::now() + limit;
        let mut inner = state.inner.lock();
        while inner.threads > 0 {
            if state.finished.wait_until(&mut inner, deadline).timed_out() {
                return;
            }
        }
        let handles = std::mem::take(&mut inner.handles);
        drop(inner);
        for handle in handles {
            let _ = handle.join();
        }
    }

    pub fn stats(&self) -> CacheStats {
        let inner = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            entries: inner.entries.len() as u64,
            bytes: inner.bytes as u64,
            channel_up: matches!(inner.channel, Channel::Up { .. }),
        }
    }

    /// Makes room for `cost` bytes, least recently used first.
    fn evict(&self, inner: &mut Inner, cost: usize) {
        while !inner.entries.is_empty()
            && (inner.entries.len() >= self.config.max_entries
                || inner.bytes + cost > self.config.max_bytes)
        {
            let Some((_, oldest)) = inner.lru.pop_first() else {
                break;
            };
            if let Some(entry) = inner.entries.remove(&oldest) {
                inner.bytes -= entry.cost();
            }
        }
    }
}

impl Drop for LocalCache {
    fn drop(&mut self) {
        // SAFETY: this process's State, made by Box (a parent's copy, replaced
        // in a child, stays leaked).
        drop(unsafe { Box::from_raw(*self.state.get_mut()) });
    }
}

impl Reading<'_> {
    /// Caches what the read found, read through a connection to `server`,
    /// unless an invalidation or a lost channel came since [`LocalCache::begin`].
    pub fn fill(mut self, server: u64, found: Hit) {
        self.done = true;
        let cache = self.cache;
        let mut inner = cache.lock();
        let fresh = inner.done_reading(&self.id);
        let cost = found.data.len() + ENTRY_OVERHEAD;
        if !fresh
            || inner.epoch != self.epoch
            || inner.channel != (Channel::Up { server })
            || cost > cache.config.max_bytes
            || cache.config.max_entries == 0
        {
            return;
        }
        inner.remove(&self.id);
        cache.evict(&mut inner, cost);
        inner.tick += 1;
        let used = inner.tick;
        inner.lru.insert(used, self.id);
        inner.bytes += cost;
        inner.entries.insert(
            self.id,
            Entry {
                data: found.data,
                version: found.version,
                absolute_ns: found.absolute_ns,
                end_ns: found.end_ns,
                read_only: found.read_only,
                used,
            },
        );
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.cache.lock().done_reading(&self.id);
        }
    }
}

/// The listener: applies the invalidations that arrive on the channel of
/// `epoch` and proves it fresh with a `PING` every quarter of `max_stale`, until
/// the channel breaks (then the cache is emptied), the store closes, or another
/// epoch begins.
pub fn listen(
    cache: Arc<LocalCache>,
    mut conn: redis::Connection,
    epoch: u64,
    command_timeout: Duration,
) {
    let heartbeat = (cache.config.max_stale / 4).max(Duration::from_millis(1));
    let result = (|| -> redis::RedisResult<()> {
        let mut pubsub = conn.as_pubsub();
        let mut next_ping = 0u64;
        loop {
            if !cache.current(epoch) {
                return Ok(());
            }
            let now = mono_ns();
            if now >= next_ping {
                // Every invalidation sent before the PING's answer is applied
                // before the PING counts: those that came with the answer are
                // queued by redis-rs and read back without waiting.
                pubsub.set_read_timeout(Some(command_timeout))?;
                pubsub.ping::<redis::Value>()?;
                pubsub.set_read_timeout(Some(Duration::from_millis(1)))?;
                loop {
                    match pubsub.get_message() {
                        Ok(message) => apply(&cache, &message),
                        Err(err) if err.is_timeout() => break,
                        Err(err) => return Err(err),
                    }
                }
                cache.alive_ns.fetch_max(now, Ordering::AcqRel);
                next_ping = now + super::super::nanos(heartbeat);
            }
            let wait = next_ping
                .saturating_sub(mono_ns())
                .clamp(1_000_000, super::super::nanos(LISTENER_TICK));
            pubsub.set_read_timeout(Some(Duration::from_nanos(wait)))?;
            match pubsub.get_message() {
                Ok(message) => apply(&cache, &message),
                Err(err) if err.is_timeout() => {}
                Err(err) => return Err(err),
            }
        }
    })();
    if result.is_err() {
        cache.lost(epoch);
    }
}

/// One message on the channel: the keys that changed (an array of names), or
/// nil for "everything".
fn apply(cache: &LocalCache, message: &redis::Msg) {
    if message.get_channel_name() != INVALIDATE_CHANNEL {
        return;
    }
    match message.get_payload::<Option<Vec<Vec<u8>>>>() {
        Ok(keys) => cache.invalidate(keys.as_deref()),
        // Not a list of names: trust nothing cached.
        Err(_) => cache.invalidate(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> SessionId {
        SessionId::parse(format!("{:064x}", n).as_bytes()).unwrap()
    }

    fn open_cache(max_entries: usize, max_bytes: usize) -> LocalCache {
        let cache = LocalCache::new(
            CacheConfig {
                max_entries,
                max_bytes,
                max_stale: Duration::from_secs(3600),
            },
            b"p:",
        );
        let epoch = cache.should_open(0).unwrap();
        assert!(cache.opened(epoch, 7, mono_ns()));
        cache
    }

    fn found(data: &[u8]) -> Hit {
        Hit {
            data: data.to_vec(),
            version: 1,
            absolute_ns: u64::MAX,
            end_ns: u64::MAX,
            read_only: false,
        }
    }

    fn fill(cache: &LocalCache, n: u8, data: &[u8]) {
        cache.begin(&id(n)).unwrap().fill(7, found(data));
    }

    #[test]
    fn a_read_fills_and_a_later_lookup_hits() {
        let cache = open_cache(10, 1 << 20);
        assert_eq!(cache.lookup(&id(1), mono_ns()), None);
        fill(&cache, 1, b"one");
        assert_eq!(cache.lookup(&id(1), mono_ns()).unwrap().data, b"one");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1));
        assert_eq!(stats.bytes, (3 + ENTRY_OVERHEAD) as u64);
    }

    #[test]
    fn an_invalidation_during_a_read_keeps_its_value_out() {
        let cache = open_cache(10, 1 << 20);
        let reading = cache.begin(&id(1)).unwrap();
        cache.invalidate(Some(&[b"p:"
            .iter()
            .chain(id(1).as_bytes())
            .copied()
            .collect()]));
        reading.fill(7, found(b"old"));
        assert_eq!(cache.lookup(&id(1), mono_ns()), None);
        // The next read, begun after the invalidation, fills.
        fill(&cache, 1, b"new");
        assert_eq!(cache.lookup(&id(1), mono_ns()).unwrap().data, b"new");
    }

    #[test]
    fn an_own_write_during_a_read_keeps_its_value_out() {
        let cache = open_cache(10, 1 << 20);
        let first = cache.begin(&id(1)).unwrap();
        let second = cache.begin(&id(1)).unwrap();
        cache.forget(&id(1));
        first.fill(7, found(b"old"));
        second.fill(7, found(b"old"));
        assert_eq!(cache.lookup(&id(1), mono_ns()), None);
        assert!(cache.lock().inflight.is_empty());
    }

    #[test]
    fn other_keys_and_other_prefixes_invalidate_nothing() {
        let cache = open_cache(10, 1 << 20);
        fill(&cache, 1, b"one");
        let other: Vec<u8> = b"q:".iter().chain(id(1).as_bytes()).copied().collect();
        cache.invalidate(Some(&[other, b"p:owner:abc".to_vec(), b"p:".to_vec()]));
        assert!(cache.lookup(&id(1), mono_ns()).is_some());
        assert_eq!(cache.stats().invalidations, 0);
        cache.invalidate(None);
        assert_eq!(cache.lookup(&id(1), mono_ns()), None);
        assert_eq!(cache.stats().flushes, 1);
    }

    #[test]
    fn a_lost_channel_empties_the_cache_and_spoils_reads_in_flight() {
        let cache = open_cache(10, 1 << 20);
        fill(&cache, 1, b"one");
        let reading = cache.begin(&id(2)).unwrap();
        let epoch = cache.lock().epoch;
        cache.lost(epoch - 1); // an older channel: nothing happens
        assert!(cache.lookup(&id(1), mono_ns()).is_some());
        cache.lost(epoch);
        assert_eq!(cache.stats().entries, 0);
        assert!(cache.begin(&id(1)).is_none(), "no channel, no fill");
        // A new channel: the read begun before does not fill.
        let epoch = cache.should_open(0).unwrap();
        assert!(cache.opened(epoch, 7, mono_ns()));
        reading.fill(7, found(b"two"));
        assert_eq!(cache.lookup(&id(2), mono_ns()), None);
    }

    #[test]
    fn a_read_through_another_server_does_not_fill() {
        let cache = open_cache(10, 1 << 20);
        cache.begin(&id(1)).unwrap().fill(8, found(b"one"));
        assert_eq!(cache.lookup(&id(1), mono_ns()), None);
    }

    #[test]
    fn a_new_primary_empties_the_cache_and_drops_the_channel() {
        let cache = open_cache(10, 1 << 20);
        fill(&cache, 1, b"one");
        cache.follow(7);
        assert!(cache.lookup(&id(1), mono_ns()).is_some(), "same server");
        cache.follow(8);
        let stats = cache.stats();
        assert_eq!(
            (stats.entries, stats.channel_up, stats.flushes),
            (0, false, 1)
        );
        assert!(cache.should_open(0).is_some(), "a new channel is opened");
    }

    #[test]
    fn an_entry_past_its_end_is_never_served() {
        let cache = open_cache(10, 1 << 20);
        let now = mono_ns();
        let mut hit = found(b"one");
        hit.end_ns = now + 1_000_000;
        cache.begin(&id(1)).unwrap().fill(7, hit);
        assert!(cache.lookup(&id(1), now).is_some());
        assert_eq!(cache.lookup(&id(1), now + 1_000_000), None);
        assert_eq!(cache.stats().entries, 0);
    }

    #[test]
    fn a_channel_not_proved_fresh_does_not_answer() {
        let cache = LocalCache::new(
            CacheConfig {
                max_entries: 10,
                max_bytes: 1 << 20,
                max_stale: Duration::from_millis(100),
            },
            b"p:",
        );
        let epoch = cache.should_open(0).unwrap();
        assert!(cache.should_open(0).is_none(), "one opener at a time");
        let since = mono_ns();
        assert!(cache.opened(epoch, 7, since));
        fill(&cache, 1, b"one");
        assert!(cache.lookup(&id(1), since + 99_000_000).is_some());
        assert!(cache.lookup(&id(1), since + 100_000_000).is_none());
        assert_eq!(cache.stats().entries, 1, "bypassed, not dropped");
    }

    #[test]
    fn the_least_recently_used_go_first_within_both_limits() {
        let cache = open_cache(3, 1 << 20);
        fill(&cache, 1, b"a");
        fill(&cache, 2, b"b");
        fill(&cache, 3, b"c");
        assert!(cache.lookup(&id(1), mono_ns()).is_some());
        fill(&cache, 4, b"d");
        assert!(
            cache.lookup(&id(2), mono_ns()).is_none(),
            "least recently used"
        );
        for n in [1, 3, 4] {
            assert!(cache.lookup(&id(n), mono_ns()).is_some());
        }
        let cache = open_cache(100, 2 * (ENTRY_OVERHEAD + 10));
        fill(&cache, 1, &[0; 10]);
        fill(&cache, 2, &[0; 10]);
        fill(&cache, 3, &[0; 10]);
        let stats = cache.stats();
        assert_eq!(
            (stats.entries, stats.bytes),
            (2, 2 * (ENTRY_OVERHEAD as u64 + 10))
        );
        assert!(cache.lookup(&id(1), mono_ns()).is_none());
        fill(&cache, 4, &[0; 2 * (ENTRY_OVERHEAD + 10)]);
        assert!(
            cache.lookup(&id(4), mono_ns()).is_none(),
            "bigger than max_bytes"
        );
        assert_eq!(cache.stats().entries, 2);
    }

    #[test]
    fn a_failed_open_waits_longer_each_time() {
        let cache = LocalCache::new(
            CacheConfig {
                max_entries: 10,
                max_bytes: 1 << 20,
                max_stale: DEFAULT_MAX_STALE,
            },
            b"p:",
        );
        let epoch = cache.should_open(1000).unwrap();
        cache.open_failed(epoch, 1000);
        assert!(cache.should_open(1000 + 99_999_999).is_none());
        let epoch = cache.should_open(1000 + 100_000_000).unwrap();
        cache.open_failed(epoch, 0);
        assert!(cache.should_open(199_999_999).is_none());
        assert!(cache.should_open(200_000_000).is_some());
    }
}
