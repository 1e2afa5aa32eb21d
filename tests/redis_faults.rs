//! Network faults between the library and a real `redis-server` (issue 9, item 4):
//! a small TCP proxy inside the test forwards every connection and, on command,
//! adds latency, closes connections in the middle of a reply, or stops answering
//! while keeping the connections open (a half-open peer). The server itself is
//! restarted during a burst from 8 threads.
//!
//! Each check asserts that every call returns within its configured timeout with
//! a storage error (`SESSION_ERROR_STORAGE_UNAVAILABLE` or
//! `SESSION_ERROR_TIMEOUT`), that no call ever gets another call's reply (each
//! thread reads only its own sessions, whose data names them), and that the
//! library serves again once the fault ends, without re-init.

mod support;

use session::config::Config;
use session::{SessionError, Sessions};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::redis_server::RedisServer;

/// What the proxy does to the bytes it forwards.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum Fault {
    /// Forwards everything at once.
    None = 0,
    /// Holds every chunk for `delay_ms` before forwarding it.
    Latency = 1,
    /// Forwards the first half of the next reply chunk, then closes both sides.
    CloseMidReply = 2,
    /// Forwards nothing in either direction and keeps the sockets open.
    HalfOpen = 3,
}

struct Proxy {
    port: u16,
    /// Where new connections go (existing ones stay where they are).
    upstream: Arc<AtomicU16>,
    /// Per connection, in the order they were accepted: hold its replies (a
    /// half-open fault on that connection alone).
    holds: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    fault: Arc<AtomicU8>,
    delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// Every socket the proxy holds, shut down when it stops.
    sockets: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let proxy = Proxy {
            port,
            upstream: Arc::new(AtomicU16::new(upstream)),
            holds: Arc::new(Mutex::new(Vec::new())),
            fault: Arc::new(AtomicU8::new(Fault::None as u8)),
            delay_ms: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            sockets: Arc::new(Mutex::new(Vec::new())),
        };
        let upstream = proxy.upstream.clone();
        let holds = proxy.holds.clone();
        let (fault, delay, stop, sockets) = (
            proxy.fault.clone(),
            proxy.delay_ms.clone(),
            proxy.stop.clone(),
            proxy.sockets.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(2));
                        continue;
                    }
                };
                client.set_nonblocking(false).unwrap();
                let to = upstream.load(Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                for s in [&client, &server] {
                    sockets.lock().unwrap().push(s.try_clone().unwrap());
                }
                let hold = Arc::new(AtomicBool::new(false));
                holds.lock().unwrap().push(hold.clone());
                // client -> server carries requests, server -> client replies.
                for (from, to, replies) in [
                    (
                        client.try_clone().unwrap(),
                        server.try_clone().unwrap(),
                        false,
                    ),
                    (server, client, true),
                ] {
                    let (fault, delay, stop) = (fault.clone(), delay.clone(), stop.clone());
                    let hold = hold.clone();
                    std::thread::spawn(move || {
                        pump(from, to, replies, &fault, &hold, &delay, &stop)
                    });
                }
            }
        });
        proxy
    }

    /// Sends new connections to `port` (a DNS name that now names another
    /// server).
    fn retarget(&self, port: u16) {
        self.upstream.store(port, Ordering::SeqCst);
    }

    /// Holds the replies of the `n`th connection accepted (from 0), or lets them
    /// through again.
    fn hold(&self, n: usize, held: bool) {
        self.holds.lock().unwrap()[n].store(held, Ordering::SeqCst);
    }

    fn set(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in self.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    replies: bool,
    fault: &AtomicU8,
    hold: &AtomicBool,
    delay_ms: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A half-open peer: hold the bytes forever (until the test ends).
        while fault.load(Ordering::SeqCst) == Fault::HalfOpen as u8
            || (replies && hold.load(Ordering::SeqCst))
        {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        match fault.load(Ordering::SeqCst) {
            f if f == Fault::Latency as u8 => {
                std::thread::sleep(Duration::from_millis(delay_ms.load(Ordering::SeqCst)));
            }
            f if f == Fault::CloseMidReply as u8 && replies => {
                let _ = to.write_all(&buf[..n.div_ceil(2)]);
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
                break;
            }
            _ => {}
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

const TIMEOUT_MS: u64 = 300;

fn open(url: &str) -> Sessions {
    open_with(url, "")
}

/// [`open`] with extra `sessions` keys (a JSON fragment).
fn open_with(url: &str, extra: &str) -> Sessions {
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{url}", "pool_size": 8,
             "connect_timeout_ms": {TIMEOUT_MS}, "command_timeout_ms": {TIMEOUT_MS}{extra}}}}}"#
    );
    Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap()
}

/// A call's result: Ok, or a storage error within its bound. Panics on anything
/// else (a wrong code, a hang, another call's reply).
#[track_caller]
fn storage_error_in_time<T>(started: Instant, result: session::Result<T>) -> Option<T> {
    // A call may wait for a pooled connection, connect, and retry once on a fresh
    // one: each wait is bounded by a timeout.
    let bound = Duration::from_millis(4 * TIMEOUT_MS + 500);
    assert!(
        started.elapsed() < bound,
        "a call took {:?}",
        started.elapsed()
    );
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    SessionError::StorageUnavailable | SessionError::Timeout
                ),
                "{:?}: {}",
                e.code,
                e.message
            );
            None
        }
    }
}

#[test]
fn added_latency_is_served_within_the_timeout_and_times_out_beyond_it() {
    let redis = RedisServer::start(&[]);
    let proxy = Proxy::start(redis.port);
    let s = open(&proxy.url());
    let id = s.create(b"{\"n\":1}").unwrap();
    proxy.delay_ms.store(50, Ordering::SeqCst);
    proxy.set(Fault::Latency);
    let started = Instant::now();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"{\"n\":1}");
    assert!(started.elapsed() >= Duration::from_millis(50));
    // Latency past command_timeout_ms: a timeout, in time.
    proxy.delay_ms.store(2 * TIMEOUT_MS, Ordering::SeqCst);
    let started = Instant::now();
    let err = s.get(id.as_bytes()).unwrap_err();
    assert_eq!(err.code, SessionError::Timeout, "{}", err.message);
    assert!(started.elapsed() < Duration::from_millis(3 * TIMEOUT_MS));
    proxy.set(Fault::None);
    std::thread::sleep(Duration::from_millis(3 * TIMEOUT_MS));
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"{\"n\":1}");
}

#[test]
fn a_connection_closed_mid_reply_is_an_error_never_a_truncated_value() {
    let redis = RedisServer::start(&[]);
    let proxy = Proxy::start(redis.port);
    let s = open(&proxy.url());
    // A reply of several chunks.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(200_000));
    let id = s.create(big.as_bytes()).unwrap();
    for _ in 0..5 {
        proxy.set(Fault::CloseMidReply);
        let started = Instant::now();
        let got = storage_error_in_time(started, s.get(id.as_bytes()));
        if let Some(data) = got {
            assert_eq!(data, big.as_bytes(), "a truncated value was returned");
        }
        proxy.set(Fault::None);
        assert_eq!(s.get(id.as_bytes()).unwrap(), big.as_bytes());
    }
}

#[test]
fn a_half_open_connection_times_out_and_the_store_recovers() {
    let redis = RedisServer::start(&[]);
    let proxy = Proxy::start(redis.port);
    let s = open(&proxy.url());
    let id = s.create(b"{\"n\":2}").unwrap();
    proxy.set(Fault::HalfOpen);
    for _ in 0..3 {
        let started = Instant::now();
        assert!(storage_error_in_time(started, s.get(id.as_bytes())).is_none());
        let started = Instant::now();
        assert!(storage_error_in_time(started, s.update(id.as_bytes(), b"{\"n\":3}")).is_none());
    }
    proxy.set(Fault::None);
    // The connections that timed out were dropped: fresh ones serve at once.
    let value = s.get(id.as_bytes()).unwrap();
    assert!(value == b"{\"n\":2}" || value == b"{\"n\":3}", "{value:?}");
}

/// 8 threads read and write their own sessions while the proxy cycles through
/// every fault: no thread ever sees data that is not its own.
#[test]
fn no_reply_ever_reaches_the_wrong_call_under_cycling_faults() {
    let redis = RedisServer::start(&[]);
    let proxy = Proxy::start(redis.port);
    let s = open(&proxy.url());
    proxy.delay_ms.store(TIMEOUT_MS / 3, Ordering::SeqCst);
    let done = AtomicBool::new(false);
    let served = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..8u32 {
            let (s, done, served) = (&s, &done, &served);
            scope.spawn(move || {
                let mine = |n: u64| format!("{{\"thread\":{t},\"n\":{n}}}");
                let id = loop {
                    if let Ok(id) = s.create(mine(0).as_bytes()) {
                        break id;
                    }
                };
                let mut last_written = 0;
                let mut n = 0;
                while !done.load(Ordering::Relaxed) {
                    n += 1;
                    let started = Instant::now();
                    if let Some(()) =
                        storage_error_in_time(started, s.update(id.as_bytes(), mine(n).as_bytes()))
                    {
                        last_written = n;
                    }
                    let started = Instant::now();
                    if let Some(data) = storage_error_in_time(started, s.get(id.as_bytes())) {
                        let text = String::from_utf8(data).unwrap();
                        assert!(
                            text.starts_with(&format!("{{\"thread\":{t},")),
                            "thread {t} got another call's reply: {text}"
                        );
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = last_written;
            });
        }
        let faults = [
            Fault::Latency,
            Fault::CloseMidReply,
            Fault::None,
            Fault::HalfOpen,
            Fault::None,
        ];
        let started = Instant::now();
        for fault in faults.iter().cycle() {
            if started.elapsed() > Duration::from_secs(6) {
                break;
            }
            proxy.set(*fault);
            std::thread::sleep(Duration::from_millis(250));
        }
        proxy.set(Fault::None);
        std::thread::sleep(Duration::from_millis(3 * TIMEOUT_MS));
        done.store(true, Ordering::Relaxed);
    });
    assert!(served.load(Ordering::Relaxed) > 0);
    // Once the faults end, every call succeeds.
    for _ in 0..50 {
        let id = s.create(b"{}").unwrap();
        s.get(id.as_bytes()).unwrap();
    }
}

#[test]
fn a_server_restart_during_a_burst_from_8_threads() {
    let mut redis = RedisServer::start(&[]);
    let s = open(&redis.url());
    let running = AtomicBool::new(true);
    let (ok, failed) = (AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|scope| {
        for t in 0..8u32 {
            let (s, running, ok, failed) = (&s, &running, &ok, &failed);
            scope.spawn(move || {
                let data = format!("{{\"thread\":{t}}}");
                while running.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let created = storage_error_in_time(started, s.create(data.as_bytes()));
                    let Some(id) = created else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let started = Instant::now();
                    match storage_error_in_time(started, s.get(id.as_bytes())) {
                        Some(got) => {
                            assert_eq!(got, data.as_bytes(), "thread {t}: another call's reply");
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        redis.kill();
        std::thread::sleep(Duration::from_millis(700));
        redis.restart();
        std::thread::sleep(Duration::from_millis(1000));
        running.store(false, Ordering::Relaxed);
    });
    assert!(ok.load(Ordering::Relaxed) > 0);
    assert!(
        failed.load(Ordering::Relaxed) > 0,
        "the restart was not seen"
    );
    // Served again, without re-init.
    for _ in 0..20 {
        let id = s.create(b"{\"after\":1}").unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), b"{\"after\":1}");
    }
}

/// Gets `id` through `s` (each returning `data`) until one is answered from the
/// local cache.
fn read_until_cached(s: &Sessions, id: &str, data: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hits = s.store().cache_stats().unwrap().hits;
        assert_eq!(s.get(id.as_bytes()).unwrap(), data);
        if s.store().cache_stats().unwrap().hits > hits {
            return;
        }
        assert!(Instant::now() < deadline, "never cached");
    }
}

/// The local read cache behind a half-open connection (a network partition
/// between this process and Redis, while others still write): its channel hears
/// neither invalidations nor heartbeats any more, so within `max_stale_ms` the
/// cache steps aside. A session changed on the server meanwhile is never read
/// old after that bound: gets fail with a storage error in time, and once the
/// fault ends they return the new data, without re-init.
#[test]
fn a_half_open_channel_makes_the_local_cache_step_aside_within_max_stale() {
    const MAX_STALE_MS: u64 = 200;
    let redis = RedisServer::start(&[]);
    let proxy = Proxy::start(redis.port);
    let s = open_with(
        &proxy.url(),
        &format!(r#", "local_cache": {{"max_stale_ms": {MAX_STALE_MS}}}"#),
    );
    let stats = || s.store().cache_stats().unwrap();
    let id = s.create(b"old").unwrap();
    read_until_cached(&s, id.as_str(), b"old");

    proxy.set(Fault::HalfOpen);
    // Another client changes it on the server itself, not through the proxy.
    let _: i64 = redis.query(
        0,
        &[b"HSET", format!("session:{id}").as_bytes(), b"d", b"new"],
    );
    let changed = Instant::now();
    let (mut old, mut failed, mut last_old) = (0, 0, Duration::ZERO);
    while changed.elapsed() < Duration::from_millis(1500) {
        let started = Instant::now();
        match storage_error_in_time(started, s.get(id.as_bytes())) {
            Some(data) => {
                assert_eq!(data, b"old", "nothing new can come through the fault");
                assert!(
                    started < changed + Duration::from_millis(MAX_STALE_MS),
                    "the cache answered {:?} after the write, past max_stale_ms",
                    started - changed
                );
                old += 1;
                last_old = started - changed;
            }
            None => failed += 1,
        }
    }
    assert!(failed > 0, "no get went to the server");
    let cut = stats();
    assert!(!cut.channel_up && cut.entries == 0, "{cut:?}");

    proxy.set(Fault::None);
    let healed = Instant::now();
    while s.get(id.as_bytes()).ok().as_deref() != Some(&b"new"[..]) {
        assert!(
            healed.elapsed() < Duration::from_secs(10),
            "not served again after the fault"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!(
        "half-open channel: {old} gets answered from the cache, the last {last_old:?} after the write; then {failed} failed in time; served the new data {:?} after the fault ended",
        healed.elapsed()
    );
}

/// A `url` whose name moves to another server (a DNS failover endpoint, a
/// proxy): pooled connections made afterwards reach the new server while the
/// local cache's channel still watches the old one, which never reports the new
/// one's writes. Each new pooled connection probes the channel's mark channel on
/// its server; nobody listens there, so the channel is given up and reopened on
/// the new server, and its writes are seen.
#[test]
fn the_local_cache_follows_a_url_that_moves_to_another_server() {
    let first = RedisServer::start(&[]);
    let second = RedisServer::start(&[]);
    let proxy = Proxy::start(first.port);
    let s = std::sync::Arc::new(open_with(
        &proxy.url(),
        r#", "local_cache": {"max_stale_ms": 5000}"#,
    ));
    let stats = || s.store().cache_stats().unwrap();
    let id = s.create(b"first").unwrap();
    let key = format!("session:{id}");
    // The same session on the second server (as a replica would hold it).
    let fields: Vec<(String, Vec<u8>)> = first.query(0, &[b"HGETALL", key.as_bytes()]);
    let mut hset: Vec<&[u8]> = vec![b"HSET", key.as_bytes()];
    for (field, value) in &fields {
        hset.push(field.as_bytes());
        hset.push(value);
    }
    let _: i64 = second.query(0, &hset);
    let _: i64 = second.query(0, &[b"EXPIRE", key.as_bytes(), b"3600"]);
    let _: i64 = second.query(0, &[b"HSET", key.as_bytes(), b"d", b"second"]);

    proxy.retarget(second.port);
    let flushes = stats().flushes;
    // Gets from several threads at once: the pool makes new connections, which
    // now reach the second server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats().flushes == flushes {
        std::thread::scope(|scope| {
            for _ in 0..6 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let _ = s.get(id.as_bytes());
                    }
                });
            }
        });
        assert!(
            Instant::now() < deadline,
            "the cache never noticed: {:?}",
            stats()
        );
    }
    // The new channel watches the second server: a change there is seen.
    while s.get(id.as_bytes()).ok().as_deref() != Some(&b"second"[..]) {
        assert!(
            Instant::now() < deadline,
            "the second server's data never read"
        );
    }
    let _: i64 = second.query(0, &[b"HSET", key.as_bytes(), b"d", b"changed"]);
    while s.get(id.as_bytes()).ok().as_deref() != Some(&b"changed"[..]) {
        assert!(
            Instant::now() < deadline,
            "a change on the second server was never seen: {:?}",
            stats()
        );
    }
}

/// The local cache's channel alone stalls (its replies held, its connection
/// open) while the rest of the store works: the marks the heart publishes are
/// never delivered, so the channel is given up once a mark is `command_timeout_ms`
/// late, the cache emptied, and a change made meanwhile read from Redis.
#[test]
fn a_stalled_channel_is_given_up_when_its_mark_is_late() {
    let redis = RedisServer::start(&[]);
    let proxy = Proxy::start(redis.port);
    // Connections in order: the pool's first (the check at open), the channel,
    // the heart.
    let s = open_with(
        &proxy.url(),
        r#", "pool_size": 1, "local_cache": {"max_stale_ms": 5000}"#,
    );
    let stats = || s.store().cache_stats().unwrap();
    let id = s.create(b"old").unwrap();
    read_until_cached(&s, id.as_str(), b"old");
    assert_eq!(proxy.holds.lock().unwrap().len(), 3, "pool, channel, heart");
    proxy.hold(1, true);
    let held = Instant::now();
    let _: i64 = redis.query(
        0,
        &[b"HSET", format!("session:{id}").as_bytes(), b"d", b"new"],
    );
    while stats().channel_up {
        assert!(
            held.elapsed() < Duration::from_secs(5),
            "a stalled channel was kept: {:?}",
            stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let given_up = held.elapsed();
    assert_eq!(stats().entries, 0);
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"new");
    eprintln!("stalled channel given up after {given_up:?} (command_timeout_ms {TIMEOUT_MS})");
    proxy.hold(1, false);
}
