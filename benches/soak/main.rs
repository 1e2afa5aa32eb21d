//! Soak: load held on every driver (issue 9, item 6). Bounded, a few minutes, not
//! part of CI.
//!
//! Run:   cargo bench --bench soak
//! Env:   SOAK_SECS=<n>        seconds of load per driver (default 75: about 4
//!                             minutes for the three drivers)
//!        SOAK_DRIVERS=<list>  comma-separated, from file,memory,redis (default all
//!                             three; redis needs `redis-server` in PATH, which
//!                             `bash tests/run_all.sh` installs)
//!
//! Per driver, this process opens the store through the Rust API (`Sessions`), on a
//! fresh temporary directory (file) or a `redis-server` of its own on a free loopback
//! port (redis), creates the shared counter sessions, and starts a second process of
//! itself (`SOAK_ROLE=child`, with the driver's config and the shared ids) on the same
//! store: 2 processes x 8 threads. The memory store is per process, so there each
//! process soaks its own store and makes and checks its own counters.
//!
//! Each thread runs a random mix of create, get, update, set_value, get_value,
//! delete_value, pop_value, update_if (after get_versioned), touch, regenerate,
//! destroy, and rarely remove_expired and count, on the sessions it created (at most
//! 200; past that it destroys its oldest), and checks every read against the last
//! write the store acknowledged. A tracked session that is NOT_FOUND (or a count
//! below the thread's own live sessions) is a LOST session; a read that differs from
//! the last acknowledged write is a LOST update; a destroyed or regenerated-away id
//! that still exists is an error. Lifetimes (2 h, idle 1 h) are far beyond the run:
//! nothing expires. All 16 threads also increment a few shared counter sessions by
//! compare-and-set (get_versioned + update_if, retried on CONFLICT); at the end each
//! counter must equal the increments both processes report.
//!
//! Reported per driver and process: operations of the mix and ops/s (update_if
//! counts with its get_versioned; cas_increment is one increment, its retries are
//! the CONFLICTs counted apart), unexpected errors by code with the first messages,
//! lost sessions and updates, and RSS.
//!
//! Memory: VmRSS of each process after a warm-up (the first 10% of the run) and at
//! the end; growth beyond RSS_BOUND fails. For redis the server's used_memory is
//! shown too.
//!
//! Exit status: 0 when every driver passes in both processes; 1 when anything was
//! lost, an unexpected error happened (CONFLICT on a shared counter is expected and
//! counted apart), or memory grew beyond the bound.
//!
//! Files: `main.rs` (this: drivers, processes, report), `worker.rs` (one thread's mix
//! and checks).

mod worker;

#[path = "../../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../../tests/support/temp.rs"]
mod temp;

use session::{Config, SessionId, Sessions};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use worker::{counter, counter_data, Stats, Thread, MIX};

const THREADS: usize = 8;
const SHARED: usize = 3;
const DEFAULT_SECS: u64 = 75;
/// Allowed RSS growth of a process from the warm-up sample to the end. The live
/// state is bounded (16 x 200 sessions of ~200 bytes: under 1 MiB of data, a few MiB
/// with the stores' maps and the allocator's per-thread arenas once warm), so the
/// growth of a healthy run is a few MiB at most; a leak of a few dozen bytes per
/// operation over a run of a million operations crosses 32 MiB.
const RSS_BOUND: u64 = 32 << 20;

fn main() {
    if std::env::var("SOAK_ROLE").as_deref() == Ok("child") {
        std::process::exit(child());
    }
    let secs: u64 = env_or("SOAK_SECS", &DEFAULT_SECS.to_string())
        .parse()
        .expect("SOAK_SECS must be a whole number of seconds");
    let drivers = env_or("SOAK_DRIVERS", "file,memory,redis");
    println!(
        "soak: {THREADS} threads x 2 processes per driver, {secs} s per driver, RSS growth bound {} MiB",
        RSS_BOUND >> 20
    );
    let mut verdicts = Vec::new();
    for driver in drivers.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let ok = run_driver(driver, secs);
        verdicts.push(format!("{driver} {}", if ok { "PASS" } else { "FAIL" }));
    }
    let ok = verdicts.iter().all(|v| v.ends_with("PASS"));
    println!(
        "\nsoak verdict: {} ({})",
        if ok { "PASS" } else { "FAIL" },
        verdicts.join(", ")
    );
    std::process::exit(if ok { 0 } else { 1 });
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn open(config: &str) -> Sessions {
    let config = Config::from_json(config.as_bytes()).expect("soak config");
    Sessions::open(&config).unwrap_or_else(|e| panic!("cannot open the store: {e}"))
}

/// The shared counter sessions, made by the process that checks them.
fn make_counters(s: &Sessions) -> Vec<SessionId> {
    (0..SHARED)
        .map(|_| s.create(&counter_data(0)).expect("create a counter"))
        .collect()
}

/// One driver: the store, the child process, this process's soak, the checks.
fn run_driver(driver: &str, secs: u64) -> bool {
    println!("\n=== {driver} driver ===");
    let mut dir = None;
    let mut server = None;
    let mut sessions = serde_json::json!({"lifetime": 7200, "idle_timeout": 3600});
    let mut root = serde_json::json!({});
    match driver {
        "file" => {
            let d = temp::TempDir::new("soak");
            sessions["driver"] = "storage".into();
            sessions["storage_name"] = "soak".into();
            root["storages"] =
                serde_json::json!({"soak": {"type": "filesystem", "root": d.path()}});
            dir = Some(d);
        }
        "memory" => sessions["driver"] = "memory".into(),
        "redis" => {
            let r = redis_server::RedisServer::start(&[]);
            sessions["driver"] = "redis".into();
            sessions["url"] = r.url().into();
            // Generous: the machine is shared, and a timeout fails the soak.
            sessions["pool_size"] = THREADS.into();
            sessions["command_timeout_ms"] = 5000.into();
            server = Some(r);
        }
        other => {
            println!("unknown driver {other:?} (file, memory, redis)");
            return false;
        }
    }
    root["sessions"] = sessions;
    let config = root.to_string();
    if let Some(d) = &dir {
        println!("session directory {}", d.path().display());
    }
    let store = open(&config);
    let shared = (driver != "memory").then(|| make_counters(&store));
    let used_memory = |r: &redis_server::RedisServer| {
        let info: String = r.query(0, &[b"INFO", b"memory"]);
        let line = info.lines().find_map(|l| l.strip_prefix("used_memory:"));
        line.and_then(|n| n.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    let redis_before = server.as_ref().map(used_memory);

    let ids = shared
        .iter()
        .flatten()
        .map(SessionId::as_str)
        .collect::<Vec<_>>()
        .join(",");
    let exe = std::env::current_exe().expect("the soak binary's path");
    let child = Command::new(exe)
        .env("SOAK_ROLE", "child")
        .env("SOAK_DRIVER", driver)
        .env("SOAK_CONFIG", &config)
        .env("SOAK_SHARED", ids)
        .env("SOAK_SECS", secs.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start the second soak process");

    let (mut ok, stats) = soak(driver, 0, &store, shared.as_deref(), secs);
    let out = child.wait_with_output().expect("second soak process");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut child_increments = vec![0u64; SHARED];
    for line in text.lines() {
        match line.strip_prefix("RESULT increments=") {
            Some(v) => {
                child_increments = v.split(',').map(|n| n.parse().unwrap_or(0)).collect();
            }
            None => println!("{line}"),
        }
    }
    if !out.status.success() {
        println!("[{driver} p1] {}", out.status);
        ok = false;
    }
    if let Some(shared) = &shared {
        ok &= check_counters(
            &format!("[{driver}]"),
            &store,
            shared,
            &stats.increments,
            &child_increments,
        );
    }
    if let (Some(r), Some(before)) = (&server, redis_before) {
        let after = used_memory(r);
        println!(
            "[{driver}] redis-server used_memory {} -> {} (16 x {} tracked sessions at most)",
            mib(before),
            mib(after),
            worker::MAX_TRACKED
        );
    }
    println!("[{driver}] verdict: {}", if ok { "PASS" } else { "FAIL" });
    ok
}

/// Each shared counter against the increments both processes made.
fn check_counters(
    label: &str,
    s: &Sessions,
    ids: &[SessionId],
    mine: &[u64],
    theirs: &[u64],
) -> bool {
    let mut ok = true;
    let mut parts = Vec::new();
    for (c, id) in ids.iter().enumerate() {
        let (a, b) = (
            mine.get(c).copied().unwrap_or(0),
            theirs.get(c).copied().unwrap_or(0),
        );
        let value = s.get(id.as_bytes()).map(|d| counter(&d));
        let good = value.as_ref().is_ok_and(|&v| v == a + b);
        ok &= good;
        let value = value.map_or_else(|e| format!("error {:?}", e.code), |v| v.to_string());
        parts.push(format!(
            "{a}+{b}={} read {value}{}",
            a + b,
            if good { "" } else { " LOST UPDATE" }
        ));
    }
    println!(
        "{label} shared counters ({} sessions; increments here + in the other process, vs the value read): {}: {}",
        ids.len(),
        parts.join("; "),
        if ok { "OK" } else { "FAIL" }
    );
    ok
}

/// The second process: the same soak on the store of `SOAK_CONFIG`; prints its
/// report and a RESULT line with its increments of the shared counters.
fn child() -> i32 {
    let var = |n: &str| std::env::var(n).unwrap_or_else(|_| panic!("{n} not set"));
    let driver = var("SOAK_DRIVER");
    let secs: u64 = var("SOAK_SECS").parse().expect("SOAK_SECS");
    let store = open(&var("SOAK_CONFIG"));
    let ids = var("SOAK_SHARED");
    let shared: Option<Vec<SessionId>> = (!ids.is_empty()).then(|| {
        ids.split(',')
            .map(|id| SessionId::parse(id.as_bytes()).expect("shared id"))
            .collect()
    });
    let (ok, stats) = soak(&driver, 1, &store, shared.as_deref(), secs);
    let inc: Vec<String> = stats.increments.iter().map(u64::to_string).collect();
    println!("RESULT increments={}", inc.join(","));
    if ok {
        0
    } else {
        1
    }
}

/// One process's soak: THREADS threads for `secs`, RSS sampled after the warm-up
/// and at the end, then its report. Without `shared` ids (memory driver) it makes
/// its own counters and checks them itself. Returns (passed, merged stats).
fn soak(
    driver: &str,
    proc_no: usize,
    s: &Sessions,
    shared: Option<&[SessionId]>,
    secs: u64,
) -> (bool, Stats) {
    let own = shared.is_none().then(|| make_counters(s));
    let counters = shared.or(own.as_deref()).unwrap();
    let start = Instant::now();
    let warm_up = start + Duration::from_secs(secs) / 10;
    let deadline = start + Duration::from_secs(secs);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let seed = now.map_or(0, |d| d.as_nanos() as u64) ^ u64::from(std::process::id());
    let mut stats = Stats::default();
    let mut rss_warm = 0;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let thread = Thread {
                    sessions: s,
                    shared: counters,
                    warm_up,
                    deadline,
                    tag: format!("p{proc_no}t{t}"),
                    seed: seed
                        ^ ((proc_no * THREADS + t + 1) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                };
                scope.spawn(move || thread.run())
            })
            .collect();
        std::thread::sleep(warm_up.saturating_duration_since(Instant::now()));
        rss_warm = rss();
        for h in handles {
            stats.merge(h.join().expect("a soak thread panicked"));
        }
    });
    let elapsed = start.elapsed().as_secs_f64();
    let rss_end = rss();

    let p = format!("[{driver} p{proc_no}]");
    macro_rules! say {
        ($($arg:tt)*) => { println!("{p} {}", format!($($arg)*)) };
    }
    let total = stats.total();
    let rate = (total as f64 / elapsed) as u64;
    say!(
        "{} ops in {elapsed:.1} s = {} ops/s ({THREADS} threads)",
        thousands(total),
        thousands(rate)
    );
    let per: Vec<String> = MIX
        .iter()
        .zip(stats.ops)
        .map(|((_, n, _), c)| format!("{n} {}", thousands(c)))
        .collect();
    say!("  per op: {}", per.join(", "));
    let increments = thousands(stats.increments.iter().sum());
    let conflicts = thousands(stats.conflicts);
    say!("  expected: {conflicts} CAS conflicts (retried) in {increments} shared increments; remove_expired deleted {}", stats.expired_removed);
    let errors: Vec<String> = stats
        .errors
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    say!(
        "  unexpected errors: {}",
        if errors.is_empty() {
            "0".to_string()
        } else {
            errors.join(", ")
        }
    );
    say!(
        "  lost sessions: {}, lost updates: {}",
        stats.lost_sessions,
        stats.lost_updates
    );
    if !stats.messages.is_empty() {
        say!("  first unexpected errors and losses:");
    }
    for m in &stats.messages {
        say!("    {m}");
    }
    let growth = rss_end as i64 - rss_warm as i64;
    let after_warm = total.saturating_sub(stats.ops_warm).max(1);
    let sign = if growth < 0 { "-" } else { "+" };
    say!(
        "  RSS: {} after warm-up ({:.1} s), {} at the end: growth {sign}{} (bound {}; {:.1} bytes/op over {} ops)",
        mib(rss_warm),
        (warm_up - start).as_secs_f64(),
        mib(rss_end),
        mib(growth.unsigned_abs()),
        mib(RSS_BOUND),
        growth as f64 / after_warm as f64,
        thousands(after_warm)
    );
    let mut ok = true;
    if let Some(ids) = &own {
        ok = check_counters(&p, s, ids, &stats.increments, &[]);
    }
    let mut why = Vec::new();
    if stats.lost_sessions + stats.lost_updates > 0 {
        why.push("lost sessions or updates");
    }
    if stats.unexpected() > 0 {
        why.push("unexpected errors");
    }
    if growth > RSS_BOUND as i64 {
        why.push("memory grew beyond the bound");
    }
    if !ok {
        why.push("shared counters");
    }
    ok &= why.is_empty();
    say!(
        "  verdict: {}",
        if ok {
            "PASS".to_string()
        } else {
            format!("FAIL: {}", why.join(", "))
        }
    );
    (ok, stats)
}

/// VmRSS of this process, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"));
    kb.and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
