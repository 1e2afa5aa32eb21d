//! Redis Sentinel (issue 10): a real topology of 1 primary, 1 replica and 3
//! sentinels started on free loopback ports. The library finds the primary
//! through the sentinels, serves every call of the header on it, and after the
//! primary is killed and a sentinel promotes the replica it serves again, without
//! re-init, within a bound measured here. Calls made during the failover fail with
//! `SESSION_ERROR_STORAGE_UNAVAILABLE` or `SESSION_ERROR_TIMEOUT` within their
//! timeouts; sessions acknowledged and replicated before it are still there.

mod support;

use session::config::Config;
use session::{SessionError, Sessions};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::redis_server::RedisServer;

const MASTER: &str = "sessions-primary";

/// A `redis-server --sentinel` on a free loopback port, monitoring `MASTER`.
struct Sentinel {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Sentinel {
    fn start(primary_port: u16) -> Sentinel {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("libsession-sentinel-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds {MASTER} 1000\n\
                 sentinel failover-timeout {MASTER} 5000\n\
                 sentinel parallel-syncs {MASTER} 1\n",
                dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("sentinel.log")).unwrap();
        let child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        let sentinel = Sentinel { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while sentinel.master().is_none() {
            assert!(Instant::now() < deadline, "sentinel {n} did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        sentinel
    }

    /// The primary's port as this sentinel sees it.
    fn master(&self) -> Option<u16> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port)).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(MASTER)
            .query::<Option<(String, u16)>>(&mut conn)
            .ok()
            .flatten()
            .map(|(_, port)| port)
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Topology {
    primary: RedisServer,
    replica: RedisServer,
    sentinels: Vec<Sentinel>,
}

impl Topology {
    fn start() -> Topology {
        let primary = RedisServer::start(&[]);
        let port = primary.port.to_string();
        let replica = RedisServer::start(&["--replicaof", "127.0.0.1", &port]);
        // The replica is in sync before the sentinels watch it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info: String = replica.query(0, &[b"INFO", b"replication"]);
            if info.contains("master_link_status:up") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the replica did not sync: {info}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let sentinels = (0..3).map(|_| Sentinel::start(primary.port)).collect();
        Topology {
            primary,
            replica,
            sentinels,
        }
    }

    fn nodes(&self) -> String {
        let nodes: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("\"127.0.0.1:{}\"", s.port))
            .collect();
        nodes.join(", ")
    }

    fn config(&self, extra: &str) -> String {
        format!(
            r#"{{"sessions": {{"driver": "redis", "sentinel": {{"master_name": "{MASTER}", "nodes": [{}]}},
               "connect_timeout_ms": 500, "command_timeout_ms": 500, "lifetime": 600{extra}}}}}"#,
            self.nodes()
        )
    }

    fn open(&self, extra: &str) -> Sessions {
        Sessions::open(&Config::from_json(self.config(extra).as_bytes()).unwrap()).unwrap()
    }
}

fn code<T: std::fmt::Debug>(r: session::Result<T>) -> SessionError {
    r.expect_err("expected an error").code
}

#[test]
fn sentinel_config_is_checked_and_a_wrong_master_name_is_reported() {
    let t = Topology::start();
    let bad = |json: &str| {
        let err = Config::from_json(json.as_bytes())
            .and_then(|c| Sessions::open(&c).map(|_| ()))
            .expect_err(json);
        (err.code, err.message)
    };
    let nodes = t.nodes();
    let (code, message) = bad(&format!(
        r#"{{"sessions": {{"driver": "redis", "sentinel": {{"master_name": "nope", "nodes": [{nodes}]}}}}}}"#
    ));
    assert_eq!(code, SessionError::Config, "{message}");
    assert!(
        message.contains("monitors no primary named \"nope\""),
        "{message}"
    );
    let (code, message) =
        bad(r#"{"sessions": {"driver": "redis", "sentinel": {"master_name": "m", "nodes": []}}}"#);
    assert_eq!(code, SessionError::Config);
    assert!(
        message.contains("sessions.sentinel.nodes is required"),
        "{message}"
    );
    let (_, message) = bad(
        r#"{"sessions": {"driver": "redis", "sentinel": {"master_name": "m", "nodes": ["nohost"]}}}"#,
    );
    assert!(message.contains("is not \"host:port\""), "{message}");
    let (_, message) = bad(&format!(
        r#"{{"sessions": {{"driver": "redis", "url": "redis://127.0.0.1:1", "sentinel": {{"master_name": "m", "nodes": [{nodes}]}}}}}}"#
    ));
    assert!(message.contains("each name a server"), "{message}");
    let (_, message) = bad(
        r#"{"sessions": {"driver": "redis", "sentinel": {"master_name": "m", "nodes": ["127.0.0.1:1"], "colour": 1}}}"#,
    );
    assert!(
        message.contains("unknown key sessions.sentinel.colour"),
        "{message}"
    );
    // Unreachable sentinels: the store does not open (unless lazy_connect).
    let (code, message) = bad(
        r#"{"sessions": {"driver": "redis", "sentinel": {"master_name": "m", "nodes": ["127.0.0.1:1"]}, "connect_timeout_ms": 200}}"#,
    );
    assert_eq!(code, SessionError::StorageUnavailable, "{message}");
    assert!(message.contains("sentinel 127.0.0.1:1"), "{message}");
    // A databases.redis entry may name the sentinels too.
    let json = format!(
        r#"{{"databases": {{"redis": [{{"host_id": "sessions", "sentinel": {{"master_name": "{MASTER}", "nodes": [{nodes}]}}, "dbindex": 3}}]}},
            "sessions": {{"driver": "redis", "storage_name": "sessions"}}}}"#
    );
    let s = Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap();
    let id = s.create(b"{}").unwrap();
    let keys: Vec<String> = t.primary.query(3, &[b"KEYS", b"*"]);
    assert_eq!(keys, vec![format!("session:{}", id.as_str())]);
}

#[test]
fn every_call_works_through_sentinel_and_survives_a_failover() {
    let t = Topology::start();
    let s = t.open(r#", "owner_key": "user", "idle_timeout": 300"#);
    // The calls of the header, on the primary the sentinels name.
    let id = s.create(br#"{"user":"ann","n":0}"#).unwrap();
    s.set_value(id.as_bytes(), b"n", b"1").unwrap();
    let (data, version) = s.get_versioned(id.as_bytes()).unwrap();
    s.update_if(id.as_bytes(), &data, version).unwrap();
    s.touch(id.as_bytes()).unwrap();
    assert!(s.ttl_secs(id.as_bytes()).unwrap() > 200);
    let moved = s.regenerate(id.as_bytes()).unwrap();
    assert_eq!(s.count_owner(b"ann").unwrap(), 1);
    assert_eq!(
        s.get_value(moved.as_bytes(), b"n").unwrap(),
        Some(b"1".to_vec())
    );
    assert!(s.count().unwrap() >= 1);
    let keys: Vec<String> = t.primary.query(0, &[b"KEYS", b"session:*"]);
    assert!(!keys.is_empty(), "nothing on the primary");

    // Sessions acknowledged and replicated before the failover.
    let kept: Vec<_> = (0..50)
        .map(|i| {
            s.create(format!("{{\"user\":\"bob\",\"i\":{i}}}").as_bytes())
                .unwrap()
        })
        .collect();
    let replicas: i64 = t.primary.query(0, &[b"WAIT", b"1", b"5000"]);
    assert_eq!(replicas, 1, "the replica did not acknowledge");

    let old_primary = t.primary.port;
    let mut primary = t.primary;
    primary.kill();
    let killed = Instant::now();
    // Calls during the failover fail fast with a storage error, then succeed.
    let (mut failed, mut worst) = (0, Duration::ZERO);
    let served_again = loop {
        let started = Instant::now();
        let outcome = s.create(b"{\"user\":\"carl\"}");
        let took = started.elapsed();
        worst = worst.max(took);
        match outcome {
            Ok(_) => break killed.elapsed(),
            Err(err) => {
                assert!(
                    matches!(
                        err.code,
                        SessionError::StorageUnavailable | SessionError::Timeout
                    ),
                    "{:?}: {}",
                    err.code,
                    err.message
                );
                failed += 1;
            }
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "not served 30 s after the kill"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "sentinel failover: served again {:.1} s after the primary was killed; {failed} calls failed meanwhile, the slowest in {} ms",
        served_again.as_secs_f64(),
        worst.as_millis()
    );
    assert!(
        served_again < Duration::from_secs(15),
        "served again only after {served_again:?}"
    );
    // Each failed call returned within its timeouts: sentinels asked (connect +
    // command) and the primary tried, twice at most.
    assert!(worst < Duration::from_millis(3000), "a call took {worst:?}");
    assert_ne!(t.sentinels[0].master(), Some(old_primary));
    assert_eq!(t.sentinels[0].master(), Some(t.replica.port));
    for id in &kept {
        assert!(
            s.get(id.as_bytes()).is_ok(),
            "a replicated session was lost"
        );
    }
    assert_eq!(s.count_owner(b"bob").unwrap(), 50);
    assert_eq!(s.destroy_owner(b"bob").unwrap(), 50);
    assert_eq!(code(s.get(kept[0].as_bytes())), SessionError::NotFound);
}

/// A planned failover (`SENTINEL FAILOVER`): the old primary stays up and becomes
/// a replica, so pooled connections to it get `READONLY` on writes. Four threads
/// incrementing per-key counters lose no acknowledged increment, and every call
/// either succeeds or fails with a storage error, the library finding the new
/// primary on its own.
#[test]
fn a_planned_failover_loses_no_acknowledged_write() {
    let t = Topology::start();
    let s = std::sync::Arc::new(t.open(""));
    let ids: Vec<_> = (0..4).map(|_| s.create(b"{\"n\":0}").unwrap()).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (s, stop, id) = (s.clone(), stop.clone(), *id);
            std::thread::spawn(move || {
                let (mut acked, mut failed) = (0u64, 0u64);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let next = (acked + 1).to_string();
                    match s.set_value(id.as_bytes(), b"n", next.as_bytes()) {
                        Ok(()) => acked += 1,
                        Err(err) => {
                            assert!(
                                matches!(
                                    err.code,
                                    SessionError::StorageUnavailable | SessionError::Timeout
                                ),
                                "{:?}: {}",
                                err.code,
                                err.message
                            );
                            failed += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
                (acked, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let client = redis::Client::open(format!("redis://127.0.0.1:{}", t.sentinels[0].port)).unwrap();
    let mut conn = client.get_connection().unwrap();
    let _: String = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(MASTER)
        .query(&mut conn)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.sentinels[0].master() != Some(t.replica.port) {
        assert!(Instant::now() < deadline, "the failover did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Writes go on for a while on the new primary.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for (id, worker) in ids.iter().zip(workers) {
        let (acked, failed) = worker.join().unwrap();
        let stored = s.get_value(id.as_bytes(), b"n").unwrap().unwrap();
        let stored: u64 = std::str::from_utf8(&stored).unwrap().parse().unwrap();
        eprintln!(
            "planned failover: {acked} increments acknowledged, {failed} failed, {stored} stored"
        );
        assert!(acked > 0);
        assert_eq!(stored, acked, "an acknowledged increment was lost");
    }
    let role: Vec<redis::Value> = t.replica.query(0, &[b"ROLE"]);
    assert_eq!(
        redis::from_redis_value_ref::<String>(&role[0]).unwrap(),
        "master"
    );
}
