//! The storage contract, run on every driver: files (fsync off and on), memory, and
//! Redis on a real `redis-server` started on a free loopback port. Every check runs
//! on each of them, so the drivers cannot drift apart.
//!
//! Several checks exist to catch specific bugs that once passed every test: a file
//! create with `O_TRUNC` instead of `O_EXCL`, a memory create that overwrites a live
//! session, Redis `SET` without `NX` (all: `create_never_overwrites_a_live_session`)
//! and a Redis update that resets the TTL (`update_keeps_the_absolute_end`).

mod support;

use session::config::Config;
use session::{Outcome, SessionError, SessionId, Sessions};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::redis_server::RedisServer;
use support::temp::TempDir;

/// One driver under test, with what it needs kept alive.
struct Driver {
    name: &'static str,
    sessions: Sessions,
    /// The session directory of the file driver.
    dir: Option<std::path::PathBuf>,
    _temp: Option<TempDir>,
    _redis: Option<RedisServer>,
}

impl std::ops::Deref for Driver {
    type Target = Sessions;
    fn deref(&self) -> &Sessions {
        &self.sessions
    }
}

fn open(json: &str) -> Sessions {
    let config = Config::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
    Sessions::open(&config).unwrap_or_else(|e| panic!("{json}: {e}"))
}

/// Every driver, each configured with `extra` keys of `sessions` (a JSON fragment
/// starting with a comma, or empty).
fn drivers(extra: &str) -> Vec<Driver> {
    let mut all = Vec::new();
    for (name, fsync) in [("file", false), ("file+fsync", true)] {
        let temp = TempDir::new("conformance");
        let json = format!(
            r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "fsync": {fsync}{extra}}},
                "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
            temp.path().display()
        );
        all.push(Driver {
            name,
            sessions: open(&json),
            dir: Some(temp.join("sessions")),
            _temp: Some(temp),
            _redis: None,
        });
    }
    all.push(Driver {
        name: "memory",
        sessions: open(&format!(r#"{{"sessions": {{"driver": "memory"{extra}}}}}"#)),
        dir: None,
        _temp: None,
        _redis: None,
    });
    let redis = RedisServer::start(&[]);
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "pool_size": 16{extra}}}}}"#,
        redis.url()
    );
    all.push(Driver {
        name: "redis",
        sessions: open(&json),
        dir: None,
        _temp: None,
        _redis: Some(redis),
    });
    all
}

/// Runs `check` on every driver, all at once (each on its own thread), naming the
/// driver in any failure.
fn on_every_driver(extra: &str, check: impl Fn(&Driver) + Sync) {
    let drivers = drivers(extra);
    std::thread::scope(|scope| {
        let handles: Vec<_> = drivers
            .iter()
            .map(|d| (d.name, scope.spawn(|| check(d))))
            .collect();
        let mut failed = Vec::new();
        for (name, handle) in handles {
            if handle.join().is_err() {
                failed.push(name);
            }
        }
        assert!(failed.is_empty(), "failed on: {failed:?}");
    });
}

fn code<T: std::fmt::Debug>(result: session::Result<T>) -> SessionError {
    result.expect_err("expected an error").code
}

/// The ids in the store's owner index under `tag`.
fn index_ids(s: &Sessions, tag: &session::seal::OwnerTag) -> Vec<SessionId> {
    s.store()
        .index_list(tag)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn create_get_update_destroy() {
    on_every_driver("", |s| {
        let id = s.create(b"{\"user_id\":42}").unwrap();
        assert_eq!(id.as_str().len(), 64);
        assert_eq!(s.get(id.as_bytes()).unwrap(), b"{\"user_id\":42}");
        s.update(id.as_bytes(), b"{\"user_id\":43,\"role\":\"admin\"}")
            .unwrap();
        assert_eq!(
            s.get(id.as_bytes()).unwrap(),
            b"{\"user_id\":43,\"role\":\"admin\"}"
        );
        // Shrinking and growing again keeps the newest data each time.
        for len in [1usize, 5000, 3, 70000, 0, 10] {
            let data = vec![b'a' + (len % 26) as u8; len];
            s.update(id.as_bytes(), &data).unwrap();
            assert_eq!(s.get(id.as_bytes()).unwrap(), data);
        }
        if let Some(dir) = &s.dir {
            assert_eq!(files_in(dir), vec![id.to_string()]);
        }
        s.destroy(id.as_bytes()).unwrap();
        assert_eq!(code(s.get(id.as_bytes())), SessionError::NotFound);
        // Destroying again succeeds; nothing brings it back.
        s.destroy(id.as_bytes()).unwrap();
        assert_eq!(code(s.update(id.as_bytes(), b"x")), SessionError::NotFound);
        assert_eq!(code(s.touch(id.as_bytes())), SessionError::NotFound);
        assert_eq!(code(s.regenerate(id.as_bytes())), SessionError::NotFound);
        assert_eq!(code(s.get(id.as_bytes())), SessionError::NotFound);
        assert!(!s.store().exists(&id).unwrap(), "{}: came back", s.name);
        if let Some(dir) = &s.dir {
            assert!(files_in(dir).is_empty(), "update after destroy made a file");
        }
    });
}

#[test]
fn create_never_overwrites_a_live_session() {
    on_every_driver("", |s| {
        let id = SessionId::generate().unwrap();
        let lifetime = Duration::from_secs(3600);
        let store = s.store();
        assert_eq!(
            store.create(&id, b"first", lifetime).unwrap(),
            Outcome::Applied
        );
        assert_eq!(
            store.create(&id, b"second", lifetime).unwrap(),
            Outcome::Taken,
            "{}: a create with a live id must write nothing",
            s.name
        );
        assert_eq!(store.get(&id).unwrap().as_deref(), Some(&b"first"[..]));
        // Also after an update (a second version in the file driver).
        assert_eq!(
            store.update(&id, b"first, updated").unwrap(),
            Outcome::Applied
        );
        assert_eq!(
            store.create(&id, b"third", lifetime).unwrap(),
            Outcome::Taken
        );
        assert_eq!(
            store.get(&id).unwrap().as_deref(),
            Some(&b"first, updated"[..])
        );
    });
}

#[test]
fn update_keeps_the_absolute_end() {
    on_every_driver(r#", "lifetime": 3600, "max_lifetime": 7200"#, |s| {
        let id = s.create_ttl(b"short", 3).unwrap();
        let before = s.ttl(id.as_bytes()).unwrap();
        assert!(before <= Duration::from_secs(3), "{}: {before:?}", s.name);
        s.update(id.as_bytes(), b"updated").unwrap();
        let after = s.ttl(id.as_bytes()).unwrap();
        assert!(
            after <= before,
            "{}: an update moved the end from {before:?} to {after:?}",
            s.name
        );
        s.touch(id.as_bytes()).unwrap();
        assert!(
            s.ttl(id.as_bytes()).unwrap() <= before,
            "{}: touch without idle_timeout moved the end",
            s.name
        );
        std::thread::sleep(Duration::from_millis(3100));
        assert_eq!(code(s.get(id.as_bytes())), SessionError::NotFound);
        assert_eq!(
            code(s.update(id.as_bytes(), b"again")),
            SessionError::NotFound
        );
        // A longer ttl than lifetime is allowed up to max_lifetime, not beyond.
        let long = s.create_ttl(b"remember me", 7200).unwrap();
        assert!(s.ttl(long.as_bytes()).unwrap() > Duration::from_secs(7100));
        assert_eq!(
            code(s.create_ttl(b"x", 7201)),
            SessionError::InvalidArgument
        );
        assert_eq!(code(s.create_ttl(b"x", 0)), SessionError::InvalidArgument);
        assert_eq!(code(s.create_ttl(b"x", -5)), SessionError::InvalidArgument);
    });
}

#[test]
fn ended_sessions_are_gone_and_never_resurrected() {
    on_every_driver(r#", "lifetime": 1"#, |s| {
        let id = s.create(b"short-lived").unwrap();
        let keep = s.create(b"also short").unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), b"short-lived");
        std::thread::sleep(Duration::from_millis(600));
        s.update(keep.as_bytes(), b"updated").unwrap();
        std::thread::sleep(Duration::from_millis(700));
        for id in [&id, &keep] {
            let id = id.as_bytes();
            assert_eq!(code(s.get(id)), SessionError::NotFound, "{}", s.name);
            assert_eq!(code(s.update(id, b"again")), SessionError::NotFound);
            assert_eq!(code(s.touch(id)), SessionError::NotFound);
            assert_eq!(code(s.ttl(id)), SessionError::NotFound);
            assert_eq!(code(s.exists(id)), SessionError::NotFound);
            assert_eq!(code(s.regenerate(id)), SessionError::NotFound);
            assert_eq!(code(s.get(id)), SessionError::NotFound);
        }
        let live = s.create(b"live").unwrap();
        assert_eq!(
            s.count().unwrap(),
            1,
            "{}: count includes ended sessions",
            s.name
        );
        let removed = s.remove_expired().unwrap();
        // Redis expires keys itself: nothing is left for remove_expired.
        assert_eq!(removed, if s.name == "redis" { 0 } else { 2 }, "{}", s.name);
        assert_eq!(s.get(live.as_bytes()).unwrap(), b"live");
        if let Some(dir) = &s.dir {
            assert_eq!(files_in(dir), vec![live.to_string()]);
        }
        assert_eq!(s.remove_expired().unwrap(), 0);
    });
}

#[test]
fn idle_timeout_ends_untouched_sessions_but_never_extends_the_absolute_end() {
    on_every_driver(r#", "lifetime": 3, "idle_timeout": 1"#, |s| {
        let start = Instant::now();
        let touched = s.create(b"touched").unwrap();
        let read = s.create(b"read").unwrap();
        let updated = s.create(b"updated").unwrap();
        let idle = s.create(b"idle").unwrap();
        let ttl = s.ttl(idle.as_bytes()).unwrap();
        assert!(ttl <= Duration::from_secs(1), "{}: ttl {ttl:?}", s.name);
        while start.elapsed() < Duration::from_millis(2500) {
            s.touch(touched.as_bytes()).unwrap();
            assert_eq!(s.get(read.as_bytes()).unwrap(), b"read", "{}", s.name);
            s.update(updated.as_bytes(), b"updated").unwrap();
            std::thread::sleep(Duration::from_millis(250));
            if start.elapsed() > Duration::from_millis(1300) {
                assert_eq!(
                    code(s.get(idle.as_bytes())),
                    SessionError::NotFound,
                    "{}: an untouched session outlived idle_timeout",
                    s.name
                );
            }
        }
        // Still within the absolute end: used sessions live on.
        for id in [&touched, &read, &updated] {
            assert!(s.exists(id.as_bytes()).is_ok(), "{}", s.name);
        }
        // Keep using them past the absolute end (3 s): they end anyway.
        while start.elapsed() < Duration::from_millis(3300) {
            let _ = s.touch(touched.as_bytes());
            let _ = s.get(read.as_bytes());
            let _ = s.update(updated.as_bytes(), b"updated");
            std::thread::sleep(Duration::from_millis(100));
        }
        for id in [&touched, &read, &updated] {
            assert_eq!(
                code(s.get(id.as_bytes())),
                SessionError::NotFound,
                "{}: a session outlived its absolute end",
                s.name
            );
        }
    });
}

#[test]
fn a_get_refreshes_the_idle_end_only_after_one_percent() {
    // idle_timeout 200 s: 1% is 2 s. Gets within 2 s leave the idle end alone (no
    // write); touch always moves it.
    on_every_driver(r#", "lifetime": 3600, "idle_timeout": 200"#, |s| {
        let id = s.create(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        s.get(id.as_bytes()).unwrap();
        let after_get = s.ttl(id.as_bytes()).unwrap();
        assert!(
            after_get < Duration::from_millis(199_000),
            "{}: a get within 1% wrote the idle end: {after_get:?}",
            s.name
        );
        s.touch(id.as_bytes()).unwrap();
        let after_touch = s.ttl(id.as_bytes()).unwrap();
        assert!(
            after_touch > Duration::from_millis(199_500),
            "{}: touch did not move the idle end: {after_touch:?}",
            s.name
        );
        std::thread::sleep(Duration::from_millis(2200));
        s.get(id.as_bytes()).unwrap();
        let refreshed = s.ttl(id.as_bytes()).unwrap();
        assert!(
            refreshed > Duration::from_millis(199_500),
            "{}: a get after 1% did not move the idle end: {refreshed:?}",
            s.name
        );
    });
}

#[test]
fn ttl_exists_and_count() {
    on_every_driver(r#", "lifetime": 600"#, |s| {
        let id = s.create(b"x").unwrap();
        let ttl = s.ttl(id.as_bytes()).unwrap();
        assert!(
            ttl > Duration::from_secs(598) && ttl <= Duration::from_secs(600),
            "{}: {ttl:?}",
            s.name
        );
        s.exists(id.as_bytes()).unwrap();
        let short = s.create_ttl(b"y", 60).unwrap();
        assert!(s.ttl(short.as_bytes()).unwrap() <= Duration::from_secs(60));
        let ids: Vec<SessionId> = (0..25).map(|_| s.create(b"z").unwrap()).collect();
        assert_eq!(s.count().unwrap(), 27, "{}", s.name);
        for id in &ids[..5] {
            s.destroy(id.as_bytes()).unwrap();
        }
        assert_eq!(s.count().unwrap(), 22, "{}", s.name);
        s.destroy(id.as_bytes()).unwrap();
        assert_eq!(code(s.exists(id.as_bytes())), SessionError::NotFound);
        assert_eq!(code(s.ttl(id.as_bytes())), SessionError::NotFound);
        assert_eq!(s.count().unwrap(), 21, "{}", s.name);
    });
}

#[test]
fn peek_and_ids_read_without_using_the_sessions() {
    on_every_driver(r#", "lifetime": 600"#, |s| {
        let mut ids: Vec<SessionId> = (0..5u8).map(|i| s.create(&[b'p', i]).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(
                s.peek(id.as_bytes()).unwrap(),
                [b'p', i as u8],
                "{}",
                s.name
            );
        }
        ids.sort_unstable_by_key(|id| *id.as_bytes());
        assert_eq!(s.ids().unwrap(), ids, "{}", s.name);
        s.destroy(ids[0].as_bytes()).unwrap();
        assert_eq!(code(s.peek(ids[0].as_bytes())), SessionError::NotFound);
        assert_eq!(s.ids().unwrap(), ids[1..], "{}", s.name);
    });
}

#[test]
fn regenerate_moves_the_session_to_a_fresh_id() {
    on_every_driver(r#", "lifetime": 600, "idle_timeout": 300"#, |s| {
        let old = s.create_ttl(b"{\"cart\":[1,2]}", 100).unwrap();
        s.update(old.as_bytes(), b"{\"cart\":[1,2,3]}").unwrap();
        let new = s.regenerate(old.as_bytes()).unwrap();
        assert_ne!(new, old);
        assert_eq!(s.get(new.as_bytes()).unwrap(), b"{\"cart\":[1,2,3]}");
        // The same absolute end (100 s), not a new lifetime.
        let ttl = s.ttl(new.as_bytes()).unwrap();
        assert!(ttl <= Duration::from_secs(100), "{}: {ttl:?}", s.name);
        assert!(ttl > Duration::from_secs(95), "{}: {ttl:?}", s.name);
        // The old id is gone for every operation, and cannot be regenerated again.
        assert_eq!(code(s.get(old.as_bytes())), SessionError::NotFound);
        assert_eq!(code(s.update(old.as_bytes(), b"x")), SessionError::NotFound);
        assert_eq!(code(s.touch(old.as_bytes())), SessionError::NotFound);
        assert_eq!(code(s.regenerate(old.as_bytes())), SessionError::NotFound);
        assert_eq!(s.get(new.as_bytes()).unwrap(), b"{\"cart\":[1,2,3]}");
        s.update(new.as_bytes(), b"{}").unwrap();
        assert_eq!(s.get(new.as_bytes()).unwrap(), b"{}");
        assert_eq!(s.count().unwrap(), 1, "{}", s.name);
        if let Some(dir) = &s.dir {
            assert_eq!(files_in(dir), vec![new.to_string()]);
        }
        // A regenerate onto a live id changes nothing.
        let other = s.create(b"other").unwrap();
        assert_eq!(
            s.store().regenerate(&new, &other, None).unwrap(),
            Outcome::Taken,
            "{}",
            s.name
        );
        assert_eq!(s.get(new.as_bytes()).unwrap(), b"{}");
        assert_eq!(s.get(other.as_bytes()).unwrap(), b"other");
        s.update(new.as_bytes(), b"still writable").unwrap();
        assert_eq!(
            code(s.regenerate(b"not an id")),
            SessionError::InvalidArgument
        );
    });
}

#[test]
fn regenerate_grace_keeps_the_old_id_readable_but_not_writable() {
    on_every_driver(r#", "lifetime": 600, "regenerate_grace": 1"#, |s| {
        let old = s.create(b"data").unwrap();
        let new = s.regenerate(old.as_bytes()).unwrap();
        assert_eq!(s.get(old.as_bytes()).unwrap(), b"data", "{}", s.name);
        assert_eq!(s.get(new.as_bytes()).unwrap(), b"data");
        let err = s.update(old.as_bytes(), b"lost").unwrap_err();
        assert_eq!(err.code, SessionError::NotFound, "{}", s.name);
        assert!(err.message.contains("regenerate"), "{}", err.message);
        assert_eq!(code(s.regenerate(old.as_bytes())), SessionError::NotFound);
        s.update(new.as_bytes(), b"new data").unwrap();
        assert_eq!(s.get(old.as_bytes()).unwrap(), b"data");
        assert!(s.ttl(old.as_bytes()).unwrap() <= Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(code(s.get(old.as_bytes())), SessionError::NotFound);
        assert_eq!(s.get(new.as_bytes()).unwrap(), b"new data");
    });
}

#[test]
fn regenerate_is_atomic_for_eight_reader_threads() {
    on_every_driver("", |s| {
        let store = s.store();
        let pair = Mutex::new(None::<(SessionId, SessionId)>);
        let stop = AtomicBool::new(false);
        let (both, neither, reads) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        std::thread::scope(|scope| {
            for t in 0..8 {
                let (pair, stop, both, neither, reads) = (&pair, &stop, &both, &neither, &reads);
                scope.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some((old, new)) = *pair.lock().unwrap() else {
                            continue;
                        };
                        // Read in both orders. The switch is one instant T: reading
                        // old then new can show both (old before T, new after) but
                        // never neither; reading new then old never shows both.
                        if t % 2 == 0 {
                            let a = store.get(&old).unwrap().is_some();
                            let b = store.get(&new).unwrap().is_some();
                            if !a && !b {
                                neither.fetch_add(1, Ordering::Relaxed);
                            }
                        } else {
                            let b = store.get(&new).unwrap().is_some();
                            let a = store.get(&old).unwrap().is_some();
                            if a && b {
                                both.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            for _ in 0..150 {
                let old = s.create(b"round").unwrap();
                let new = SessionId::generate().unwrap();
                *pair.lock().unwrap() = Some((old, new));
                std::thread::sleep(Duration::from_millis(2));
                assert_eq!(
                    store.regenerate(&old, &new, None).unwrap(),
                    Outcome::Applied
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            stop.store(true, Ordering::Relaxed);
        });
        let (both, neither) = (both.into_inner(), neither.into_inner());
        assert!(
            reads.into_inner() > 1000,
            "{}: too few reads to judge",
            s.name
        );
        assert_eq!(
            (both, neither),
            (0, 0),
            "{}: both ids or neither seen",
            s.name
        );
    });
}

#[test]
fn hostile_ids_are_rejected_before_touching_the_store() {
    on_every_driver("", |s| {
        let hostile: Vec<Vec<u8>> = vec![
            b"../../etc/passwd".to_vec(),
            vec![b'a'; 63],
            vec![b'a'; 65],
            vec![b'A'; 64],
            [vec![b'a'; 20], vec![0], vec![b'a'; 43]].concat(),
            vec![],
            [b"../".to_vec(), vec![b'a'; 61]].concat(),
            [b"/tmp/".to_vec(), vec![b'a'; 59]].concat(),
            b"session:*".to_vec(),
            vec![b'a'; 100_000],
        ];
        for id in &hostile {
            let invalid = SessionError::InvalidArgument;
            assert_eq!(code(s.get(id)), invalid);
            assert_eq!(code(s.update(id, b"x")), invalid);
            assert_eq!(code(s.destroy(id)), invalid);
            assert_eq!(code(s.touch(id)), invalid);
            assert_eq!(code(s.ttl(id)), invalid);
            assert_eq!(code(s.exists(id)), invalid);
            assert_eq!(code(s.regenerate(id)), invalid);
        }
        if let Some(dir) = &s.dir {
            assert!(files_in(dir).is_empty());
        }
        assert_eq!(s.count().unwrap(), 0);
    });
}

#[test]
fn any_bytes_round_trip_and_size_is_limited() {
    on_every_driver("", |s| {
        let binary: Vec<u8> = (1..=255u8)
            .chain(b"\"quoted\" \n\r\t {}".iter().copied())
            .collect();
        let id = s.create(&binary).unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), binary);
        let mib: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8 | 1).collect();
        let big = s.create(&mib).unwrap();
        assert_eq!(s.get(big.as_bytes()).unwrap(), mib);
        s.update(id.as_bytes(), &mib).unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), mib);
        let regenerated = s.regenerate(id.as_bytes()).unwrap();
        assert_eq!(s.get(regenerated.as_bytes()).unwrap(), mib);
        let over = vec![b'x'; (1 << 20) + 1];
        let err = s.create(&over).unwrap_err();
        assert_eq!(err.code, SessionError::TooLarge);
        assert!(err.message.contains("max_data_size"), "{}", err.message);
        assert_eq!(
            code(s.update(regenerated.as_bytes(), &over)),
            SessionError::TooLarge
        );
        assert_eq!(s.get(regenerated.as_bytes()).unwrap(), mib);
    });
}

#[test]
fn eight_threads_ten_thousand_mixed_operations_each() {
    on_every_driver(r#", "idle_timeout": 600"#, |s| {
        let ops = if s.name == "file+fsync" { 1000 } else { 10_000 };
        std::thread::scope(|scope| {
            for t in 0..8u32 {
                scope.spawn(move || {
                    let mut live: Vec<(SessionId, Vec<u8>)> = Vec::new();
                    for i in 0..ops {
                        let data = format!("{{\"thread\":{t},\"op\":{i}}}").into_bytes();
                        match i % 12 {
                            0..=2 => {
                                let id = s.create(&data).unwrap();
                                live.push((id, data));
                            }
                            3..=5 if !live.is_empty() => {
                                let (id, expect) = &live[i as usize % live.len()];
                                assert_eq!(&s.get(id.as_bytes()).unwrap(), expect);
                            }
                            6..=8 if !live.is_empty() => {
                                let k = i as usize % live.len();
                                s.update(live[k].0.as_bytes(), &data).unwrap();
                                live[k].1 = data;
                            }
                            9 if !live.is_empty() => {
                                let k = i as usize % live.len();
                                live[k].0 = s.regenerate(live[k].0.as_bytes()).unwrap();
                            }
                            10 if !live.is_empty() => {
                                let k = i as usize % live.len();
                                s.touch(live[k].0.as_bytes()).unwrap();
                            }
                            _ if live.len() > 20 => {
                                let (id, _) = live.swap_remove(i as usize % live.len());
                                s.destroy(id.as_bytes()).unwrap();
                                assert_eq!(code(s.get(id.as_bytes())), SessionError::NotFound);
                            }
                            _ => {}
                        }
                    }
                    for (id, expect) in &live {
                        assert_eq!(&s.get(id.as_bytes()).unwrap(), expect, "lost at the end");
                        s.destroy(id.as_bytes()).unwrap();
                    }
                });
            }
        });
        assert_eq!(s.count().unwrap(), 0, "{}", s.name);
        if let Some(dir) = &s.dir {
            assert!(files_in(dir).is_empty());
        }
    });
}

/// The memory driver's capacity (the others reject `max_sessions`): exact under 8
/// threads creating at once, regenerate with a grace counts its extra entry, and
/// ended sessions make room.
#[test]
fn memory_max_sessions_holds_under_concurrent_creates() {
    for _ in 0..50 {
        let s = open(r#"{"sessions": {"driver": "memory", "max_sessions": 3}}"#);
        let created = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| match s.create(b"x") {
                    Ok(_) => {
                        created.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => assert_eq!(err.code, SessionError::Full, "{}", err.message),
                });
            }
        });
        assert_eq!(created.into_inner(), 3);
        assert_eq!(s.count().unwrap(), 3);
    }
    let s =
        open(r#"{"sessions": {"driver": "memory", "max_sessions": 2, "regenerate_grace": 60}}"#);
    let a = s.create(b"a").unwrap();
    let b = s.regenerate(a.as_bytes()).unwrap(); // a stays readable: 2 entries
    assert_eq!(code(s.create(b"c")), SessionError::Full);
    assert_eq!(code(s.regenerate(b.as_bytes())), SessionError::Full);
    s.destroy(a.as_bytes()).unwrap();
    let c = s.create_ttl(b"c", 1).unwrap();
    assert_eq!(code(s.create(b"d")), SessionError::Full);
    std::thread::sleep(Duration::from_millis(1100));
    // c ended: the next create sweeps it away and fits.
    s.create(b"d").unwrap();
    assert_eq!(code(s.get(c.as_bytes())), SessionError::NotFound);
}

#[test]
fn versions_only_grow_with_every_change_of_the_data() {
    on_every_driver(r#", "idle_timeout": 600"#, |s| {
        let id = s.create(br#"{"a":1}"#).unwrap();
        let id = id.as_bytes();
        let version = |s: &Driver| s.get_versioned(id).unwrap().1;
        let mut last = version(s);
        let mut grew = |s: &Driver, what: &str| {
            let now = version(s);
            assert!(
                now > last,
                "{}: {what} did not grow the version ({last} -> {now})",
                s.name
            );
            last = now;
        };
        s.update(id, br#"{"a":2}"#).unwrap();
        grew(s, "update");
        s.set_value(id, b"b", b"[1]").unwrap();
        grew(s, "set_value");
        s.delete_value(id, b"b").unwrap();
        grew(s, "delete_value");
        s.set_value(id, b"flash", b"\"saved\"").unwrap();
        grew(s, "set_value");
        assert_eq!(s.pop_value(id, b"flash").unwrap().unwrap(), b"\"saved\"");
        grew(s, "pop_value");
        // Reads, touch and changes that change nothing leave it alone.
        let before = version(s);
        s.get(id).unwrap();
        s.touch(id).unwrap();
        s.delete_value(id, b"absent").unwrap();
        assert_eq!(s.pop_value(id, b"absent").unwrap(), None);
        assert_eq!(version(s), before, "{}", s.name);
        let (data, v) = s.get_versioned(id).unwrap();
        assert_eq!(data, br#"{"a":2}"#);
        let new = s.regenerate(id).unwrap();
        let (_, after) = s.get_versioned(new.as_bytes()).unwrap();
        assert!(after > v, "{}: regenerate did not grow the version", s.name);
    });
}

#[test]
fn a_regenerate_within_a_grace_also_grows_the_version() {
    on_every_driver(r#", "regenerate_grace": 30"#, |s| {
        let id = s.create(br#"{"a":1}"#).unwrap();
        s.update(id.as_bytes(), br#"{"a":2}"#).unwrap();
        let (_, v) = s.get_versioned(id.as_bytes()).unwrap();
        let new = s.regenerate(id.as_bytes()).unwrap();
        let (data, after) = s.get_versioned(new.as_bytes()).unwrap();
        assert_eq!(data, br#"{"a":2}"#, "{}", s.name);
        assert!(after > v, "{}: {v} -> {after}", s.name);
        // The old id reads the same data meanwhile.
        assert_eq!(s.get(id.as_bytes()).unwrap(), br#"{"a":2}"#, "{}", s.name);
    });
}

#[test]
fn a_regenerate_onto_a_live_id_is_refused_and_keeps_both() {
    on_every_driver("", |s| {
        use session::store::Outcome;
        let a = s.create(b"a").unwrap();
        let b = s.create(b"b").unwrap();
        for updates in 0..2 {
            assert_eq!(
                s.store().regenerate(&a, &b, None).unwrap(),
                Outcome::Taken,
                "{}",
                s.name
            );
            assert_eq!(s.get(a.as_bytes()).unwrap(), b"a", "{} {updates}", s.name);
            assert_eq!(s.get(b.as_bytes()).unwrap(), b"b", "{} {updates}", s.name);
            s.update(a.as_bytes(), b"a").unwrap();
        }
        // And a regenerate to a fresh id still works.
        let c = s.regenerate(a.as_bytes()).unwrap();
        assert_eq!(s.get(c.as_bytes()).unwrap(), b"a", "{}", s.name);
    });
}

#[test]
fn a_regenerate_restarts_the_idle_window() {
    on_every_driver(r#", "idle_timeout": 3"#, |s| {
        let id = s.create(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(1300));
        let new = s.regenerate(id.as_bytes()).unwrap();
        let left = s.ttl(new.as_bytes()).unwrap();
        assert!(left > Duration::from_millis(2500), "{}: {left:?}", s.name);
    });
}

#[test]
fn update_if_writes_only_the_version_it_read() {
    on_every_driver("", |s| {
        let id = s.create(b"one").unwrap();
        let id = id.as_bytes();
        let (data, v1) = s.get_versioned(id).unwrap();
        assert_eq!(data, b"one");
        s.update_if(id, b"two", v1).unwrap();
        let (data, v2) = s.get_versioned(id).unwrap();
        assert_eq!(data, b"two");
        // A writer that read v1 lost the race: it is told, and writes nothing.
        let err = s.update_if(id, b"lost", v1).unwrap_err();
        assert_eq!(
            err.code,
            SessionError::Conflict,
            "{}: {}",
            s.name,
            err.message
        );
        assert_eq!(s.get(id).unwrap(), b"two");
        assert_eq!(code(s.update_if(id, b"x", v2 + 5)), SessionError::Conflict);
        s.update_if(id, b"three", v2).unwrap();
        s.destroy(id).unwrap();
        assert_eq!(code(s.update_if(id, b"x", v2 + 1)), SessionError::NotFound);
        assert_eq!(code(s.get_versioned(id)), SessionError::NotFound);
        assert_eq!(
            code(s.update_if(b"../x", b"x", 1)),
            SessionError::InvalidArgument
        );
    });
}

#[test]
fn per_key_values_change_one_member_and_keep_the_rest_byte_for_byte() {
    on_every_driver(r#", "regenerate_grace": 60"#, |s| {
        let doc = br#"{ "user_id" : 42,  "cart":[1, 2], "name": "Zo\u00eb" }"#;
        let id = s.create(doc).unwrap();
        let id = id.as_bytes();
        assert_eq!(s.get_value(id, b"cart").unwrap().unwrap(), b"[1, 2]");
        assert_eq!(s.get_value(id, b"absent").unwrap(), None);
        s.set_value(id, b"cart", b"[3]").unwrap();
        s.set_value(id, b"role", b" \"admin\" ").unwrap();
        assert_eq!(
            s.get(id).unwrap(),
            br#"{ "user_id" : 42,  "cart":[3], "name": "Zo\u00eb","role":"admin" }"#
        );
        s.delete_value(id, b"user_id").unwrap();
        s.delete_value(id, b"absent").unwrap();
        assert_eq!(s.pop_value(id, b"role").unwrap().unwrap(), b"\"admin\"");
        assert_eq!(s.pop_value(id, b"role").unwrap(), None);
        assert_eq!(s.get(id).unwrap(), br#"{ "cart":[3], "name": "Zo\u00eb" }"#);

        // Errors leave the data as it was.
        let before = s.get_versioned(id).unwrap();
        for bad in [&b"{"[..], b"", b"[1,]", b"undefined", b"'x'"] {
            assert_eq!(
                code(s.set_value(id, b"k", bad)),
                SessionError::InvalidArgument
            );
        }
        assert_eq!(
            code(s.set_value(id, b"\xff", b"1")),
            SessionError::InvalidArgument
        );
        let big = format!("\"{}\"", "x".repeat(1 << 20));
        assert_eq!(
            code(s.set_value(id, b"big", big.as_bytes())),
            SessionError::TooLarge
        );
        assert_eq!(s.get_versioned(id).unwrap(), before, "{}", s.name);
        let list = s.create(b"[1,2,3]").unwrap();
        let list = list.as_bytes();
        for err in [
            code(s.get_value(list, b"a")),
            code(s.set_value(list, b"a", b"1")),
            code(s.delete_value(list, b"a")),
            code(s.pop_value(list, b"a")),
        ] {
            assert_eq!(err, SessionError::InvalidArgument, "{}", s.name);
        }
        assert_eq!(s.get(list).unwrap(), b"[1,2,3]");
        // A missing session, and the read-only old id of a regenerated one.
        let new = s.regenerate(id).unwrap();
        assert_eq!(s.get_value(id, b"cart").unwrap().unwrap(), b"[3]");
        assert_eq!(
            code(s.set_value(id, b"cart", b"[4]")),
            SessionError::NotFound
        );
        assert_eq!(code(s.pop_value(id, b"cart")), SessionError::NotFound);
        s.set_value(new.as_bytes(), b"cart", b"[4]").unwrap();
        s.destroy(new.as_bytes()).unwrap();
        assert_eq!(
            code(s.set_value(new.as_bytes(), b"a", b"1")),
            SessionError::NotFound
        );
        assert_eq!(
            code(s.get_value(new.as_bytes(), b"a")),
            SessionError::NotFound
        );
    });
}

#[test]
fn concurrent_set_values_and_compare_and_set_lose_no_update() {
    on_every_driver("", |s| {
        // 8 threads each set 200 distinct keys of one session.
        let id = s.create(b"{}").unwrap();
        let id = id.as_bytes();
        std::thread::scope(|scope| {
            for t in 0..8 {
                scope.spawn(move || {
                    for k in 0..200 {
                        s.set_value(
                            id,
                            format!("t{t}k{k}").as_bytes(),
                            format!("{k}").as_bytes(),
                        )
                        .unwrap_or_else(|e| panic!("{}: {}", s.name, e.message));
                    }
                });
            }
        });
        let data: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&s.get(id).unwrap()).unwrap();
        assert_eq!(data.len(), 1600, "{}: lost set_values", s.name);
        // 8 threads increment a counter with get_versioned / update_if.
        let counter = s.create(b"0").unwrap();
        let counter = counter.as_bytes();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(move || {
                    for _ in 0..250 {
                        loop {
                            let (data, v) = s.get_versioned(counter).unwrap();
                            let n: u64 = std::str::from_utf8(&data).unwrap().parse().unwrap();
                            match s.update_if(counter, (n + 1).to_string().as_bytes(), v) {
                                Ok(()) => break,
                                Err(e) if e.code == SessionError::Conflict => continue,
                                Err(e) => panic!("{}: {}", s.name, e.message),
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(
            s.get(counter).unwrap(),
            b"2000",
            "{}: lost increments",
            s.name
        );
    });
}

const SECRET: &str = "an example secret for tests, longer than 32 bytes";
const OLD_SECRET: &str = "the previous secret for tests, also over 32 bytes";

fn session_id(text: &[u8]) -> SessionId {
    SessionId::parse(text).unwrap()
}

#[test]
fn encrypted_sessions_round_trip_and_store_no_plaintext() {
    let extra = format!(r#", "secret": "{SECRET}", "owner_key": "user_id""#);
    on_every_driver(&extra, |s| {
        let plain = br#"{"user_id":42,"email":"alice@example.com"}"#;
        let id = s.create(plain).unwrap();
        assert_eq!(s.get(id.as_bytes()).unwrap(), plain);
        let stored = s.store().get(&id).unwrap().unwrap();
        assert!(
            !stored.windows(5).any(|w| w == b"alice"),
            "{}: plaintext at rest",
            s.name
        );
        // Every path reads and writes through the seal.
        s.set_value(id.as_bytes(), b"flash", b"\"saved\"").unwrap();
        assert_eq!(
            s.pop_value(id.as_bytes(), b"flash").unwrap().unwrap(),
            b"\"saved\""
        );
        assert_eq!(
            s.get_value(id.as_bytes(), b"user_id").unwrap().unwrap(),
            b"42"
        );
        let (data, version) = s.get_versioned(id.as_bytes()).unwrap();
        assert_eq!(data, plain);
        s.update_if(id.as_bytes(), b"{\"user_id\":42,\"n\":1}", version)
            .unwrap();
        let new = s.regenerate(id.as_bytes()).unwrap();
        assert_eq!(s.get(new.as_bytes()).unwrap(), b"{\"user_id\":42,\"n\":1}");
        assert_eq!(
            s.list_owner(b"42").unwrap(),
            vec![new],
            "{}: regenerate keeps the owner index",
            s.name
        );
        // The same record under another id does not open.
        let stored = s.store().get(&new).unwrap().unwrap();
        let other = SessionId::generate().unwrap();
        let lifetime = Duration::from_secs(60);
        assert_eq!(
            s.store().create(&other, &stored, lifetime).unwrap(),
            Outcome::Applied
        );
        assert_eq!(code(s.get(other.as_bytes())), SessionError::Corrupt);
        // One flipped byte anywhere: CORRUPT, and per-key writes leave it alone.
        for i in [0, 3, 10, stored.len() / 2, stored.len() - 1] {
            let mut bad = stored.clone();
            bad[i] ^= 0x20;
            s.store().update(&new, &bad).unwrap();
            assert_eq!(
                code(s.get(new.as_bytes())),
                SessionError::Corrupt,
                "{}",
                s.name
            );
            assert_eq!(
                code(s.set_value(new.as_bytes(), b"k", b"1")),
                SessionError::Corrupt
            );
            assert_eq!(s.store().get(&new).unwrap().unwrap(), bad);
            assert_eq!(code(s.regenerate(new.as_bytes())), SessionError::Corrupt);
        }
        // Truncated, and stored without a secret.
        s.store().update(&new, &stored[..stored.len() - 1]).unwrap();
        assert_eq!(code(s.get(new.as_bytes())), SessionError::Corrupt);
        s.store().update(&new, plain).unwrap();
        assert_eq!(code(s.get(new.as_bytes())), SessionError::Corrupt);
    });
}

#[test]
fn rotated_secrets_read_old_sessions_and_write_with_the_new_one() {
    let old_only = format!(r#", "secret": "{OLD_SECRET}", "owner_key": "user_id""#);
    on_every_driver(&old_only, |old| {
        let rotated = Sessions::open_store(
            &Config::from_json(
                format!(
                    r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", "secret_fallbacks": ["{OLD_SECRET}"], "owner_key": "user_id"}}}}"#
                )
                .as_bytes(),
            )
            .unwrap()
            .stores[0],
        )
        .unwrap();
        let new_only = open(&format!(
            r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}"}}}}"#
        ));
        // A session written with the old secret, moved as it is into the rotated
        // store (same id, so the record still authenticates).
        let id = old.create(b"{\"user_id\":7}").unwrap();
        let record = old.store().get(&id).unwrap().unwrap();
        let lifetime = Duration::from_secs(60);
        rotated.store().create(&id, &record, lifetime).unwrap();
        new_only.store().create(&id, &record, lifetime).unwrap();
        assert_eq!(rotated.get(id.as_bytes()).unwrap(), b"{\"user_id\":7}");
        assert_eq!(code(new_only.get(id.as_bytes())), SessionError::Corrupt);
        // After an update it reads with the new secret alone.
        rotated
            .update(id.as_bytes(), b"{\"user_id\":7,\"v\":2}")
            .unwrap();
        let resealed = rotated.store().get(&id).unwrap().unwrap();
        new_only.store().update(&id, &resealed).unwrap();
        assert_eq!(
            new_only.get(id.as_bytes()).unwrap(),
            b"{\"user_id\":7,\"v\":2}"
        );
        assert_eq!(
            old.store().update(&id, &resealed).unwrap(),
            Outcome::Applied
        );
        assert_eq!(
            code(old.get(id.as_bytes())),
            SessionError::Corrupt,
            "{}",
            old.name
        );
    });
}

#[test]
fn secrets_are_checked_and_never_shown() {
    for (json, says) in [
        (
            r#"{"sessions": {"driver": "memory", "secret": "short"}}"#,
            "at least 32 bytes",
        ),
        (
            r#"{"sessions": {"driver": "memory", "secret_fallbacks": ["an old secret that is long enough......"]}}"#,
            "needs sessions.secret",
        ),
        (
            r#"{"sessions": {"driver": "memory", "secret": "a secret that is long enough...........", "secret_fallbacks": ["short"]}}"#,
            "secret_fallbacks[0] is 5 bytes",
        ),
        (
            r#"{"sessions": {"driver": "memory", "secret": 123456789}}"#,
            "must be a string",
        ),
    ] {
        let err = Config::from_json(json.as_bytes()).unwrap_err();
        assert_eq!(err.code, SessionError::Config, "{json}");
        assert!(err.message.contains(says), "{json}: {}", err.message);
        assert!(!err.message.contains("short\""), "{}", err.message);
        assert!(!err.message.contains("123456789"), "{}", err.message);
    }
    let config = Config::from_json(
        format!(r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}"}}}}"#).as_bytes(),
    )
    .unwrap();
    assert!(!format!("{config:?}").contains(SECRET));
}

/// Session data written by a C server may hold a Latin-1 byte in a string: the
/// owner index and the per-key calls work on the members around it, and a new
/// value must still be UTF-8.
#[test]
fn invalid_utf8_in_another_member_leaves_the_owner_index_and_per_key_calls_working() {
    on_every_driver(r#", "owner_key": "user_id""#, |s| {
        let latin1 = s.create(b"{\"user_id\":42,\"name\":\"Ren\xe9\"}").unwrap();
        let plain = s.create(b"{\"user_id\":42}").unwrap();
        assert_eq!(s.count_owner(b"42").unwrap(), 2, "{}", s.name);
        let id = latin1.as_bytes();
        assert_eq!(s.get_value(id, b"user_id").unwrap(), Some(b"42".to_vec()));
        s.set_value(id, b"n", b"1").unwrap();
        assert_eq!(
            s.get(id).unwrap(),
            b"{\"user_id\":42,\"name\":\"Ren\xe9\",\"n\":1}"
        );
        assert_eq!(
            code(s.set_value(id, b"n", b"\"\xe9\"")),
            SessionError::InvalidArgument
        );
        assert_eq!(s.destroy_owner(b"42").unwrap(), 2, "{}", s.name);
        for id in [latin1, plain] {
            assert_eq!(code(s.get(id.as_bytes())), SessionError::NotFound);
        }
    });
}

#[test]
fn an_owner_index_entry_outlives_its_session_by_the_slack() {
    on_every_driver(r#", "owner_key": "user_id", "max_lifetime": 3600"#, |s| {
        let now = session::store::now_ns;
        let before = now();
        let id = s.create(b"{\"user_id\":7}").unwrap();
        let after = now();
        let entries = s
            .store()
            .index_list(&session::seal::OwnerTag::plain("7"))
            .unwrap();
        assert_eq!(entries.len(), 1, "{}", s.name);
        let (entry, bound) = entries[0];
        assert_eq!(entry, id);
        let span = (3600 + session::sessions::INDEX_SLACK.as_secs()) * 1_000_000_000;
        // Redis keeps whole milliseconds.
        let earliest = (before + span) / 1_000_000 * 1_000_000;
        assert!(
            (earliest..=after + span).contains(&bound),
            "{}: bound {bound} for a span of {span} after {before}..{after}",
            s.name
        );
    });
}

#[test]
fn reading_an_owner_drops_old_entries_of_missing_sessions_and_keeps_young_ones() {
    on_every_driver(r#", "owner_key": "user_id", "max_lifetime": 3600"#, |s| {
        use session::sessions::{INDEX_SLACK, INDEX_YOUNG};
        let tag = session::seal::OwnerTag::plain("5");
        let now = session::store::now_ns();
        let span = (3600 + INDEX_SLACK.as_secs()) * 1_000_000_000;
        let young_span = span - INDEX_YOUNG.as_nanos() as u64 + 10_000_000_000;
        let old_span = span - INDEX_YOUNG.as_nanos() as u64 - 10_000_000_000;
        // Entries without sessions, as bounds tell: one written 10 s less than
        // INDEX_YOUNG ago (it may be a create in flight), one 10 s more (its
        // creator died).
        let young = SessionId::generate().unwrap();
        let old = SessionId::generate().unwrap();
        s.store().index_add(&tag, &young, now + young_span).unwrap();
        s.store().index_add(&tag, &old, now + old_span).unwrap();
        let live = s.create(b"{\"user_id\":5}").unwrap();
        assert_eq!(s.list_owner(b"5").unwrap(), [live], "{}", s.name);
        let mut left = index_ids(s, &tag);
        left.sort_unstable_by_key(|id| *id.as_bytes());
        let mut expect = vec![young, live];
        expect.sort_unstable_by_key(|id| *id.as_bytes());
        assert_eq!(left, expect, "{}", s.name);
    });
}

#[test]
fn the_owner_index_finds_destroys_and_follows_every_write() {
    on_every_driver(r#", "owner_key": "user_id""#, |s| {
        let mut by_owner: Vec<Vec<SessionId>> = vec![Vec::new(); 10];
        for i in 0..100 {
            let owner = i % 10;
            let data = if owner == 9 {
                format!("{{\"user_id\":\"name-{owner}\",\"i\":{i}}}")
            } else {
                format!("{{\"user_id\":{owner},\"i\":{i}}}")
            };
            by_owner[owner].push(s.create(data.as_bytes()).unwrap());
        }
        let unowned = [
            s.create(b"{\"i\":1}").unwrap(),
            s.create(b"not json").unwrap(),
            s.create(b"{\"user_id\":null}").unwrap(),
            s.create(b"{\"user_id\":\"\"}").unwrap(),
        ];
        assert_eq!(s.count_owner(b"3").unwrap(), 10, "{}", s.name);
        assert_eq!(s.count_owner(b"name-9").unwrap(), 10, "{}", s.name);
        assert_eq!(s.count_owner(b"12").unwrap(), 0);
        let mut listed = s.list_owner(b"4").unwrap();
        listed.sort_by_key(|id| *id.as_bytes());
        let mut expected = by_owner[4].clone();
        expected.sort_by_key(|id| *id.as_bytes());
        assert_eq!(listed, expected, "{}", s.name);
        // destroy_owner ends exactly that owner's sessions.
        assert_eq!(s.destroy_owner(b"3").unwrap(), 10, "{}", s.name);
        assert_eq!(s.destroy_owner(b"3").unwrap(), 0);
        for id in &by_owner[3] {
            assert_eq!(code(s.get(id.as_bytes())), SessionError::NotFound);
        }
        assert_eq!(s.count().unwrap(), 94, "{}", s.name);
        for id in by_owner
            .iter()
            .enumerate()
            .filter(|(o, _)| *o != 3)
            .flat_map(|(_, ids)| ids)
        {
            s.get(id.as_bytes()).unwrap();
        }
        for id in &unowned {
            s.get(id.as_bytes()).unwrap();
        }
        // The owner follows set_value, update, update_if and regenerate.
        let moved = by_owner[5][0];
        s.set_value(moved.as_bytes(), b"user_id", b"6").unwrap();
        assert_eq!(s.count_owner(b"5").unwrap(), 9, "{}", s.name);
        assert_eq!(s.count_owner(b"6").unwrap(), 11, "{}", s.name);
        s.update(moved.as_bytes(), b"{\"user_id\":\"x\"}").unwrap();
        assert_eq!(s.list_owner(b"x").unwrap(), vec![moved]);
        let (_, v) = s.get_versioned(unowned[0].as_bytes()).unwrap();
        s.update_if(unowned[0].as_bytes(), b"{\"user_id\":\"x\"}", v)
            .unwrap();
        assert_eq!(s.count_owner(b"x").unwrap(), 2);
        let regenerated = s.regenerate(moved.as_bytes()).unwrap();
        let mut xs = s.list_owner(b"x").unwrap();
        xs.sort_by_key(|id| *id.as_bytes());
        let mut want = vec![regenerated, unowned[0]];
        want.sort_by_key(|id| *id.as_bytes());
        assert_eq!(xs, want, "{}", s.name);
        s.delete_value(regenerated.as_bytes(), b"user_id").unwrap();
        assert_eq!(s.list_owner(b"x").unwrap(), vec![unowned[0]]);
        // Destroyed and expired sessions are not listed; an entry whose session
        // never got written (a crash between the two writes) is skipped.
        s.destroy(unowned[0].as_bytes()).unwrap();
        assert_eq!(s.count_owner(b"x").unwrap(), 0);
        let crashed = SessionId::generate().unwrap();
        let tag = session::seal::OwnerTag::plain("7");
        s.store().index_add(&tag, &crashed, u64::MAX / 2).unwrap();
        assert_eq!(s.count_owner(b"7").unwrap(), 10, "{}", s.name);
        assert_eq!(code(s.count_owner(b"")), SessionError::InvalidArgument);
    });
}

#[test]
fn owner_calls_need_an_owner_key() {
    on_every_driver("", |s| {
        assert_eq!(code(s.destroy_owner(b"1")), SessionError::Config);
        assert_eq!(code(s.list_owner(b"1")), SessionError::Config);
    });
}

#[test]
fn max_sessions_per_owner_ends_the_oldest() {
    on_every_driver(
        r#", "owner_key": "user_id", "max_sessions_per_owner": 3"#,
        |s| {
            let mut ids = Vec::new();
            for _ in 0..5 {
                ids.push(s.create(b"{\"user_id\":1}").unwrap());
                std::thread::sleep(Duration::from_millis(3));
            }
            let other = s.create(b"{\"user_id\":2}").unwrap();
            assert_eq!(s.list_owner(b"1").unwrap(), ids[2..].to_vec(), "{}", s.name);
            for id in &ids[..2] {
                assert_eq!(code(s.get(id.as_bytes())), SessionError::NotFound);
            }
            s.get(other.as_bytes()).unwrap();
        },
    );
}

#[test]
fn owner_index_survives_a_secret_rotation() {
    // Entries written under the old secret's tag are still found with it as a
    // fallback (all drivers share the tag logic; memory shows it).
    let old = open(&format!(
        r#"{{"sessions": {{"driver": "memory", "secret": "{OLD_SECRET}", "owner_key": "user_id"}}}}"#
    ));
    let rotated = open(&format!(
        r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", "secret_fallbacks": ["{OLD_SECRET}"], "owner_key": "user_id"}}}}"#
    ));
    let id = old.create(b"{\"user_id\":5}").unwrap();
    let record = old.store().get(&id).unwrap().unwrap();
    rotated
        .store()
        .create(&id, &record, Duration::from_secs(60))
        .unwrap();
    for tag in session::seal::Sealer::new(
        &session::seal::Secret::new(OLD_SECRET.as_bytes(), "s").unwrap(),
        &[],
    )
    .unwrap()
    .owner_tags("5")
    {
        rotated.store().index_add(&tag, &id, u64::MAX / 2).unwrap();
    }
    let fresh = rotated.create(b"{\"user_id\":5}").unwrap();
    let mut listed = rotated.list_owner(b"5").unwrap();
    listed.sort_by_key(|i| *i.as_bytes());
    let mut want = vec![id, fresh];
    want.sort_by_key(|i| *i.as_bytes());
    assert_eq!(listed, want);
    assert_eq!(rotated.destroy_owner(b"5").unwrap(), 2);
    let _ = session_id(id.as_bytes());
}

#[test]
fn regenerate_with_a_grace_reseals_for_the_new_id_and_indexes_it() {
    let extra =
        format!(r#", "secret": "{SECRET}", "owner_key": "user_id", "regenerate_grace": 30"#);
    on_every_driver(&extra, |s| {
        let old = s.create(b"{\"user_id\":1,\"cart\":[]}").unwrap();
        let new = s.regenerate(old.as_bytes()).unwrap();
        assert_eq!(
            s.get(new.as_bytes()).unwrap(),
            b"{\"user_id\":1,\"cart\":[]}"
        );
        assert_eq!(
            s.get(old.as_bytes()).unwrap(),
            b"{\"user_id\":1,\"cart\":[]}"
        );
        assert_eq!(
            code(s.set_value(old.as_bytes(), b"k", b"1")),
            SessionError::NotFound
        );
        // The new id's record is its own: sealed for it, not a copy of the old one.
        let (a, b) = (
            s.store().get(&old).unwrap().unwrap(),
            s.store().get(&new).unwrap().unwrap(),
        );
        assert_ne!(a, b, "{}", s.name);
        // Both ids are the owner's while the old one reads; destroy_owner ends both.
        let mut listed = s.list_owner(b"1").unwrap();
        listed.sort_by_key(|id| *id.as_bytes());
        let mut want = vec![old, new];
        want.sort_by_key(|id| *id.as_bytes());
        assert_eq!(listed, want, "{}", s.name);
        assert_eq!(s.destroy_owner(b"1").unwrap(), 2, "{}", s.name);
        assert_eq!(code(s.get(new.as_bytes())), SessionError::NotFound);
        assert_eq!(code(s.get(old.as_bytes())), SessionError::NotFound);
    });
}

#[test]
fn max_sessions_per_owner_also_holds_when_a_write_sets_the_owner() {
    on_every_driver(
        r#", "owner_key": "user_id", "max_sessions_per_owner": 2"#,
        |s| {
            // Logins that create an anonymous session first and set the owner later.
            let mut ids = Vec::new();
            for i in 0..4 {
                let id = s.create(b"{}").unwrap();
                match i {
                    0 => s.set_value(id.as_bytes(), b"user_id", b"1").unwrap(),
                    1 => s.update(id.as_bytes(), b"{\"user_id\":1}").unwrap(),
                    _ => {
                        let (_, v) = s.get_versioned(id.as_bytes()).unwrap();
                        s.update_if(id.as_bytes(), b"{\"user_id\":1}", v).unwrap()
                    }
                }
                ids.push(id);
                std::thread::sleep(Duration::from_millis(3));
            }
            assert_eq!(s.list_owner(b"1").unwrap(), ids[2..].to_vec(), "{}", s.name);
            // A destroyed session leaves the index at once.
            s.destroy(ids[3].as_bytes()).unwrap();
            let entries = index_ids(s, &session::seal::OwnerTag::plain("1"));
            assert!(!entries.contains(&ids[3]), "{}", s.name);
        },
    );
}

#[test]
fn of_two_racing_logins_over_the_limit_the_later_one_stays() {
    on_every_driver(
        r#", "owner_key": "user_id", "max_sessions_per_owner": 1"#,
        |s| {
            for round in 0..40 {
                let owner = format!("{{\"user_id\":{round}}}");
                let first = s.create(owner.as_bytes()).unwrap();
                // Strictly older than both logins (Redis keeps ends in ms).
                std::thread::sleep(Duration::from_millis(3));
                let barrier = std::sync::Barrier::new(2);
                let (a, b) = std::thread::scope(|scope| {
                    let a = scope.spawn(|| {
                        barrier.wait();
                        s.create(owner.as_bytes()).unwrap()
                    });
                    let b = scope.spawn(|| {
                        barrier.wait();
                        s.create(owner.as_bytes()).unwrap()
                    });
                    (a.join().unwrap(), b.join().unwrap())
                });
                let live = [first, a, b]
                    .iter()
                    .filter(|id| s.exists(id.as_bytes()).is_ok())
                    .count();
                assert!(
                    live >= 1,
                    "{}: round {round}: every login was ended",
                    s.name
                );
                assert_eq!(
                    code(s.get(first.as_bytes())),
                    SessionError::NotFound,
                    "{}: round {round}",
                    s.name
                );
            }
        },
    );
}

#[test]
fn regenerate_without_grace_drops_the_old_ids_entry() {
    on_every_driver(r#", "owner_key": "user_id""#, |s| {
        let old = s.create(b"{\"user_id\":9}").unwrap();
        let new = s.regenerate(old.as_bytes()).unwrap();
        let tag = session::seal::OwnerTag::plain("9");
        let entries: Vec<SessionId> = s
            .store()
            .index_list(&tag)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(entries, vec![new], "{}", s.name);
    });
}

#[test]
fn back_to_back_logins_keep_exactly_the_limit() {
    // Creates within one millisecond still sort by age (Redis keeps the end in ns
    // beside the ms one its scripts use).
    on_every_driver(
        r#", "owner_key": "user_id", "max_sessions_per_owner": 2"#,
        |s| {
            for owner in 0..100 {
                let data = format!("{{\"user_id\":\"u{owner}\"}}");
                let ids: Vec<SessionId> =
                    (0..3).map(|_| s.create(data.as_bytes()).unwrap()).collect();
                let owner = format!("u{owner}");
                assert_eq!(
                    s.list_owner(owner.as_bytes()).unwrap(),
                    ids[1..].to_vec(),
                    "{}: {owner}",
                    s.name
                );
            }
        },
    );
}
