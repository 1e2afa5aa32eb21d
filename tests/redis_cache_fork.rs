//! A forked child starts with an empty local cache and its own invalidation
//! channel, even when the parent's listener thread held the cache's lock at the
//! fork. One test per binary: it forks.

mod support;

use session::config::Config;
use session::Sessions;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::redis_server::RedisServer;

fn open(server: &RedisServer, extra: &str) -> Sessions {
    let json = format!(
        r#"{{"sessions": {{"driver": "redis", "url": "{}", "lifetime": 3600{extra}}}}}"#,
        server.url()
    );
    Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap()
}

/// What the child checks; its exit status says which check failed (0: none).
fn child(cached: &Sessions, server_url: &str, id: &str) -> i32 {
    let stats = cached.store().cache_stats().unwrap();
    if stats.entries != 0 || stats.hits != 0 || stats.channel_up {
        return 2; // the parent's cache or channel leaked into the child
    }
    if cached.get(id.as_bytes()).ok().as_deref() != Some(&b"parent"[..]) {
        return 3;
    }
    // Its own channel: a change made by another client is seen.
    let json = format!(r#"{{"sessions": {{"driver": "redis", "url": "{server_url}"}}}}"#);
    let other = Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap();
    // The child's channel opens in the background at its first get.
    let mut tries = 0;
    loop {
        let _ = cached.get(id.as_bytes());
        let stats = cached.store().cache_stats().unwrap();
        if stats.channel_up && stats.hits > 0 {
            break;
        }
        tries += 1;
        if tries == 100_000 {
            return 4;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    let mine = format!("child {}", std::process::id());
    let Ok(own) = cached.create(b"x") else {
        return 5;
    };
    let _ = cached.get(own.as_bytes());
    let _ = cached.get(own.as_bytes());
    if other.update(own.as_bytes(), mine.as_bytes()).is_err() {
        return 6;
    }
    for _ in 0..200_000 {
        if cached.get(own.as_bytes()).ok().as_deref() == Some(mine.as_bytes()) {
            let _ = cached.destroy(own.as_bytes());
            return 0;
        }
        std::thread::sleep(Duration::from_micros(10));
    }
    7 // never saw the other client's write
}

#[test]
fn a_forked_child_has_its_own_empty_cache_and_channel() {
    let server = RedisServer::start(&[]);
    let cached = Arc::new(open(&server, r#", "local_cache": {}"#));
    let id = cached.create(b"parent").unwrap();
    while cached.store().cache_stats().unwrap().entries == 0 {
        cached.get(id.as_bytes()).unwrap();
    }
    // A stream of invalidations keeps the parent's listener busy with the lock.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = Arc::clone(&stop);
        let writer = open(&server, "");
        let busy = writer.create(b"0").unwrap();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                writer
                    .update(busy.as_bytes(), n.to_string().as_bytes())
                    .unwrap();
            }
            n
        })
    };
    let url = server.url();
    for round in 0..20 {
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // A hang (a lock inherited held) fails the test instead of stalling it.
            unsafe { libc::alarm(20) };
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                child(&cached, &url, id.as_str())
            }))
            .unwrap_or(9);
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child of round {round} failed: status {status:#x} (exit code {})",
            libc::WEXITSTATUS(status)
        );
        // The parent's cache is untouched by its children.
        assert_eq!(cached.get(id.as_bytes()).unwrap(), b"parent");
    }
    stop.store(true, Ordering::Relaxed);
    let writes = churn.join().unwrap();
    assert!(writes > 0);
    let stats = cached.store().cache_stats().unwrap();
    assert!(stats.channel_up && stats.hits > 0, "{stats:?}");
}
