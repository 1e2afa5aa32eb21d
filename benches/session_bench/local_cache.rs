//! The Redis driver's local read cache (phase 10d, `BENCH_ONLY=local_cache`;
//! issue 11, item 4): `session_store_get` through the C ABI, with the cache off,
//! cold, warm at a 90% hit rate and warm at 100%, with 1 and 8 threads, beside
//! `redis-benchmark -t get -d 200 -P 1` with `-c 1` / `-c 8` on the same
//! redis-server in the same run.
//!
//! Stores (handles of their own, pool_size 16): `off` (no local_cache), `cold`
//! and `warm` (`"local_cache": {"max_entries": 1000000}`: nothing is evicted).
//! 10,000 sessions of 200 bytes are read through `warm` until it holds them all.
//! - off: a random one of those 10,000 through `off`;
//! - cold: through `cold`, sessions made for the round and never read before, each
//!   once: every get misses (HMGET+PTTL, then fills the cache);
//! - warm 90%: through `warm`, a random one of the 10,000 nine times in ten, else
//!   a session never read before (a miss); the hit rate achieved is printed, from
//!   `session_store_cache_stats`;
//! - warm 100%: a random one of the 10,000 through `warm`: every get hits.
//!
//! Per round (5; 3 quick), for 1 thread then 8: ours (the four modes) and
//! redis-benchmark one after the other, which goes first alternating between
//! rounds; medians over the rounds. In the 1-thread rounds the redis-server is
//! pinned to CPU 0 and the client (our thread or redis-benchmark) to CPU 1, as in
//! phase 10 (BENCH_REDIS_PIN=0: never); the cache's listener thread is not pinned.
//! Target: warm 1-thread get p50 at least 20x below redis-benchmark `-c 1` GET's.
//!
//! Then the invalidation delay, what a reader in another store sees: a session is
//! read through `warm` until cached, updated through `off`, and `warm` is read in a
//! tight loop until it returns the new data; the time from the update's return to
//! that get's return, 1,000 times (200 quick).

use crate::common::{json_data, last_error, progress, thousands, timed, Handle};
use crate::redis_driver::{
    prepopulate_keyspace, redis_benchmark_on, redis_server, rstat_median, threaded_round,
    Placement, RStat,
};
use crate::report::Report;
use crate::Params;
use session::ffi::{session_store_cache_stats, session_store_get, session_store_update};
use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

const THREADS: [usize; 2] = [1, 8];
const HOT: usize = 10_000;
const KEYSPACE: usize = 10_000;
const TARGET: f64 = 20.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Cold,
    Warm90,
    Warm100,
}

impl Mode {
    const ALL: [Mode; 4] = [Mode::Off, Mode::Cold, Mode::Warm90, Mode::Warm100];
    fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Cold => "cold",
            Mode::Warm90 => "warm 90%",
            Mode::Warm100 => "warm 100%",
        }
    }
}

fn config(url: &str, cache: bool) -> CString {
    let mut v = serde_json::json!({"sessions": {
        "driver": "redis", "url": url, "lifetime": 3600,
        "pool_size": 16, "command_timeout_ms": 1000
    }});
    if cache {
        v["sessions"]["local_cache"] = serde_json::json!({"max_entries": 1_000_000});
    }
    CString::new(v.to_string()).unwrap()
}

/// `session_store_cache_stats` of `h`, parsed.
fn cache_stats(h: &Handle) -> serde_json::Value {
    // SAFETY: open handle.
    let p = unsafe { session_store_cache_stats(h.raw()) };
    assert!(!p.is_null(), "session_store_cache_stats: {}", last_error());
    // SAFETY: a NUL-terminated malloc'd string, ours to free.
    let text = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { libc::free(p.cast()) };
    serde_json::from_str(&text).unwrap()
}

fn hits_misses(h: &Handle) -> (u64, u64) {
    let s = cache_stats(h);
    (s["hits"].as_u64().unwrap(), s["misses"].as_u64().unwrap())
}

/// One get through `h`, checked and freed; returns the data.
fn get(h: &Handle, id: &CStr) -> Vec<u8> {
    // SAFETY: open handle, NUL-terminated id.
    let out = unsafe { session_store_get(h.raw(), id.as_ptr()) };
    assert!(!out.is_null(), "session_store_get: {}", last_error());
    // SAFETY: malloc'd by libsession, ours to free.
    let data = unsafe { CStr::from_ptr(out) }.to_bytes().to_vec();
    unsafe { libc::free(out.cast()) };
    data
}

/// `n` new sessions through `h`, made by 8 threads.
fn fresh(h: &Handle, n: usize, seed: u64) -> Vec<CString> {
    let data = json_data(seed);
    let per = n.div_ceil(8);
    let (_, ids) = threaded_round(8, per, seed, None, |_, _, _, samples, created| {
        let start = Instant::now();
        created.push(h.create(&data));
        samples.push(start.elapsed().as_nanos() as u64);
    });
    ids
}

/// Phase 10d: see the top of the file.
pub fn phase(p: &Params, rep: &mut Report, start: Instant) {
    let (rounds, ops1, ops8, delays) = if p.quick {
        (3, 1_000, 300, 200)
    } else {
        (5, 5_000, 2_000, 1_000)
    };
    let ops = |threads: usize| if threads == 1 { ops1 } else { ops8 };
    progress(start, "local cache: starting a redis-server");
    let server = redis_server::RedisServer::start(&[]);
    prepopulate_keyspace(&server, KEYSPACE);
    let off = Handle::open(&config(&server.url(), false));
    let cold = Handle::open(&config(&server.url(), true));
    let warm = Handle::open(&config(&server.url(), true));
    let hot = fresh(&off, HOT, 0xcac4e);
    progress(start, "local cache: warming the cache");
    while cache_stats(&warm)["entries"].as_u64().unwrap() < HOT as u64 {
        for id in &hot {
            get(&warm, id);
        }
    }

    let placement = Placement::new(&server);
    let pinning = placement.pinning();
    let place = |threads: usize| placement.place(threads);

    // [threads][mode] per round; hit rate of warm 90% per threads; rb per threads.
    let mut ours = vec![vec![Vec::<RStat>::new(); Mode::ALL.len()]; THREADS.len()];
    let mut theirs = vec![Vec::<RStat>::new(); THREADS.len()];
    let mut hit_rates = vec![Vec::<f64>::new(); THREADS.len()];
    let mut seed = 0x10ca1_u64;
    for r in 0..rounds {
        progress(
            start,
            &format!(
                "local cache: round {}/{rounds}, making fresh sessions",
                r + 1
            ),
        );
        // Never read by `cold` or `warm`: one per cold get, one per 10 warm gets.
        let mut unread = Vec::new();
        for threads in THREADS {
            unread.push(fresh(&off, threads * ops(threads) * 11 / 10, seed));
            seed += 1;
        }
        for (ti, threads) in THREADS.into_iter().enumerate() {
            let n = ops(threads);
            let cpu = place(threads);
            let (cold_ids, miss_ids) = unread[ti].split_at(threads * n);
            for side in 0..2 {
                if (side + r) % 2 == 1 {
                    let rb =
                        redis_benchmark_on(server.port, false, threads, threads * n, KEYSPACE, cpu);
                    theirs[ti].push(rb[1]);
                    continue;
                }
                for (mi, mode) in Mode::ALL.into_iter().enumerate() {
                    let before = hits_misses(&warm);
                    let (stat, _) =
                        threaded_round(threads, n, seed, cpu, |t, i, rng, samples, _| {
                            let (h, id) = match mode {
                                Mode::Off => (&off, &hot[rng.below(HOT)]),
                                Mode::Cold => (&cold, &cold_ids[t * n + i]),
                                Mode::Warm90 if i % 10 == 9 => (&warm, &miss_ids[(t * n + i) / 10]),
                                Mode::Warm90 | Mode::Warm100 => (&warm, &hot[rng.below(HOT)]),
                            };
                            let store = h.raw();
                            let id = id.as_ptr();
                            let mut out = std::ptr::null_mut();
                            // SAFETY: open handle, NUL-terminated id.
                            samples.push(timed(|| out = unsafe { session_store_get(store, id) }));
                            assert!(!out.is_null(), "session_store_get: {}", last_error());
                            // SAFETY: malloc'd by libsession, ours to free.
                            unsafe { libc::free(out.cast()) };
                        });
                    seed += 1;
                    ours[ti][mi].push(stat);
                    if mode == Mode::Warm90 {
                        let after = hits_misses(&warm);
                        let (hits, misses) = (after.0 - before.0, after.1 - before.1);
                        hit_rates[ti].push(hits as f64 / (hits + misses).max(1) as f64);
                    }
                }
            }
        }
    }
    place(8);

    progress(start, "local cache: invalidation delay");
    let id = &hot[0];
    let mut seen = Vec::with_capacity(delays);
    let mut dropped = Vec::with_capacity(delays);
    for n in 0..delays {
        // Cached: a get that hits.
        loop {
            let hits = hits_misses(&warm).0;
            get(&warm, id);
            if hits_misses(&warm).0 > hits {
                break;
            }
        }
        let data = CString::new(format!("{{\"n\":{n}}}")).unwrap();
        let invalidations = cache_stats(&warm)["invalidations"].as_u64().unwrap();
        // SAFETY: open handle, NUL-terminated strings.
        assert_eq!(
            unsafe { session_store_update(off.raw(), id.as_ptr(), data.as_ptr()) },
            1
        );
        let returned = Instant::now();
        let deadline = returned + Duration::from_secs(5);
        while cache_stats(&warm)["invalidations"].as_u64().unwrap() == invalidations {
            assert!(Instant::now() < deadline, "no invalidation in 5 s");
        }
        dropped.push(returned.elapsed().as_nanos() as f64);
        while get(&warm, id) != data.as_bytes() {
            assert!(Instant::now() < deadline, "the update was not seen in 5 s");
        }
        seen.push(returned.elapsed().as_nanos() as f64);
    }
    /// p50, p90, p99 and max, in us.
    fn spread(mut v: Vec<f64>) -> String {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let pct = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)] / 1e3;
        format!(
            "p50 {:.1} us, p90 {:.1} us, p99 {:.1} us, max {:.1} us",
            pct(0.5),
            pct(0.9),
            pct(0.99),
            pct(1.0)
        )
    }

    let us = |ns: f64| format!("{:.2}", ns / 1e3);
    let mut lines = vec![
        format!(
            "{rounds} rounds, ours and redis-benchmark alternating which goes first; {ops1} gets per mode with 1 thread, 8 x {ops8} with 8; medians over the rounds"
        ),
        format!(
            "{HOT} sessions of 200 bytes cached; floor: redis-benchmark -t get -d 200 -P 1 -r {KEYSPACE} -c 1|8, -n = our calls"
        ),
        if pinning {
            "1 thread/client: redis-server pinned to CPU 0, the client (ours or redis-benchmark) to CPU 1; 8: unpinned".to_string()
        } else {
            "nothing pinned (BENCH_REDIS_PIN=0, one CPU, or sched_setaffinity failed)".to_string()
        },
        "speedup: redis-benchmark's latency / ours (p50, mean); ours ops/s / its ops/s".to_string(),
        String::new(),
        format!(
            "{:<9} {:<3} {:>10} {:>8} {:>8} {:>8} {:>5} | {:>8} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7}",
            "cache", "thr", "ops/s", "avg us", "p50 us", "p99 us", "hits", "GET/s", "avg us", "p50 us", "p99 us", "p50", "avg", "ops/s"
        ),
        "-".repeat(118),
    ];
    let mut warm1 = None;
    for (ti, threads) in THREADS.into_iter().enumerate() {
        let f = rstat_median(&theirs[ti]);
        for (mi, mode) in Mode::ALL.into_iter().enumerate() {
            let o = rstat_median(&ours[ti][mi]);
            let hits = match mode {
                Mode::Off | Mode::Cold => "0%".to_string(),
                Mode::Warm100 => "100%".to_string(),
                Mode::Warm90 => format!(
                    "{:.0}%",
                    100.0 * crate::common::median_of(hit_rates[ti].iter().copied())
                ),
            };
            if mode == Mode::Warm100 && threads == 1 {
                warm1 = Some((o, f));
            }
            lines.push(format!(
                "{:<9} {:<3} {:>10} {:>8} {:>8} {:>8} {:>5} | {:>8} {:>7} {:>7} {:>7} | {:>6.1}x {:>6.1}x {:>6.2}x",
                mode.name(),
                threads,
                thousands(o.ops_s),
                us(o.avg_ns),
                us(o.p50_ns),
                us(o.p99_ns),
                hits,
                thousands(f.ops_s),
                us(f.avg_ns),
                us(f.p50_ns),
                us(f.p99_ns),
                f.p50_ns / o.p50_ns,
                f.avg_ns / o.avg_ns,
                o.ops_s / f.ops_s,
            ));
        }
    }
    lines.push(String::new());
    lines.push(format!(
        "invalidation delay, {delays} updates through another store: from the update's return until the cache dropped the session: {}",
        spread(dropped)
    ));
    lines.push(format!(
        "  ... until a get through the cache returned the new data (the drop, then a get that misses): {}",
        spread(seen)
    ));
    if let Some((o, f)) = warm1 {
        let speedup = f.p50_ns / o.p50_ns;
        let verdict = rep.verdict(
            format!("local cache: warm 1-thread get p50 >= {TARGET}x faster than redis-benchmark -c 1 GET ({speedup:.1}x)"),
            speedup >= TARGET,
        );
        lines.push(format!(
            "target: warm 1-thread get p50 {} us vs redis-benchmark -c 1 GET p50 {} us: {speedup:.1}x (>= {TARGET}x) {verdict}",
            us(o.p50_ns),
            us(f.p50_ns),
        ));
    }
    rep.local_cache = lines;
}
