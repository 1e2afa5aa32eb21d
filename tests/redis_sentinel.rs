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
use std::time::{Duration, Instant};
use support::redis_sentinel::{RedisSentinel, MASTER};
use support::redis_server::assert_outage;

fn open(t: &RedisSentinel, extra: &str) -> Sessions {
    Sessions::open(&Config::from_json(t.config(extra).as_bytes()).unwrap()).unwrap()
}

fn code<T: std::fmt::Debug>(r: session::Result<T>) -> SessionError {
    r.expect_err("expected an error").code
}

/// A killed server's port is free again, and another test's new server may take
/// it and answer for the dead one (a test artifact). The test that kills a
/// primary runs alone; the others may run together.
static KILLING: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[test]
fn sentinel_config_is_checked_and_a_wrong_master_name_is_reported() {
    let _together = KILLING.read().unwrap_or_else(|e| e.into_inner());
    let t = RedisSentinel::start();
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
    let _alone = KILLING.write().unwrap_or_else(|e| e.into_inner());
    let t = RedisSentinel::start();
    let s = open(&t, r#", "owner_key": "user", "idle_timeout": 300"#);
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
                assert_outage(&err);
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

/// A planned failover (`SENTINEL FAILOVER`): the old primary stays up, and
/// writable, for seconds before Sentinel demotes it, so a working connection
/// proves nothing. Four threads writing per-key counters through the store end up
/// writing to the new primary (the store asks the sentinels every second), every
/// call either succeeds or fails with a storage error, and no re-init is needed.
#[test]
fn after_a_planned_failover_writes_go_to_the_new_primary() {
    let _together = KILLING.read().unwrap_or_else(|e| e.into_inner());
    use std::sync::atomic::{AtomicBool, Ordering};
    let t = RedisSentinel::start();
    let s = std::sync::Arc::new(open(&t, ""));
    let ids: Vec<_> = (0..4).map(|_| s.create(b"{\"n\":0}").unwrap()).collect();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    // Each thread increments its session's counter with compare-and-set (read n,
    // write n + 1), noting when each increment was acknowledged. Increments the
    // old primary took after the switch are lost with it; the new primary's
    // counter shows how many.
    let workers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (s, stop, id) = (s.clone(), stop.clone(), *id);
            std::thread::spawn(move || {
                let (mut acks, mut failed) = (Vec::new(), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let written = s.get_versioned(id.as_bytes()).and_then(|(data, version)| {
                        let data: serde_json::Value = serde_json::from_slice(&data).unwrap();
                        let next = format!("{{\"n\":{}}}", data["n"].as_u64().unwrap() + 1);
                        s.update_if(id.as_bytes(), next.as_bytes(), version)
                    });
                    match written {
                        Ok(()) => acks.push(Instant::now()),
                        // Read on one primary, written on the other: read again.
                        Err(err) if err.code == SessionError::Conflict => {}
                        Err(err) => {
                            assert_outage(&err);
                            failed += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
                (acks, failed)
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
    let asked = Instant::now();
    let deadline = asked + Duration::from_secs(20);
    while t.sentinels[0].master() != Some(t.replica.port) {
        assert!(Instant::now() < deadline, "the failover did not happen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let switched = Instant::now();
    // The old primary stays writable until Sentinel demotes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let old = redis::Client::open(format!("redis://127.0.0.1:{}", t.primary.port)).unwrap();
    loop {
        // (It may be busy loading the new primary's data: ask again.)
        let role = old
            .get_connection_with_timeout(Duration::from_secs(1))
            .and_then(|mut c| redis::cmd("ROLE").query::<Vec<redis::Value>>(&mut c));
        if role.is_ok_and(|r| redis::from_redis_value_ref::<String>(&r[0]).unwrap() == "slave") {
            break;
        }
        assert!(Instant::now() < deadline, "the old primary was not demoted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let demoted = switched.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for (id, worker) in ids.iter().zip(workers) {
        let (acks, failed) = worker.join().unwrap();
        let key = format!("session:{}", id.as_str());
        let data: Vec<u8> = t.replica.query(0, &[b"HGET", key.as_bytes(), b"d"]);
        let data: serde_json::Value = serde_json::from_slice(&data).unwrap();
        let stored = data["n"].as_u64().unwrap();
        let acked = acks.len() as u64;
        // Lost: what the old primary took after the switch (from the moment the
        // failover was asked for, when the sentinels may already have promoted the
        // replica) until the store asked the sentinels again: at most about one
        // check interval's worth, not the seconds until the demotion.
        let window = acks
            .iter()
            .filter(|at| **at >= asked && **at < switched + Duration::from_millis(1500))
            .count() as u64;
        eprintln!(
            "planned failover: {acked} increments acknowledged, {failed} failed, {stored} on the new primary ({} lost; {window} made within 1.5 s of the switch; the old primary was demoted {:.1} s after it)",
            acked - stored,
            demoted.as_secs_f64()
        );
        assert!(stored <= acked);
        assert!(
            acked - stored <= window,
            "writes went on to the old primary"
        );
        assert!(acked > window, "no write after the switch");
    }
}

/// The local read cache through a planned failover: the old primary stays
/// writable for seconds, and a channel on it would never hear of the writes
/// other servers make on the new one. The cache is emptied as soon as the store
/// moves to the new primary, and then serves again, coherently, from it.
#[test]
fn the_local_cache_follows_a_planned_failover() {
    let _together = KILLING.read().unwrap_or_else(|e| e.into_inner());
    let t = RedisSentinel::start();
    let cached = open(&t, r#", "local_cache": {"max_stale_ms": 2000}"#);
    let other = open(&t, "");
    let stats = || cached.store().cache_stats().unwrap();
    let id = cached.create(b"before").unwrap();
    let replicas: i64 = t.primary.query(0, &[b"WAIT", b"1", b"5000"]);
    assert_eq!(replicas, 1, "the replica did not acknowledge");
    let hit = || {
        let hits = stats().hits;
        cached.get(id.as_bytes()).is_ok() && stats().hits == hits + 1
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !hit() {
        assert!(Instant::now() < deadline, "never cached: {:?}", stats());
    }
    let flushes = stats().flushes;

    let client = redis::Client::open(format!("redis://127.0.0.1:{}", t.sentinels[0].port)).unwrap();
    let mut conn = client.get_connection().unwrap();
    // (Until the sentinels have seen the replica: NOGOODSLAVE.)
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Err(err) = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg(MASTER)
        .query::<String>(&mut conn)
    {
        assert!(Instant::now() < deadline, "SENTINEL FAILOVER: {err}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.sentinels[0].master() != Some(t.replica.port) {
        assert!(Instant::now() < deadline, "the failover did not happen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let switched = Instant::now();
    // The store asks the sentinels every second: its cache empties then, while
    // the old primary still accepts writes.
    while stats().flushes == flushes {
        let _ = cached.get(id.as_bytes());
        assert!(
            switched.elapsed() < Duration::from_secs(5),
            "the cache did not follow the new primary: {:?}",
            stats()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let followed = switched.elapsed();
    // A write made on the new primary through another store is seen, and the
    // cache answers again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while other.update(id.as_bytes(), b"after").is_err() {
        assert!(Instant::now() < deadline, "the other store never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
    while cached.get(id.as_bytes()).ok().as_deref() != Some(&b"after"[..]) {
        assert!(
            Instant::now() < deadline,
            "the write on the new primary was not seen"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    while !hit() {
        assert!(
            Instant::now() < deadline,
            "never cached again: {:?}",
            stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = other.update(id.as_bytes(), b"later");
    while cached.get(id.as_bytes()).ok().as_deref() != Some(&b"later"[..]) {
        assert!(Instant::now() < deadline, "a later write was not seen");
    }
    eprintln!(
        "planned failover: the local cache was emptied {:.2} s after the sentinels switched",
        followed.as_secs_f64()
    );
}
