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
//! of the same key (or a broken channel) after that keeps the read's answer out
//! of the cache. The driver's own writes drop the session from the cache after
//! they return, so a process always reads its own writes.
//!
//! # Bounded staleness
//! The channel also subscribes to a *mark* channel of its own, and the listener
//! publishes a numbered mark on it every quarter of `max_stale_ms` through a
//! second connection (the *heart*). Marks arrive in the stream of invalidations,
//! behind every invalidation Redis queued before the `PUBLISH` ran; when the
//! listener reads a mark, it records when that mark was sent. The cache answers
//! only while that record is younger than `max_stale_ms`. Redis queues a write's
//! invalidation before the write's own reply, so every write that returned before
//! the mark was sent has been applied by then. Hence the guarantee, which does not
//! depend on the listener being scheduled in time: **a get that starts more than
//! `max_stale_ms` after a write (by any client) returned sees that write or a
//! later one.** Usually an invalidation is applied within microseconds.
//!
//! A pooled connection made after the channel publishes a probe on the mark
//! channel: no receiver means it reaches another server than the channel (a DNS
//! name that moved, a Sentinel failover), and the channel is given up.
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

/// The mark channel of the channel connection with client id `id`.
pub fn mark_channel(id: i64) -> String {
    format!("__libsession:mark:{id}")
}

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
#[derive(Debug, Clone, PartialEq, Eq)]
enum Channel {
    /// None: nothing is cached. A get may try to open one from `retry_ns` on.
    Down { retry_ns: u64 },
    /// A thread is opening one.
    Opening,
    /// Open, on the server with this tag (see [`super::Conn::server`]), with
    /// this mark channel.
    Up { server: u64, mark: String },
}

/// The reads of one session in flight: how many, and the spoil count (see
/// `Inner::spoils`) of the last invalidation that came for it meanwhile.
#[derive(Default)]
struct Inflight {
    reads: u32,
    spoiled_at: u64,
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
    /// Grows with every invalidation that meets a read in flight (and when
    /// everything is dropped): a read fills only if none came for its session
    /// since it began.
    spoils: u64,
    /// Threads of the channel (opening it, or listening) not yet finished, and
    /// their handles, joined when the store closes.
    threads: u32,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Inner {
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
            spoils: 0,
            threads: 0,
            handles: Vec::new(),
        }
    }

    fn up(&self) -> bool {
        matches!(self.channel, Channel::Up { .. })
    }

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

    /// Keeps the answers of the reads of `id` now in flight out of the cache.
    fn spoil(&mut self, id: &SessionId) {
        if let Some(read) = self.inflight.get_mut(id) {
            self.spoils += 1;
            read.spoiled_at = self.spoils;
        }
    }

    /// Drops every entry and spoils every read in flight.
    fn clear(&mut self) {
        self.entries.clear();
        self.lru.clear();
        self.bytes = 0;
        self.spoils += 1;
        for read in self.inflight.values_mut() {
            read.spoiled_at = self.spoils;
        }
    }

    /// A channel lost: nothing cached, nothing filled from reads under way.
    fn lose_channel(&mut self, retry_ns: u64) {
        self.clear();
        self.epoch += 1;
        self.channel = Channel::Down { retry_ns };
    }

    /// One read of `id` begun at spoil count `began` is done: whether no
    /// invalidation came for it since.
    fn done_reading(&mut self, id: &SessionId, began: u64) -> bool {
        let Some(read) = self.inflight.get_mut(id) else {
            return false;
        };
        let unspoiled = read.spoiled_at <= began;
        read.reads -= 1;
        if read.reads == 0 {
            self.inflight.remove(id);
        }
        unspoiled
    }
}

pub struct LocalCache {
    config: CacheConfig,
    key_prefix: Vec<u8>,
    /// This process's cache (see [`LocalCache::state`]).
    state: AtomicPtr<State>,
    /// When the last mark the listener read was sent (mono ns).
    alive_ns: AtomicU64,
    /// The store is gone: its channel's threads stop.
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

impl State {
    fn new(pid: u32) -> State {
        State {
            pid,
            inner: Mutex::new(Inner::new()),
            finished: Condvar::new(),
        }
    }
}

/// A read recorded in flight; it fills the cache with [`Reading::fill`], or
/// just ends when dropped.
pub struct Reading<'a> {
    cache: &'a LocalCache,
    id: SessionId,
    epoch: u64,
    /// The spoil count when it began.
    began: u64,
    done: bool,
}

/// Counts a thread of the channel finished when dropped, also by a panic.
struct ThreadDone(Arc<LocalCache>);

impl Drop for ThreadDone {
    fn drop(&mut self) {
        let state = self.0.state();
        state.inner.lock().threads -= 1;
        state.finished.notify_all();
    }
}

impl LocalCache {
    pub fn new(config: CacheConfig, key_prefix: &[u8]) -> LocalCache {
        LocalCache {
            config,
            key_prefix: key_prefix.to_vec(),
            state: AtomicPtr::new(Box::into_raw(Box::new(State::new(std::process::id())))),
            alive_ns: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        self.state().inner.lock()
    }

    /// This process's cache. A forked child makes a new, empty one with no
    /// channel, and leaves its copy of the parent's alone: the parent's listener
    /// thread may have held its lock at the fork, and no thread of the child
    /// would ever release it. (Installed with a compare-and-swap, not under a
    /// lock, so that a fork in a child cannot inherit one held.)
    fn state(&self) -> &State {
        let pid = std::process::id();
        let current = self.state.load(Ordering::Acquire);
        // SAFETY: `state` always points to a live State: it is freed only when
        // the cache is dropped, and a State replaced in a child is leaked.
        if unsafe { &*current }.pid == pid {
            return unsafe { &*current };
        }
        let own = Box::into_raw(Box::new(State::new(pid)));
        match self
            .state
            .compare_exchange(current, own, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                for counter in [&self.hits, &self.misses, &self.invalidations, &self.flushes] {
                    counter.store(0, Ordering::Relaxed);
                }
                // SAFETY: just installed; never freed before the cache.
                unsafe { &*own }
            }
            Err(theirs) => {
                // Another thread of this child was first: use its State.
                // SAFETY: `own` was never shared.
                drop(unsafe { Box::from_raw(own) });
                // SAFETY: as above, live until the cache is dropped.
                unsafe { &*theirs }
            }
        }
    }

    /// Whether the channel has proved fresh enough at `now` for the cache to answer.
    fn fresh(&self, now: u64) -> bool {
        let alive = self.alive_ns.load(Ordering::Acquire);
        now.saturating_sub(alive) < super::super::nanos(self.config.max_stale)
    }

    /// The cached session `id`, if the cache may answer at `now` (mono ns);
    /// `None` counts as a miss: the get goes to Redis.
    pub fn lookup(&self, id: &SessionId, now: u64) -> Option<Hit> {
        let mut inner = self.lock();
        let tick = inner.tick + 1;
        let usable = inner.up() && self.fresh(now);
        let hit = match inner.entries.get_mut(id) {
            Some(entry) if usable && now < entry.end_ns => {
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
                Some(hit)
            }
            Some(entry) if now >= entry.end_ns => {
                inner.remove(id);
                None
            }
            _ => None,
        };
        drop(inner);
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Records a read of `id` about to be sent; `None` when no channel is open
    /// (what it reads must not be cached).
    pub fn begin(&self, id: &SessionId) -> Option<Reading<'_>> {
        let mut inner = self.lock();
        if !inner.up() {
            return None;
        }
        inner.inflight.entry(*id).or_default().reads += 1;
        Some(Reading {
            cache: self,
            id: *id,
            epoch: inner.epoch,
            began: inner.spoils,
            done: false,
        })
    }

    /// Drops the session `id` and spoils reads of it in flight: after the
    /// driver's own writes, and for each invalidation.
    pub fn forget(&self, id: &SessionId) {
        let mut inner = self.lock();
        inner.spoil(id);
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
            inner.spoil(&id);
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
            Channel::Down { retry_ns } if now >= retry_ns => {
                inner.epoch += 1;
                inner.channel = Channel::Opening;
                Some(inner.epoch)
            }
            _ => None,
        }
    }

    /// The channel of `epoch` is open on `server` with `mark` channel, as of
    /// `since` (mono ns, before tracking was asked for). False if it was given
    /// up meanwhile (the store closing, a fork).
    pub fn opened(&self, epoch: u64, server: u64, mark: &str, since: u64) -> bool {
        let mut inner = self.lock();
        if inner.epoch != epoch
            || inner.channel != Channel::Opening
            || self.stopped.load(Ordering::Relaxed)
        {
            return false;
        }
        inner.channel = Channel::Up {
            server,
            mark: mark.to_string(),
        };
        inner.failures = 0;
        self.alive_ns.store(since, Ordering::Release);
        true
    }

    /// The listener of `epoch` read the mark sent at `sent` (mono ns): every
    /// invalidation queued before it is applied.
    fn alive(&self, epoch: u64, sent: u64) {
        let inner = self.lock();
        // Under the lock: a listener of an older epoch never vouches for a newer
        // channel.
        if inner.epoch == epoch && inner.up() {
            self.alive_ns.fetch_max(sent, Ordering::AcqRel);
        }
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
        inner.lose_channel(now.saturating_add(wait));
    }

    /// The channel of `epoch` broke: empty the cache; the next get opens another.
    pub fn lost(&self, epoch: u64) {
        let inner = self.lock();
        if inner.epoch == epoch {
            self.flush_channel(inner);
        }
    }

    /// Loses the open channel (the cache emptied, counted as a flush).
    fn flush_channel(&self, mut inner: parking_lot::MutexGuard<'_, Inner>) {
        inner.lose_channel(0);
        drop(inner);
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// The store now reaches the server tagged `server`: a channel that watches
    /// another one is lost (the cache is emptied), and a new one is opened on
    /// the new server at the next get.
    pub fn follow(&self, server: u64) {
        let inner = self.lock();
        if matches!(&inner.channel, Channel::Up { server: watched, .. } if *watched != server) {
            self.flush_channel(inner);
        }
    }

    /// The open channel's epoch and mark channel, for a new pooled connection
    /// to probe (see the top of the file).
    pub fn mark(&self) -> Option<(u64, String)> {
        let inner = self.lock();
        match &inner.channel {
            Channel::Up { mark, .. } => Some((inner.epoch, mark.clone())),
            _ => None,
        }
    }

    /// Whether the listener of `epoch` should go on.
    fn current(&self, epoch: u64) -> bool {
        !self.stopped.load(Ordering::Relaxed) && self.lock().epoch == epoch
    }

    /// Runs `run` in a new thread of the channel of `epoch` (opening it or
    /// listening); a panic in it loses the channel.
    pub fn spawn(
        self: &Arc<Self>,
        epoch: u64,
        run: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        self.lock().threads += 1;
        let done = ThreadDone(Arc::clone(self));
        let spawned = std::thread::Builder::new()
            .name("session-cache".to_string())
            .spawn(move || {
                let done = done;
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).is_err() {
                    done.0.lost(epoch);
                }
            });
        // (On failure the closure, and `done` in it, are dropped: counted.)
        let handle = spawned?;
        let mut inner = self.lock();
        // (Dropping the handle of a finished thread frees what is left.)
        inner.handles.retain(|h| !h.is_finished());
        inner.handles.push(handle);
        Ok(())
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
            channel_up: inner.up(),
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
    // cargo-mutants: an empty drop leaks one State per store; the fast mutant
    // test set cannot see a leak, valgrind_finds_no_error_and_no_leak
    // (tests/c_programs.rs, cached store) does.
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
        let unspoiled = inner.done_reading(&self.id, self.began);
        let cost = found.data.len() + ENTRY_OVERHEAD;
        let same_server = matches!(&inner.channel, Channel::Up { server: s, .. } if *s == server);
        if !unspoiled
            || inner.epoch != self.epoch
            || !same_server
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
            self.cache.lock().done_reading(&self.id, self.began);
        }
    }
}

/// The connections of an open channel: `channel` subscribed to the
/// invalidations and to `mark`, `heart` to publish marks on; and `watch`,
/// asked once a tick whether the server they reach is still the one to watch
/// (under Sentinel: still the primary; gets answered from the cache alone would
/// never find out).
pub struct Connections {
    pub channel: redis::Connection,
    pub heart: redis::Connection,
    pub mark: String,
    pub watch: Box<dyn FnMut() -> bool + Send>,
}

/// The listener: applies the invalidations that arrive on the channel of
/// `epoch` and proves it current with a mark every quarter of `max_stale`, until
/// the channel breaks (then the cache is emptied), the store closes, or another
/// epoch begins.
pub fn listen(cache: &LocalCache, conns: Connections, epoch: u64, command_timeout: Duration) {
    let Connections {
        mut channel,
        mut heart,
        mark,
        mut watch,
    } = conns;
    let heartbeat = super::super::nanos((cache.config.max_stale / 4).max(Duration::from_millis(1)));
    let limit = super::super::nanos(command_timeout);
    let tick = super::super::nanos(LISTENER_TICK);
    let result = (|| -> redis::RedisResult<()> {
        let mut pubsub = channel.as_pubsub();
        // The mark in flight (its number and when it was sent), and when the
        // next one is due.
        let (mut seq, mut sent, mut next) = (0u64, None::<(u64, u64)>, 0u64);
        let mut checked = 0u64;
        loop {
            let now = mono_ns();
            // (Once a tick, not for every message of a busy stream.)
            if now.saturating_sub(checked) >= tick {
                if !cache.current(epoch) {
                    return Ok(());
                }
                if !watch() {
                    // Another server is the one to watch now.
                    return Err(redis::RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::NotConnected,
                    )));
                }
                checked = now;
            }
            match sent {
                Some((_, at)) if now.saturating_sub(at) > limit => {
                    // Published but not delivered in time: the channel is stuck.
                    return Err(redis::RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    )));
                }
                // cargo-mutants: `true` for `now >= next` only publishes marks more
                // often; the numbers (`seq`) only guard against a stray payload.
                None if now >= next => {
                    seq += 1;
                    let receivers: i64 = redis::cmd("PUBLISH")
                        .arg(&mark)
                        .arg(seq)
                        .query(&mut heart)?;
                    // cargo-mutants: without this check the mark that never comes
                    // gives the channel up all the same, `command_timeout` later.
                    if receivers < 1 {
                        // The heart reaches another server than the channel.
                        return Err(redis::RedisError::from(std::io::Error::from(
                            std::io::ErrorKind::NotConnected,
                        )));
                    }
                    sent = Some((seq, now));
                    next = now.saturating_add(heartbeat);
                }
                _ => {}
            }
            let due = sent.map_or(next, |(_, at)| at.saturating_add(limit));
            let wait = due.saturating_sub(mono_ns()).clamp(1_000_000, tick);
            pubsub.set_read_timeout(Some(Duration::from_nanos(wait)))?;
            let message = match pubsub.get_message() {
                Ok(message) => message,
                // cargo-mutants: taking every error for a timeout only delays
                // noticing a dead channel to its next mark, which nobody receives.
                Err(err) if err.is_timeout() => continue,
                Err(err) => return Err(err),
            };
            if message.get_channel_name() == mark {
                // Marks come in the stream order: everything before it is applied.
                if let (Some((number, at)), Ok(got)) = (sent, message.get_payload::<u64>()) {
                    if got == number {
                        cache.alive(epoch, at);
                        sent = None;
                    }
                }
            } else {
                apply(cache, &message);
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
        assert!(cache.opened(epoch, 7, "m", mono_ns()));
        cache
    }

    /// A cache of 10 entries with no channel yet.
    fn closed_cache(max_stale: Duration) -> LocalCache {
        LocalCache::new(
            CacheConfig {
                max_entries: 10,
                max_bytes: 1 << 20,
                max_stale,
            },
            b"p:",
        )
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
    fn a_read_begun_after_an_invalidation_fills_while_older_ones_overlap() {
        let cache = open_cache(10, 1 << 20);
        let older = cache.begin(&id(1)).unwrap();
        cache.forget(&id(1));
        let newer = cache.begin(&id(1)).unwrap();
        newer.fill(7, found(b"new"));
        assert_eq!(cache.lookup(&id(1), mono_ns()).unwrap().data, b"new");
        older.fill(7, found(b"old"));
        assert_eq!(cache.lookup(&id(1), mono_ns()).unwrap().data, b"new");
        // Reads that overlap without end, an invalidation now and then: each
        // read begun after the last invalidation still fills.
        let mut reading = cache.begin(&id(2)).unwrap();
        for round in 0..100u8 {
            cache.forget(&id(2));
            let next = cache.begin(&id(2)).unwrap();
            reading.fill(7, found(b"spoiled"));
            assert!(cache.lookup(&id(2), mono_ns()).is_none(), "round {round}");
            reading = next;
        }
        reading.fill(7, found(b"fresh"));
        assert_eq!(cache.lookup(&id(2), mono_ns()).unwrap().data, b"fresh");
        assert!(cache.lock().inflight.is_empty());
    }

    #[test]
    fn a_listener_of_an_older_epoch_never_vouches_for_a_newer_channel() {
        let cache = closed_cache(Duration::from_millis(100));
        let first = cache.should_open(0).unwrap();
        assert!(cache.opened(first, 7, "m", 1));
        cache.lost(first);
        let second = cache.should_open(0).unwrap();
        assert!(cache.opened(second, 7, "m", 1_000));
        fill(&cache, 1, b"one");
        cache.alive(first, 10_000_000_000);
        assert!(cache.lookup(&id(1), 200_000_000).is_none());
        cache.alive(second, 150_000_000);
        assert!(cache.lookup(&id(1), 200_000_000).is_some());
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
        assert!(cache.opened(epoch, 7, "m", mono_ns()));
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
        let cache = closed_cache(Duration::from_millis(100));
        let epoch = cache.should_open(0).unwrap();
        assert!(cache.should_open(0).is_none(), "one opener at a time");
        let since = mono_ns();
        assert!(cache.opened(epoch, 7, "m", since));
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
    fn bytes_follow_every_entry_in_and_out() {
        let cache = open_cache(10, 1 << 20);
        fill(&cache, 1, &[0; 100]);
        fill(&cache, 2, &[0; 10]);
        fill(&cache, 2, &[0; 20]); // replaces
        let cost = |data: usize| (data + ENTRY_OVERHEAD) as u64;
        assert_eq!(cache.stats().bytes, cost(100) + cost(20));
        cache.forget(&id(1));
        assert_eq!(cache.stats().bytes, cost(20));
        cache.forget(&id(2));
        assert_eq!(cache.stats().bytes, 0);
    }

    #[test]
    fn a_flush_spoils_the_reads_in_flight() {
        let cache = open_cache(10, 1 << 20);
        let reading = cache.begin(&id(1)).unwrap();
        cache.invalidate(None);
        reading.fill(7, found(b"before the flush"));
        assert!(cache.lookup(&id(1), mono_ns()).is_none());
        // And again, with the count of spoils past zero.
        let reading = cache.begin(&id(1)).unwrap();
        cache.invalidate(None);
        reading.fill(7, found(b"before the flush"));
        assert!(cache.lookup(&id(1), mono_ns()).is_none());
    }

    #[test]
    fn a_lost_channel_stops_its_listener() {
        let cache = open_cache(10, 1 << 20);
        let epoch = cache.lock().epoch;
        assert!(cache.current(epoch));
        cache.lost(epoch);
        assert!(!cache.current(epoch));
        let next = cache.should_open(0).unwrap();
        assert!(next > epoch && cache.current(next));
        cache.stop(Duration::ZERO);
        assert!(!cache.current(next), "a closing store stops it too");
    }

    #[test]
    fn a_hit_makes_its_entry_the_most_recently_used() {
        let cache = open_cache(2, 1 << 20);
        fill(&cache, 1, b"a");
        fill(&cache, 2, b"b");
        assert!(cache.lookup(&id(1), mono_ns()).is_some());
        fill(&cache, 3, b"c");
        assert!(
            cache.lookup(&id(2), mono_ns()).is_none(),
            "b was least recently used"
        );
        assert!(cache.lookup(&id(1), mono_ns()).is_some());
        assert!(cache.lookup(&id(3), mono_ns()).is_some());
        let inner = cache.lock();
        assert_eq!(inner.lru.len(), 2);
        assert_eq!(inner.entries.len(), 2);
    }

    #[test]
    fn the_store_closing_waits_for_its_channel_threads_and_joins_them() {
        let cache = Arc::new(open_cache(10, 1 << 20));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        cache
            .spawn(1, move || {
                let _ = rx.recv();
            })
            .unwrap();
        cache.spawn(1, || panic!("a listener that panics")).unwrap();
        assert!(cache.lock().threads >= 1);
        drop(tx);
        let start = Instant::now();
        cache.stop(Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(5));
        let inner = cache.lock();
        assert_eq!(inner.threads, 0);
        assert!(inner.handles.is_empty(), "joined");
        assert!(!inner.up(), "a panic in a channel thread loses the channel");
    }

    #[test]
    fn a_channel_opens_only_in_its_epoch_once_and_while_the_store_lives() {
        let cache = closed_cache(DEFAULT_MAX_STALE);
        let epoch = cache.should_open(0).unwrap();
        assert!(!cache.opened(epoch + 1, 7, "m", 0), "another epoch");
        assert_eq!(cache.mark(), None);
        assert!(cache.opened(epoch, 7, "m", 0));
        assert!(!cache.opened(epoch, 7, "m", 0), "already open");
        assert_eq!(cache.mark(), Some((epoch, "m".to_string())));
        cache.lost(epoch);
        assert_eq!(cache.mark(), None);
        let epoch = cache.should_open(0).unwrap();
        cache.stop(Duration::ZERO);
        assert!(!cache.opened(epoch, 7, "m", 0), "the store is closing");
        assert!(!cache.stats().channel_up);
    }

    #[test]
    fn a_read_that_ends_without_filling_leaves_nothing_in_flight() {
        let cache = open_cache(10, 1 << 20);
        drop(cache.begin(&id(1)).unwrap());
        let kept = cache.begin(&id(2)).unwrap();
        drop(cache.begin(&id(2)).unwrap());
        assert_eq!(cache.lock().inflight.len(), 1);
        kept.fill(7, found(b"two"));
        assert!(cache.lock().inflight.is_empty());
        assert!(cache.lookup(&id(2), mono_ns()).is_some());
    }

    #[test]
    fn an_entry_of_exactly_max_bytes_is_cached() {
        let cache = open_cache(10, ENTRY_OVERHEAD + 10);
        fill(&cache, 1, &[0; 10]);
        assert!(cache.lookup(&id(1), mono_ns()).is_some());
        fill(&cache, 2, &[0; 11]);
        assert!(cache.lookup(&id(2), mono_ns()).is_none());
    }

    #[test]
    fn a_closing_store_waits_no_longer_than_its_limit_for_a_stuck_thread() {
        let cache = Arc::new(open_cache(10, 1 << 20));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..2 {
            let rx = Arc::clone(&rx);
            cache
                .spawn(1, move || {
                    let _ = rx.lock().recv();
                })
                .unwrap();
        }
        // Running threads' handles are kept (finished ones' may go).
        assert_eq!(cache.lock().handles.len(), 2);
        let start = Instant::now();
        cache.stop(Duration::from_millis(50));
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "waited for a stuck thread"
        );
        assert_eq!(cache.lock().threads, 2);
        drop(tx);
        cache.stop(Duration::from_secs(10));
        assert_eq!(cache.lock().threads, 0);
    }

    #[test]
    fn each_channel_connection_has_its_own_mark_channel() {
        assert_eq!(mark_channel(42), "__libsession:mark:42");
        assert_ne!(mark_channel(1), mark_channel(2));
    }

    #[test]
    fn a_failed_open_waits_longer_each_time() {
        let cache = closed_cache(DEFAULT_MAX_STALE);
        let epoch = cache.should_open(1000).unwrap();
        cache.open_failed(epoch, 1000);
        assert!(cache.should_open(1000 + 99_999_999).is_none());
        let epoch = cache.should_open(1000 + 100_000_000).unwrap();
        cache.open_failed(epoch, 0);
        assert!(cache.should_open(199_999_999).is_none());
        assert!(cache.should_open(200_000_000).is_some());
    }
}
