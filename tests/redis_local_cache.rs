//! The Redis driver's local read cache (`local_cache`) against real
//! `redis-server`s that each test starts on a free loopback port: gets answered
//! from memory, and every change made elsewhere (another process, `redis-cli`,
//! expiry, a restart) seen within the invalidation delay.

mod support;

use session::config::Config;
use session::store::CacheStats;
use session::{SessionError, Sessions};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::redis_server::RedisServer;

/// Sessions on `server` with extra `sessions` keys (a JSON fragment).
fn open(server: &RedisServer, extra: &str) -> Sessions {
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "lifetime": 3600{extra}}}}}"#,
        server.url()
    );
    Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap()
}

fn open_err(json: &str) -> session::Error {
    match Config::from_json(json.as_bytes()).and_then(|config| Sessions::open(&config)) {
        Ok(_) => panic!("opened: {json}"),
        Err(err) => err,
    }
}

/// A cache with a generous `max_stale_ms`: on a loaded machine a late heartbeat
/// would make gets go to Redis, and counts of hits would not hold. (The bound
/// itself is tested with the default, 100 ms.)
const CACHED: &str = r#", "local_cache": {"max_stale_ms": 2000}"#;

/// Whether a get of `id` through `s` is answered from the cache.
fn hits(s: &Sessions, id: &str) -> bool {
    let before = stats(s).hits;
    assert!(data(s, id).is_some());
    stats(s).hits == before + 1
}

fn stats(s: &Sessions) -> CacheStats {
    s.store().cache_stats().expect("a local cache")
}

/// Runs `redis-cli` against `server`, as an operator would.
fn redis_cli(server: &RedisServer, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli (install it with `bash tests/run_all.sh`)");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Polls `get` until `wanted` says yes; the time it took. Panics after 2 s.
fn until(mut wanted: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !wanted() {
        assert!(start.elapsed() < Duration::from_secs(2), "not seen in 2 s");
        std::hint::spin_loop();
    }
    start.elapsed()
}

/// Reads `ids` through `s` until the cache holds exactly them and no late
/// invalidation (of their creates, say) comes for 100 ms: a first get may race
/// its create's own invalidation, which then drops a fresh entry.
fn cache_all(s: &Sessions, ids: &[&str]) {
    let start = Instant::now();
    loop {
        let before = stats(s).invalidations;
        for id in ids {
            assert!(data(s, id).is_some());
        }
        std::thread::sleep(Duration::from_millis(100));
        let now = stats(s);
        if now.entries == ids.len() as u64 && now.invalidations == before {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not cached: {now:?}"
        );
    }
}

fn data(s: &Sessions, id: &str) -> Option<Vec<u8>> {
    match s.get(id.as_bytes()) {
        Ok(data) => Some(data),
        Err(err) if err.code == SessionError::NotFound => None,
        Err(err) => panic!("get: {err:?}"),
    }
}

#[test]
fn config_is_checked() {
    let base = r#"{"sessions": {"driver": "redis", "url": "redis://127.0.0.1:1", "lazy_connect": true, "local_cache": "#;
    for (cache, wanted) in [
        ("1}}", "sessions.local_cache must be an object (or false)"),
        (
            r#"{"max_entries": 0}}}"#,
            "sessions.local_cache.max_entries",
        ),
        (r#"{"max_bytes": 100}}}"#, "sessions.local_cache.max_bytes"),
        (
            r#"{"max_stale_ms": 0}}}"#,
            "sessions.local_cache.max_stale_ms",
        ),
        (r#"{"max_entris": 10}}}"#, "max_entris"),
    ] {
        let err = open_err(&format!("{base}{cache}"));
        assert_eq!(err.code, SessionError::Config, "{cache}");
        assert!(err.message.contains(wanted), "{cache}: {}", err.message);
    }
    let err = open_err(
        r#"{"sessions": {"driver": "redis", "cluster": ["127.0.0.1:1"], "local_cache": {}}}"#,
    );
    assert!(
        err.message
            .contains("sessions.local_cache is not available with sessions.cluster"),
        "{}",
        err.message
    );
    // `false` and a lazy store: no cache, and no connection at open.
    let s =
        Sessions::open(&Config::from_json(format!("{base}false}}}}").as_bytes()).unwrap()).unwrap();
    assert!(s.store().cache_stats().is_none());
    let s =
        Sessions::open(&Config::from_json(format!("{base}{{}}}}}}").as_bytes()).unwrap()).unwrap();
    assert!(!stats(&s).channel_up);
}

#[test]
fn a_user_who_may_not_track_is_told_at_init() {
    let server = RedisServer::start(&[]);
    redis_cli(
        &server,
        &[
            "ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "-client",
        ],
    );
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "redis://app:pw@127.0.0.1:{}", "local_cache": {{}}}}}}"#,
        server.port
    );
    let err = open_err(&json);
    assert_eq!(err.code, SessionError::Config, "{}", err.message);
    assert!(
        err.message.contains("local_cache needs CLIENT TRACKING"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("pw"), "{}", err.message);
}

#[test]
fn gets_come_from_memory_and_every_write_is_seen() {
    let server = RedisServer::start(&[]);
    // (A generous max_stale_ms: on a loaded machine a late heartbeat would make
    // a get go to Redis, and the exact count of hits below would not hold.)
    let cached = open(&server, r#", "local_cache": {"max_stale_ms": 5000}"#);
    let other = open(&server, "");
    let id = cached.create(b"{\"n\":0}").unwrap();
    let id = id.as_str();

    cache_all(&cached, &[id]);
    let before = stats(&cached);
    for _ in 0..100 {
        assert_eq!(data(&cached, id).unwrap(), b"{\"n\":0}");
    }
    let after = stats(&cached);
    assert_eq!(after.hits - before.hits, 100, "{after:?}");
    assert!(after.channel_up && after.entries == 1, "{after:?}");

    // Its own writes: seen by the very next get, every time.
    for n in 1..=300 {
        let value = format!("{{\"n\":{n}}}");
        if n % 2 == 0 {
            cached.update(id.as_bytes(), value.as_bytes()).unwrap();
        } else {
            cached
                .set_value(id.as_bytes(), b"n", n.to_string().as_bytes())
                .unwrap();
        }
        assert_eq!(data(&cached, id).unwrap(), value.as_bytes());
        assert_eq!(
            cached.get_value(id.as_bytes(), b"n").unwrap().unwrap(),
            n.to_string().as_bytes()
        );
    }

    // Another client's writes: seen once the invalidation arrives.
    let mut delays = Vec::new();
    for n in 1000..1100 {
        until(|| hits(&cached, id)); // cached again
        let value = format!("{{\"n\":{n}}}");
        other.update(id.as_bytes(), value.as_bytes()).unwrap();
        delays.push(until(|| data(&cached, id).unwrap() == value.as_bytes()));
    }
    delays.sort();
    eprintln!(
        "another client's update seen after: median {:?}, max {:?}",
        delays[50], delays[99]
    );
    assert!(stats(&cached).invalidations >= 100);

    // Destroyed elsewhere: gone.
    other.destroy(id.as_bytes()).unwrap();
    until(|| data(&cached, id).is_none());

    // Destroyed and regenerated here: never served from the cache again.
    let id = cached.create(b"{}").unwrap();
    until(|| hits(&cached, id.as_str()));
    cached.destroy(id.as_bytes()).unwrap();
    assert_eq!(data(&cached, id.as_str()), None);
    let id = cached.create(b"{\"v\":1}").unwrap();
    until(|| hits(&cached, id.as_str()));
    let new = cached.regenerate(id.as_bytes()).unwrap();
    assert_eq!(data(&cached, id.as_str()), None);
    assert_eq!(data(&cached, new.as_str()).unwrap(), b"{\"v\":1}");
    // Regenerated elsewhere.
    until(|| hits(&cached, new.as_str()));
    let newer = other.regenerate(new.as_bytes()).unwrap();
    until(|| data(&cached, new.as_str()).is_none());
    assert_eq!(data(&cached, newer.as_str()).unwrap(), b"{\"v\":1}");
}

#[test]
fn changes_made_with_redis_cli_are_seen() {
    let server = RedisServer::start(&[]);
    let cached = open(&server, CACHED);
    let id = cached.create(b"before").unwrap();
    let key = format!("session:{id}");
    cache_all(&cached, &[id.as_str()]);
    assert_eq!(data(&cached, id.as_str()).unwrap(), b"before");

    redis_cli(&server, &["HSET", &key, "d", "by hand"]);
    until(|| data(&cached, id.as_str()).unwrap() == b"by hand");
    until(|| hits(&cached, id.as_str()));
    redis_cli(&server, &["PEXPIRE", &key, "1"]);
    until(|| data(&cached, id.as_str()).is_none());

    let id = cached.create(b"x").unwrap();
    until(|| hits(&cached, id.as_str()));
    redis_cli(&server, &["DEL", &format!("session:{id}")]);
    until(|| data(&cached, id.as_str()).is_none());

    let id = cached.create(b"x").unwrap();
    until(|| hits(&cached, id.as_str()));
    let flushes = stats(&cached).flushes;
    redis_cli(&server, &["FLUSHALL"]);
    until(|| data(&cached, id.as_str()).is_none());
    assert_eq!(stats(&cached).flushes, flushes + 1);
}

#[test]
fn an_expired_session_is_not_served_without_any_message() {
    let server = RedisServer::start(&["--enable-debug-command", "yes"]);
    // Redis's active expiry off: a key that expires sends no message until it is
    // accessed, so only the cache's own clock can stop it answering.
    redis_cli(&server, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let cached = open(&server, r#", "local_cache": {"max_stale_ms": 60000}"#);
    let id = cached.create_ttl(b"short", 1).unwrap();
    cache_all(&cached, &[id.as_str()]);
    let invalidations = stats(&cached).invalidations;
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        stats(&cached).invalidations,
        invalidations,
        "a message came"
    );
    assert_eq!(stats(&cached).entries, 1);
    assert_eq!(data(&cached, id.as_str()), None);
    redis_cli(&server, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);

    // And with an idle timeout, a get that must move the idle end goes to Redis.
    let idle = open(&server, r#", "idle_timeout": 1, "local_cache": {}"#);
    let id = idle.create(b"idle").unwrap();
    let key = format!("session:{id}");
    for _ in 0..12 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(data(&idle, id.as_str()).unwrap(), b"idle");
    }
    let pttl: i64 = server.query(0, &[b"PTTL", key.as_bytes()]);
    assert!(pttl > 850, "gets did not move the idle end: PTTL {pttl}");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(data(&idle, id.as_str()), None);
}

#[test]
fn a_lost_channel_or_a_restarted_server_empties_the_cache() {
    let mut server = RedisServer::start(&[]);
    // A long command timeout: a broken channel must be noticed by its broken
    // connection at once, not by a mark that never comes (which takes that long).
    let cached = open(
        &server,
        r#", "command_timeout_ms": 5000, "local_cache": {"max_stale_ms": 2000}"#,
    );
    let ids: Vec<_> = (0..50)
        .map(|i| cached.create(format!("{i}").as_bytes()).unwrap())
        .collect();
    cache_all(
        &cached,
        &ids.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
    );

    // The channel killed: the cache empties at once, and a change made while no
    // channel exists is never hidden.
    let flushes = stats(&cached).flushes;
    let killed = redis_cli(&server, &["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed.trim(), "1", "one channel per store");
    redis_cli(
        &server,
        &["HSET", &format!("session:{}", ids[0]), "d", "new"],
    );
    until(|| stats(&cached).flushes > flushes);
    assert_eq!(stats(&cached).entries, 0);
    assert_eq!(data(&cached, ids[0].as_str()).unwrap(), b"new");
    // The next gets open a new channel and fill the cache again.
    until(|| {
        data(&cached, ids[1].as_str());
        stats(&cached).channel_up && stats(&cached).entries > 0
    });
    redis_cli(
        &server,
        &["HSET", &format!("session:{}", ids[1]), "d", "newer"],
    );
    until(|| data(&cached, ids[1].as_str()).unwrap() == b"newer");

    // A restart (with no data): nothing cached survives it.
    let flushes = stats(&cached).flushes;
    server.restart();
    until(|| stats(&cached).flushes > flushes);
    assert_eq!(stats(&cached).entries, 0);
    until(|| matches!(cached.get(ids[2].as_bytes()), Err(e) if e.code == SessionError::NotFound));
    let id = cached.create(b"after").unwrap();
    until(|| hits(&cached, id.as_str()));
    assert_eq!(data(&cached, id.as_str()).unwrap(), b"after");
}

#[test]
fn owner_index_and_encryption_work_through_the_cache() {
    let server = RedisServer::start(&[]);
    let extra = r#", "owner_key": "user", "secret": "0123456789abcdef0123456789abcdef""#;
    let cached = open(&server, &format!("{extra}{CACHED}"));
    let other = open(&server, extra);
    let ids: Vec<_> = (0..3)
        .map(|_| cached.create(b"{\"user\":\"ann\"}").unwrap())
        .collect();
    cache_all(
        &cached,
        &ids.iter().map(|id| id.as_str()).collect::<Vec<_>>(),
    );
    for id in &ids {
        assert!(hits(&cached, id.as_str()));
        assert_eq!(data(&cached, id.as_str()).unwrap(), b"{\"user\":\"ann\"}");
    }
    // Sealed in Redis: the plain text is nowhere in it.
    let stored: Vec<u8> = server.query(
        0,
        &[b"HGET", format!("session:{}", ids[0]).as_bytes(), b"d"],
    );
    assert!(!String::from_utf8_lossy(&stored).contains("ann"));
    assert_eq!(other.destroy_owner(b"ann").unwrap(), 3);
    for id in &ids {
        until(|| data(&cached, id.as_str()).is_none());
    }
    let id = cached.create(b"{\"user\":\"bob\"}").unwrap();
    cache_all(&cached, &[id.as_str()]);
    assert_eq!(cached.destroy_owner(b"bob").unwrap(), 1);
    assert_eq!(data(&cached, id.as_str()), None);
}

#[test]
fn memory_stays_within_max_bytes() {
    let server = RedisServer::start(&[]);
    let max_bytes = 4 << 20;
    let cached = open(
        &server,
        &format!(r#", "local_cache": {{"max_entries": 1000000, "max_bytes": {max_bytes}}}"#),
    );
    let writer = open(&server, "");
    let value = format!("{{\"pad\":\"{}\"}}", "x".repeat(4000));
    let ids: Vec<_> = (0..10_000)
        .map(|_| writer.create(value.as_bytes()).unwrap())
        .collect();
    let rss_before = rss_kib();
    for round in 0..2 {
        for id in &ids {
            assert_eq!(data(&cached, id.as_str()).unwrap().len(), value.len());
        }
        let stats = stats(&cached);
        assert!(stats.bytes <= max_bytes as u64, "round {round}: {stats:?}");
        assert!(stats.entries > 500, "round {round}: {stats:?}");
    }
    let grown = rss_kib().saturating_sub(rss_before);
    eprintln!(
        "read {} MiB of sessions through a {} MiB cache: RSS grew {grown} KiB",
        (ids.len() * value.len()) >> 20,
        max_bytes >> 20
    );
    assert!(
        grown < 2 * (max_bytes as u64 >> 10) + 8192,
        "RSS grew {grown} KiB"
    );
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

// ---------------------------------------------------------------------------
// One process writes, another reads through its cache
// ---------------------------------------------------------------------------

const WRITES: u64 = 100_000;
const PAUSE_EVERY: u64 = 2_000;
const WRITER: &str = "LIBSESSION_CACHE_WRITER";

/// The monotonic clock, which is the same in every process of the machine.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// A file both processes map: slot 0 is how many writes have returned, slot n
/// when write n returned.
struct Shared {
    ptr: *mut AtomicU64,
}

// SAFETY: the mapping lives as long as the process and is only read and
// written through atomics.
unsafe impl Sync for Shared {}

impl Shared {
    fn map(path: &std::path::Path, create: bool) -> Shared {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(create)
            .open(path)
            .unwrap();
        let len = (WRITES as usize + 1) * 8;
        file.set_len(len as u64).unwrap();
        use std::os::fd::AsRawFd;
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED);
        Shared { ptr: ptr.cast() }
    }

    fn slot(&self, n: u64) -> &AtomicU64 {
        assert!(n <= WRITES);
        unsafe { &*self.ptr.add(n as usize) }
    }
}

#[test]
#[ignore = "the writer process of a_reader_never_sees_a_write_older_than_max_stale"]
fn writer_role() {
    let Ok(args) = std::env::var(WRITER) else {
        return;
    };
    let mut args = args.split(' ');
    let (url, id, path) = (
        args.next().unwrap(),
        args.next().unwrap(),
        args.next().unwrap(),
    );
    let json =
        format!(r#"{{"sessions": {{"driver": "redis", "url": "{url}", "lifetime": 3600}}}}"#);
    let s = Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap();
    let shared = Shared::map(std::path::Path::new(path), false);
    for n in 1..=WRITES {
        s.update(id.as_bytes(), n.to_string().as_bytes()).unwrap();
        shared.slot(n).store(mono_ns(), Ordering::Release);
        shared.slot(0).store(n, Ordering::Release);
        if n % PAUSE_EVERY == 0 {
            // A quiet spell longer than max_stale_ms: a stale value cached by a
            // read that raced the last write would now outlive the bound, with no
            // later write to drop it.
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    println!("WRITER DONE");
}

const READERS: usize = 4;

/// What one reader saw: its gets, those that returned a value older than the
/// last write returned before they began, those older by `max_stale_ms` or more,
/// and the oldest (ns).
#[derive(Default)]
struct Reads {
    reads: u64,
    stale: u64,
    late: u64,
    oldest: u64,
}

/// Gets `id` through `cached` in a tight loop until the writer is done.
fn read_until_done(
    cached: &Sessions,
    shared: &Shared,
    id: &str,
    max_stale_ms: u64,
    deadline: Instant,
) -> Reads {
    let mut r = Reads::default();
    loop {
        // Every write counted here had returned before this get began.
        let returned = shared.slot(0).load(Ordering::Acquire);
        let start = mono_ns();
        let seen: u64 = String::from_utf8(cached.get(id.as_bytes()).unwrap())
            .unwrap()
            .parse()
            .unwrap();
        r.reads += 1;
        assert!(seen <= WRITES);
        if seen < returned {
            // The first write it missed returned this long before the get began.
            let age = start - shared.slot(seen + 1).load(Ordering::Acquire);
            r.stale += 1;
            r.oldest = r.oldest.max(age);
            if age >= max_stale_ms * 1_000_000 {
                r.late += 1;
            }
        }
        if returned == WRITES {
            return r;
        }
        assert!(Instant::now() < deadline, "the writer did not finish");
    }
}

#[test]
fn a_reader_never_sees_a_write_older_than_max_stale() {
    let server = RedisServer::start(&[]);
    let max_stale_ms = 100;
    let cached = open(
        &server,
        &format!(r#", "local_cache": {{"max_stale_ms": {max_stale_ms}}}"#),
    );
    let id = cached.create(b"0").unwrap();
    let path = server.path("writes");
    let shared = Shared::map(&path, true);
    let writer = Command::new(std::env::current_exe().unwrap())
        .args(["writer_role", "--exact", "--ignored", "--nocapture"])
        .env(WRITER, format!("{} {id} {}", server.url(), path.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    // Four readers in this process: more reads in flight when a write lands.
    let deadline = Instant::now() + Duration::from_secs(300);
    let runs: Vec<Reads> = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                scope.spawn(|| {
                    read_until_done(&cached, &shared, id.as_str(), max_stale_ms, deadline)
                })
            })
            .collect();
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let reads: u64 = runs.iter().map(|r| r.reads).sum();
    let stale: u64 = runs.iter().map(|r| r.stale).sum();
    let late: u64 = runs.iter().map(|r| r.late).sum();
    let oldest = runs.iter().map(|r| r.oldest).max().unwrap();
    let out = writer.wait_with_output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("WRITER DONE"),
        "writer: {out:?}"
    );
    let stats = stats(&cached);
    eprintln!(
        "{WRITES} writes by another process, {reads} gets by {READERS} threads through the cache ({} hits): \
         {stale} returned a value older than the last write returned before them, \
         the oldest by {:.3} ms; {late} by {max_stale_ms} ms or more",
        stats.hits,
        oldest as f64 / 1e6
    );
    assert_eq!(late, 0, "gets older than max_stale_ms");
    assert!(
        stats.hits > 2_000,
        "the cache hardly answered, the test proves little: {stats:?}"
    );
    assert_eq!(
        data(&cached, id.as_str()).unwrap(),
        WRITES.to_string().as_bytes()
    );
}
