//! The storage contract and one module per driver.
//!
//! A store moves bytes under validated ids and keeps each session's two ends: the
//! absolute end (fixed at create) and the idle end (moved by get, update and touch
//! when the store has an `idle_timeout`). Limits, id generation and the C boundary
//! live above it (`crate::sessions`, `crate::ffi`).
//!
//! Each driver module owns its config keys ([`file::KEYS`], ...), parses them
//! (`parse`) and builds its store (`open`). Adding a driver means a module here and
//! one line in [`DRIVERS`], [`DriverConfig`] and [`open`].

use crate::config::{Root, Section};
use crate::error::{Error, Result, SessionError};
use crate::id::SessionId;
use crate::seal::OwnerTag;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub mod file;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

/// What a conditional write found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The write happened.
    Applied,
    /// No live session has that id (never created, expired, destroyed, regenerated).
    Missing,
    /// The id is the old id of a regenerated session, readable during
    /// `regenerate_grace` but not writable.
    ReadOnly,
    /// Create or regenerate: a live session already has the new id.
    Taken,
    /// Create: the store holds `max_sessions` live sessions.
    Full,
    /// A conditional update: the session's version is no longer the one expected.
    Conflict,
}

/// A change of a session's data inside one atomic read-modify-write: given the
/// current data, the new data (`None`: leave it as it is), or an error that leaves
/// it untouched. It may be called more than once (optimistic stores retry).
pub type Change<'a> = dyn FnMut(&[u8]) -> Result<Option<Vec<u8>>> + 'a;

/// How long an optimistic read-modify-write keeps retrying against concurrent
/// writers of the same session before it reports a timeout.
pub const OPTIMISTIC_DEADLINE: Duration = Duration::from_secs(5);

/// The expiry rules a store applies, from the store's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expiry {
    /// A session also ends this long after its last get, update or touch.
    pub idle_timeout: Option<Duration>,
    /// How long the old id of a regenerated session still reads (read-only).
    pub regenerate_grace: Duration,
}

/// No idle end (the session has no idle timeout).
pub const NO_IDLE_END: u64 = u64::MAX;

impl Expiry {
    /// The idle end of a session refreshed at `now_ns`, never past its absolute end.
    pub fn idle_end(&self, now_ns: u64, absolute_ns: u64) -> u64 {
        match self.idle_timeout {
            None => NO_IDLE_END,
            Some(idle) => now_ns.saturating_add(nanos(idle)).min(absolute_ns),
        }
    }

    /// The new idle end a read at `now_ns` should write, or `None` when the current
    /// one is close enough: a get refreshes only once more than 1% of
    /// `idle_timeout` has passed since the last refresh, so that reads stay reads.
    pub fn refresh_on_read(&self, now_ns: u64, absolute_ns: u64, idle_ns: u64) -> Option<u64> {
        let idle = self.idle_timeout?;
        let wanted = self.idle_end(now_ns, absolute_ns);
        (wanted > idle_ns.saturating_add(nanos(idle) / 100)).then_some(wanted)
    }
}

/// What [`Store::peek`] finds: the data and the absolute end (ns).
pub type Peeked = (Vec<u8>, u64);

/// What [`Store::peek_many`] finds for one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    Live(Peeked),
    /// No live session has the id.
    Missing,
    /// A session is there but cannot be read (`SessionError::Corrupt`).
    Damaged,
}

/// What a store's local read cache (the Redis driver's `local_cache`) holds and
/// did: for the benchmark, the tests and operators.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Gets answered from the cache.
    pub hits: u64,
    /// Gets that went to Redis while the cache was in use.
    pub misses: u64,
    /// Sessions dropped because Redis reported a change.
    pub invalidations: u64,
    /// Times the whole cache was emptied (a lost channel, a flush on Redis).
    pub flushes: u64,
    /// Sessions held now, and their cost in bytes.
    pub entries: u64,
    pub bytes: u64,
    /// Whether the invalidation channel is open.
    pub channel_up: bool,
}

/// The storage contract. Every driver passes the conformance suite in
/// `tests/conformance.rs`. Implementations are shared by all threads.
pub trait Store: Send + Sync {
    /// Stores `data` under `id`, ending `lifetime` from now (and after the idle
    /// timeout). `Taken` when a live session already has that id (nothing is
    /// written), `Full` when the store is at its capacity.
    fn create(&self, id: &SessionId, data: &[u8], lifetime: Duration) -> Result<Outcome>;

    /// The data of a live session (old ids within their grace included), `None` when
    /// it is missing or has ended. Moves the idle end (see [`Expiry::refresh_on_read`]).
    fn get(&self, id: &SessionId) -> Result<Option<Vec<u8>>>;

    /// Replaces the data of a live session, keeping its absolute end and moving its
    /// idle end. `Missing` when there is none (it is never brought back), `ReadOnly`
    /// for the old id of a regenerated session.
    fn update(&self, id: &SessionId, data: &[u8]) -> Result<Outcome>;

    /// The data of a live session and its version, like [`Store::get`]. Versions
    /// only grow: every change of the data (update, per-key changes, regenerate)
    /// makes a greater one; touch does not.
    fn get_versioned(&self, id: &SessionId) -> Result<Option<(Vec<u8>, u64)>>;

    /// Like [`Store::update`], but only while the session's version is `version`:
    /// `Conflict` otherwise, and nothing is written.
    fn update_if(&self, id: &SessionId, data: &[u8], version: u64) -> Result<Outcome>;

    /// One atomic read-modify-write of a live session's data (moving its idle end
    /// when it writes). `Missing` or `ReadOnly` as for [`Store::update`]; an error
    /// of `change` leaves the data untouched. The default is optimistic (read with
    /// the version, write with [`Store::update_if`], retry on `Conflict`); stores
    /// with a lock override it.
    fn modify(&self, id: &SessionId, change: &mut Change) -> Result<Outcome> {
        let deadline = Instant::now() + OPTIMISTIC_DEADLINE;
        let mut conflicts = 0u32;
        loop {
            let Some((data, version)) = self.get_versioned(id)? else {
                return Ok(Outcome::Missing);
            };
            let Some(new) = change(&data)? else {
                return Ok(Outcome::Applied);
            };
            match self.update_if(id, &new, version)? {
                // cargo-mutants: `<=` for `<` is equivalent: they differ only when the
                // clock reads exactly the deadline, and then allow one try more.
                Outcome::Conflict if Instant::now() < deadline => {
                    conflicts += 1;
                    backoff(conflicts);
                }
                Outcome::Conflict => return Err(too_many_conflicts(conflicts)),
                outcome => return Ok(outcome),
            }
        }
    }

    /// Removes a session; removing a missing one succeeds.
    fn destroy(&self, id: &SessionId) -> Result<()>;

    /// Removes a session like [`Store::destroy`] and returns the data it held
    /// when it was live (one round trip on Redis).
    fn take(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        let data = self.peek(id)?.map(|(data, _)| data);
        self.destroy(id)?;
        Ok(data)
    }

    /// [`Store::destroy`] of several sessions (one round trip on Redis).
    fn destroy_many(&self, ids: &[SessionId]) -> Result<()> {
        ids.iter().try_for_each(|id| self.destroy(id))
    }

    /// Moves the idle end of a live session to now + idle timeout (never past its
    /// absolute end). `Applied` for a live session, also without idle timeout and
    /// for an old id within its grace (which is not extended); `Missing` otherwise.
    fn touch(&self, id: &SessionId) -> Result<Outcome>;

    /// Time left until the session ends (the earlier of its two ends), `None` when
    /// it is missing or has ended.
    fn ttl(&self, id: &SessionId) -> Result<Option<Duration>>;

    /// Whether a live session has this id.
    fn exists(&self, id: &SessionId) -> Result<bool> {
        Ok(self.ttl(id)?.is_some())
    }

    /// Live sessions in the store (old ids within their grace included).
    fn count(&self) -> Result<u64>;

    /// The ids of the live sessions (old ids within their grace included), in no
    /// order: for operators (`sessionctl list`), O(sessions) like `count`.
    fn ids(&self) -> Result<Vec<SessionId>>;

    /// Moves a live session to the id `new` in one atomic step: the same data and
    /// absolute end, the idle window restarted. With a grace, `old` stays readable
    /// (read-only) for that long; otherwise no reader finds both ids or neither.
    /// `Missing` when `old` is not live, `ReadOnly` when `old` is itself a
    /// regenerated id, `Taken` when `new` is in use.
    ///
    /// With `rewrite`, the data is first passed to it inside the same atomic step
    /// (as for [`Store::modify`]): the new id gets the data it returns (`None`: the
    /// same bytes), and an error of `rewrite` leaves both ids untouched. Encryption
    /// uses it to seal the data for the new id.
    fn regenerate(
        &self,
        old: &SessionId,
        new: &SessionId,
        rewrite: Option<&mut Change>,
    ) -> Result<Outcome>;

    /// Deletes every ended session and returns how many it deleted. Also drops
    /// the owner-index entries past their bound.
    fn remove_expired(&self) -> Result<usize>;

    /// The data and absolute end (ns) of a live session, without moving its idle
    /// end (a look by the library itself, not a use of the session).
    fn peek(&self, id: &SessionId) -> Result<Option<Peeked>>;

    /// [`Store::peek`] of several sessions (one round trip on Redis). One
    /// damaged session does not fail the others.
    fn peek_many(&self, ids: &[SessionId]) -> Result<Vec<Peek>> {
        ids.iter()
            .map(|id| match self.peek(id) {
                Ok(Some(found)) => Ok(Peek::Live(found)),
                Ok(None) => Ok(Peek::Missing),
                Err(err) if err.code == SessionError::Corrupt => Ok(Peek::Damaged),
                Err(err) => Err(err),
            })
            .collect()
    }

    /// Owner index: records that session `id` may belong to `owner`, until at
    /// least `until_ns` (a bound on the session's absolute end; an entry is kept
    /// until the latest bound it was given).
    fn index_add(&self, owner: &OwnerTag, id: &SessionId, until_ns: u64) -> Result<()>;

    /// Owner index: the ids recorded for `owner` whose bound has not passed, with
    /// their bounds (entries past it are pruned). It may name sessions that have
    /// ended or changed owner since: callers check each one.
    fn index_list(&self, owner: &OwnerTag) -> Result<Vec<(SessionId, u64)>>;

    /// Owner index: forgets `ids` for `owner`.
    fn index_remove(&self, owner: &OwnerTag, ids: &[SessionId]) -> Result<()>;

    /// What the store's local read cache holds and did; `None` without one.
    fn cache_stats(&self) -> Option<CacheStats> {
        None
    }
}

/// The error of an optimistic write that lost to other writers until its deadline.
pub(crate) fn too_many_conflicts(conflicts: u32) -> Error {
    Error::new(
        SessionError::Timeout,
        format!(
            "session changed by other writers on every one of {conflicts} tries: no answer within {} ms",
            OPTIMISTIC_DEADLINE.as_millis()
        ),
    )
}

/// A pause after the `n`th conflict of an optimistic write: none at first, then a
/// random wait up to a bound that grows to 1 ms, so that writers of one session stop
/// colliding in lock step.
pub(crate) fn backoff(n: u32) {
    // cargo-mutants: `==` or `<=` for `<` are equivalent in effect: as `<` does, they
    // pause after every conflict from the third on, where random pauses break the
    // lock step of competing writers; whether the first two conflicts pause is timing.
    // (No pause at all, or none from the third conflict on, is caught.)
    if n < 2 {
        return;
    }
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let bound = (20u64 << n.min(6)).min(1000);
    std::thread::sleep(Duration::from_micros(random % bound));
}

/// The settings of each driver, parsed by the driver's own module.
// One per configured store, made once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverConfig {
    File(file::FileConfig),
    Memory(memory::MemoryConfig),
    #[cfg(feature = "redis")]
    Redis(redis::RedisConfig),
}

/// The keys of `sessions` the Redis driver owns. They live here, not in
/// `redis.rs`, so that a build without the driver still knows them and says why
/// it cannot use them.
pub const REDIS_KEYS: &[&str] = &[
    "storage_name",
    "host_id",
    "url",
    "sentinel",
    "cluster",
    "key_prefix",
    "connect_timeout_ms",
    "command_timeout_ms",
    "pool_size",
    "tls_ca_file",
    "lazy_connect",
    "local_cache",
];

/// Every driver: its names in `sessions.driver`, and the keys of `sessions` it owns.
pub const DRIVERS: &[(&[&str], &[&str])] = &[
    (&["storage", "filesystem", "file"], file::KEYS),
    (&["memory"], memory::KEYS),
    (&["redis"], REDIS_KEYS),
];

/// The driver named `driver`, configured from its keys of `section` (and of the
/// rest of the config, such as `storages` or `databases`).
pub fn parse(driver: &str, section: &Section, root: &Root) -> Result<DriverConfig> {
    match driver {
        "storage" | "filesystem" | "file" => Ok(DriverConfig::File(file::parse(section, root)?)),
        "memory" => Ok(DriverConfig::Memory(memory::parse(section)?)),
        #[cfg(feature = "redis")]
        "redis" => Ok(DriverConfig::Redis(redis::parse(section, root)?)),
        #[cfg(not(feature = "redis"))]
        "redis" => Err(Error::config(format!(
            "{} \"redis\": this libsession was built without the Redis driver (cargo feature \"redis\")",
            section.key_path("driver")
        ))),
        other => Err(Error::config(format!(
            "{} {other:?} is not a known driver; use \"storage\" (files), \"memory\" or \"redis\"",
            section.key_path("driver")
        ))),
    }
}

/// The name of the driver that owns `key`, if any.
pub fn owner_of(key: &str) -> Option<&'static str> {
    DRIVERS
        .iter()
        .find(|(_, keys)| keys.contains(&key))
        .map(|(names, _)| names[0])
}

/// Opens the store a driver configuration describes.
pub fn open(driver: &DriverConfig, expiry: Expiry) -> Result<Box<dyn Store>> {
    Ok(match driver {
        DriverConfig::File(config) => Box::new(file::FileStore::open(config, expiry)?),
        DriverConfig::Memory(config) => Box::new(memory::MemoryStore::new(config, expiry)),
        #[cfg(feature = "redis")]
        DriverConfig::Redis(config) => Box::new(redis::RedisStore::open(config, expiry)?),
    })
}

/// Wall-clock time in nanoseconds since 1970: the clock every driver keeps its ends
/// in, so that processes (and, with Redis, machines) agree.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(nanos)
        .unwrap_or(0)
}

/// A duration in nanoseconds, saturating.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    const S: u64 = 1_000_000_000;

    /// A read moves a session's idle end only once more than 1% of `idle_timeout`
    /// has passed since the last move, so that reads stay reads; the new idle end
    /// is now + `idle_timeout`, never past the absolute end.
    #[test]
    fn reads_refresh_the_idle_end_only_after_more_than_one_percent_of_idle_timeout() {
        let expiry = Expiry {
            idle_timeout: Some(Duration::from_secs(100)),
            regenerate_grace: Duration::ZERO,
        };
        // Last refreshed at `last`: the idle end is 100 s later.
        let last = 1_000 * S;
        let idle_end = last + 100 * S;
        let absolute = last + 10_000 * S;
        assert_eq!(
            expiry.refresh_on_read(last + S / 2, absolute, idle_end),
            None
        );
        // Exactly 1%: not more than 1%.
        assert_eq!(expiry.refresh_on_read(last + S, absolute, idle_end), None);
        assert_eq!(
            expiry.refresh_on_read(last + S + 1, absolute, idle_end),
            Some(last + S + 1 + 100 * S)
        );
        assert_eq!(
            expiry.refresh_on_read(last + 50 * S, last + 120 * S, idle_end),
            Some(last + 120 * S)
        );
        // Without an idle timeout there is no idle end to move.
        assert_eq!(
            Expiry::default().refresh_on_read(last + 50 * S, absolute, NO_IDLE_END),
            None
        );
    }

    /// A store for the trait's provided methods: every conditional write loses to
    /// another writer until `give_in_after` has passed since the first one, and
    /// `peek` answers from `peeks`. Nothing else is called.
    #[derive(Default)]
    struct Fake {
        first_write: Mutex<Option<Instant>>,
        writes: Mutex<u64>,
        give_in_after: Duration,
        peeks: Vec<(SessionId, Result<Option<Peeked>>)>,
    }

    impl Store for Fake {
        fn get_versioned(&self, _: &SessionId) -> Result<Option<(Vec<u8>, u64)>> {
            Ok(Some((b"{}".to_vec(), 7)))
        }
        fn update_if(&self, _: &SessionId, _: &[u8], _: u64) -> Result<Outcome> {
            *self.writes.lock().unwrap() += 1;
            let first = *self
                .first_write
                .lock()
                .unwrap()
                .get_or_insert_with(Instant::now);
            Ok(if first.elapsed() < self.give_in_after {
                Outcome::Conflict
            } else {
                Outcome::Applied
            })
        }
        fn peek(&self, id: &SessionId) -> Result<Option<Peeked>> {
            let (_, found) = self.peeks.iter().find(|(known, _)| known == id).unwrap();
            found.clone()
        }
        fn create(&self, _: &SessionId, _: &[u8], _: Duration) -> Result<Outcome> {
            unreachable!()
        }
        fn get(&self, _: &SessionId) -> Result<Option<Vec<u8>>> {
            unreachable!()
        }
        fn update(&self, _: &SessionId, _: &[u8]) -> Result<Outcome> {
            unreachable!()
        }
        fn destroy(&self, _: &SessionId) -> Result<()> {
            unreachable!()
        }
        fn touch(&self, _: &SessionId) -> Result<Outcome> {
            unreachable!()
        }
        fn ttl(&self, _: &SessionId) -> Result<Option<Duration>> {
            unreachable!()
        }
        fn count(&self) -> Result<u64> {
            unreachable!()
        }
        fn ids(&self) -> Result<Vec<SessionId>> {
            unreachable!()
        }
        fn regenerate(
            &self,
            _: &SessionId,
            _: &SessionId,
            _: Option<&mut Change>,
        ) -> Result<Outcome> {
            unreachable!()
        }
        fn remove_expired(&self) -> Result<usize> {
            unreachable!()
        }
        fn index_add(&self, _: &OwnerTag, _: &SessionId, _: u64) -> Result<()> {
            unreachable!()
        }
        fn index_list(&self, _: &OwnerTag) -> Result<Vec<(SessionId, u64)>> {
            unreachable!()
        }
        fn index_remove(&self, _: &OwnerTag, _: &[SessionId]) -> Result<()> {
            unreachable!()
        }
    }

    /// An optimistic read-modify-write that loses to other writers on every try
    /// keeps trying for `OPTIMISTIC_DEADLINE`, then gives up with
    /// `SESSION_ERROR_TIMEOUT` instead of holding the caller forever; the message
    /// says how many tries lost.
    #[test]
    fn a_modify_that_always_conflicts_times_out_after_the_optimistic_deadline() {
        let store = Fake {
            // Far past the deadline: a modify still trying then has not given up.
            give_in_after: OPTIMISTIC_DEADLINE * 4,
            ..Fake::default()
        };
        let id = SessionId::generate().unwrap();
        let started = Instant::now();
        let result = store.modify(&id, &mut |_: &[u8]| Ok(Some(b"{\"n\":1}".to_vec())));
        let took = started.elapsed();
        let err = result.expect_err("a modify that always conflicts must fail");
        assert_eq!(err.code, SessionError::Timeout, "{}", err.message);
        assert!(
            took >= OPTIMISTIC_DEADLINE && took < OPTIMISTIC_DEADLINE * 2,
            "gave up after {took:?}"
        );
        let tries: u64 = err
            .message
            .strip_prefix("session changed by other writers on every one of ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}", err.message));
        let writes = *store.writes.lock().unwrap();
        assert!(tries > 1 && tries <= writes, "{tries} of {writes} tries");
    }

    /// `peek_many` passes over a damaged session (`Peek::Damaged`, so that one
    /// does not fail the others) but fails on any other error: a store that cannot
    /// be read is an error, never sessions silently skipped.
    #[test]
    fn peek_many_passes_over_damaged_sessions_but_fails_on_storage_errors() {
        let [live, missing, damaged, unreadable] = [(); 4].map(|_| SessionId::generate().unwrap());
        let store = Fake {
            peeks: vec![
                (live, Ok(Some((b"{}".to_vec(), 42)))),
                (missing, Ok(None)),
                (damaged, Err(Error::new(SessionError::Corrupt, "damaged"))),
                (
                    unreadable,
                    Err(Error::new(SessionError::StorageUnavailable, "I/O error")),
                ),
            ],
            ..Fake::default()
        };
        assert_eq!(
            store.peek_many(&[live, missing, damaged]).unwrap(),
            vec![
                Peek::Live((b"{}".to_vec(), 42)),
                Peek::Missing,
                Peek::Damaged
            ]
        );
        let err = store.peek_many(&[live, damaged, unreadable]).unwrap_err();
        assert_eq!(err.code, SessionError::StorageUnavailable);
    }
}
