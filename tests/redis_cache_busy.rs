//! The local read cache while other clients write without pause: the stream of
//! invalidations (every session under the prefix, in broadcast mode) must never
//! starve the heartbeat, so a quiet session keeps being answered from memory, and
//! the listener thread still ends when the store closes. Alone in its binary: it
//! counts the process's `session-cache` threads.

mod support;

use session::config::Config;
use session::Sessions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::redis_server::RedisServer;

fn open(server: &RedisServer, extra: &str) -> Sessions {
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "lifetime": 3600{extra}}}}}"#,
        server.url()
    );
    Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap()
}

/// Threads of this process named `session-cache`.
fn cache_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "session-cache")
        .count()
}

#[test]
fn writes_to_other_sessions_never_starve_the_cache() {
    let server = RedisServer::start(&[]);
    let cached = open(&server, r#", "local_cache": {}"#);
    let id = cached.create(b"quiet").unwrap();
    let hit = || {
        let hits = cached.store().cache_stats().unwrap().hits;
        assert_eq!(cached.get(id.as_bytes()).unwrap(), b"quiet");
        cached.store().cache_stats().unwrap().hits > hits
    };
    let start = Instant::now();
    while !hit() {
        assert!(start.elapsed() < Duration::from_secs(10), "never cached");
    }
    // (A thread takes its name once it runs.)
    while cache_threads() != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not one listener"
        );
        std::thread::sleep(Duration::from_millis(1));
    }

    // Two threads of another client update another session without pause.
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, other) = (Arc::clone(&stop), open(&server, ""));
            let busy = other.create(b"0").unwrap();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    other
                        .update(busy.as_bytes(), n.to_string().as_bytes())
                        .unwrap();
                }
                n
            })
        })
        .collect();
    let (mut gets, mut hits) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        gets += 1;
        hits += u64::from(hit());
        std::thread::sleep(Duration::from_micros(200));
    }
    let stats = cached.store().cache_stats().unwrap();
    // The listener ends with the store, even while others write.
    drop(cached);
    let threads_left = cache_threads();
    stop.store(true, Ordering::Relaxed);
    let writes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    eprintln!(
        "{writes} writes to another session meanwhile: {hits} of {gets} gets of a quiet session answered from the cache; {stats:?}"
    );
    assert!(writes > 1000, "the writers hardly wrote");
    assert!(
        hits * 2 >= gets,
        "{hits} hits of {gets} gets while others wrote: {stats:?}"
    );
    assert_eq!(threads_left, 0, "a listener outlived its store");

    // And a store left idle a while (no message for many ticks) closes too.
    let idle = open(&server, r#", "local_cache": {}"#);
    while cache_threads() != 1 {
        assert!(start.elapsed() < Duration::from_secs(20), "no listener");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(idle);
    assert_eq!(cache_threads(), 0, "an idle store's listener outlived it");
}
