//! libsession benchmark through the C ABI, judged against floors of bare syscalls
//! measured in the same run, in the same directory, on files of the same size.
//!
//! Run:   cargo bench --bench session_bench
//! Env:   BENCH_DIR=<dir>  parent of the run directory (default: std::env::temp_dir());
//!                         the bench works in a fresh `session_bench.<pid>` inside it and
//!                         removes only that at the end.
//!        BENCH_QUICK=1    smoke run (small stores, few ops, a short churn).
//!        BENCH_CHURN_SECS=<s>  how long the actor runs under churn (phase 9; default
//!                         10, quick 2), e.g. longer to attach a profiler.
//!        BENCH_ONLY=<list> run only these phases, comma-separated: `churn` (9),
//!                         `encryption` (9b), `owner` (9c, and 10b unless BENCH_REDIS=0;
//!                         BENCH_REDIS=only: just 10b), `topologies` (10c: single
//!                         Redis, Sentinel and Cluster side by side, ~75 s),
//!                         `local_cache` (10d: the Redis driver's local read cache,
//!                         off, cold and warm, beside redis-benchmark GET).
//!        BENCH_REDIS=0    skip the Redis phase (10); BENCH_REDIS=only runs just that phase.
//!                         The Redis phases need `redis-server`, `redis-benchmark` and
//!                         `redis-cli` in PATH (`bash tests/run_all.sh` installs them);
//!                         without them the bench says so and exits with status 2
//!                         before measuring anything.
//!
//! Files: `main.rs` (this: parameters, phase order), `common.rs` (data, the C API
//! helpers, a `session_store_t` wrapper), `floor.rs` (the bare system calls),
//! `stats.rs`, `report.rs` (tables, targets), and one file per driver: `memory.rs`,
//! `file.rs`, `churn.rs` (the file driver under multi-process churn), `redis_driver.rs`,
//! `topologies.rs` (single Redis, Sentinel and Cluster), and `contents.rs`
//! (encryption at rest and the owner index, on every driver).
//!
//! Every operation goes through the exported `extern "C"` functions of
//! `session::ffi` with `*const c_char` arguments, as a C server calls them: the
//! global functions (`session_get`, ...) on a store configured with
//! `session_init_json`, or their `session_store_*` twins on a handle from
//! `session_store_open_json` where a section needs a store of its own (idle get,
//! remove_expired with 10% expired, churn, Redis count). Both run the same code below
//! the C boundary. The time of one call is measured alone; freeing the returned
//! malloc'd string is not timed.
//!
//! # Method
//! Each operation runs `ROUNDS` rounds of `OPS` calls. Our call and its floors are
//! interleaved call by call (the order rotates every iteration), so drift and noise
//! from the shared machine hit ours and the floor alike. Reported: the median over
//! the rounds of the mean ns/op, ops/s from that median, and the p99 of the per-call
//! latencies of all rounds. Ratio = our ns/op / floor ns/op. Operations over a
//! whole store (count, remove_expired) are single calls, alternated with their floor.
//!
//! # Phase order (ext4 quirk)
//! On ext4 without a journal, every create scans past the inodes of its block group
//! that were freed recently (less than 60 s ago, 360 s while their inode table block
//! is still dirty: `recently_deleted()` in fs/ext4/ialloc.c), so creates become 10-50x
//! slower after mass deletes in that group (PERFORMANCE.md, note 2). Hence:
//!   0. the run directory gets FS_TOPDIR_FL and each store a fresh, probed directory
//!      (`set_topdir`, `fresh_root`), against deletes by others (test suites in /tmp,
//!      a previous run's cleanup); and no create that is measured (or populates a
//!      store) runs after a delete of this run:
//!   1. memory driver: create, get, update with set_value and update_if interleaved
//!      (shown beside that update), regenerate (beside a std HashMap remove + insert),
//!      destroy at 1,000 and 100,000; count and remove_expired at 100,000;
//!   2. file driver, 1,000 stored: populate; get; update (vs in-place floor);
//!      set_value (one member of the 200-byte JSON object) and update_if (version
//!      from an untimed get_versioned), interleaved with our update and the in-place
//!      floor, judged against that update; regenerate (vs its syscalls: open +
//!      flock + pread header + pwrite descriptor + futimens + renameat2 + close; a
//!      rename frees no inode); create;
//!   3. file driver, 100,000 stored: populate; remove_expired with nothing expired and
//!      count, each vs readdir + fstatat of every entry; get; update; regenerate; create;
//!   4. file driver with idle_timeout 3600, 1,000 and 100,000 stored: get vs the same
//!      open+read+close floor as the plain get (no get writes: less than 1% of the idle
//!      timeout passes); then, for information, a get that refreshes every time
//!      (idle_timeout 100 s, each session read once, 1.1 s after its create);
//!   5. the stores of the expiring GCs: 100,000 sessions of lifetime 1 s; 100,000 with
//!      every 10th made by session_create_ttl(.., 1), and two floor directories of as
//!      many files, as large, every 10th with an mtime in the past;
//!
//!   From here on files are deleted:
//!
//!   6. update floor by temp file + rename over the old file (frees an inode per call;
//!      a design that updates this way lives permanently in this delete/create churn,
//!      so measuring it here is its realistic cost); destroy vs unlink; 100k then 1k;
//!   7. remove_expired with 10% expired, one call (> 3 s after the ttl-1 creates, so
//!      each expired file is past the driver's 2 s margin and goes on its fstatat alone),
//!      between the floors of the two floor directories: readdir + fstatat per entry +
//!      unlink per expired file; it must return exactly 10,000;
//!   8. remove_expired with everything expired (> 3 s ago too);
//!   9. cleanup under churn on tmpfs (see churn.rs): 2 processes x 8 threads create and
//!      destroy sessions in one directory while this process calls remove_expired, a
//!      plain readdir and readdir + fstatat in turn for ~10 s;
//!      9b: encryption at rest (see contents.rs), file stores on tmpfs and memory
//!      stores with a `secret` against their twins without, get and update
//!      interleaved; 9c: owner index, destroy_owner of 100 sessions among 100,000
//!      and among 1,000 sessions of other owners, and 100 x destroy, file (tmpfs)
//!      and memory drivers;
//!  10. Redis driver against `redis-benchmark` and bare SCAN round trips (see
//!      redis_driver.rs); with 1 thread also set_value and update_if; 10b: the
//!      owner index on Redis, as 9c, on a redis-server of its own;
//!      10c: the Redis topologies (see topologies.rs), all started by the bench on
//!      free loopback ports: one redis-server; Sentinel (1 primary, 1 replica, 3
//!      sentinels; tests/support/redis_sentinel.rs); Cluster (3 primaries, 3
//!      replicas, `redis-cli --cluster create`; tests/support/redis_cluster.rs).
//!      On each, create, get and set_value through `session_store_*` with 1 and 8
//!      threads (ops/s, mean, p50, p99) beside `redis-benchmark -t set,get` with
//!      `-c 1` and `-c 8` on the same servers (`-p` the primary; on the cluster
//!      `--cluster`), 3 rounds (2 quick) of interleaved, alternating measurements
//!      of about a second each; prints the ratios and each topology's ops/s
//!      against the single node's; ~75 s with the start of the servers (quick:
//!      ~20 s); no targets, for information;
//!      10d: the Redis driver's local read cache (see local_cache.rs): get with
//!      the cache off, cold, warm at 90% and 100% hits, 1 and 8 threads, beside
//!      `redis-benchmark -t get`; then the invalidation delay; target: a warm
//!      1-thread get 20x faster (p50) than redis-benchmark `-c 1` GET;
//!  11. cleanup (unlinks everything left; at the very end).
//!
//! If every candidate directory is slow, the notes say so (WARNING): absolute create
//! times are then inflated, the ratios to the interleaved floors remain fair. A store
//! of 100,000 files fills ~13 block groups, and the creates that follow go on into
//! neighbouring groups, which a previous run's GC and cleanup (500,000 unlinks) or
//! other processes may have poisoned: the populate lines (µs/create per tenth) show
//! it, and it makes "create at 100k / at 1k" compare filesystem states rather than
//! the library (the line prints how much the floors moved too). For clean absolute
//! numbers on ext4 leave ~6 minutes between runs.
//!
//! "stored" is the number of sessions in the store when the operation's rounds
//! start. Get, update and regenerate run before create so that the directory holds
//! just the stored sessions plus the floor's own files; the create rounds then add
//! ROUNDS*OPS sessions and 2*ROUNDS*OPS floor files, which destroy/unlink remove.

mod churn;
mod common;
mod contents;
mod file;
mod floor;
mod local_cache;
mod memory;
mod redis_driver;
mod report;
mod stats;
mod topologies;

use common::{fs_name, fs_type, progress, Rng};
use redis_driver::RedisMode;
use report::Report;
use session::ffi::session_shutdown;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Params {
    pub quick: bool,
    pub small: usize,
    pub large: usize,
    pub rounds: usize,
    pub ops: usize,
    pub scan_rounds: usize,
    /// Live sessions in the churn directory besides the churning ones.
    pub churn_base: usize,
    /// Churn alone, before the actor starts.
    pub churn_baseline: Duration,
    /// The actor's time under churn.
    pub churn_secs: Duration,
    /// Sessions of other owners in the large and the small store of destroy_owner.
    pub owner_large: usize,
    pub owner_small: usize,
    /// Rounds, and calls of each kind per round, of destroy_owner.
    pub owner_rounds: usize,
    pub owner_ops: usize,
}

impl Params {
    fn from_env() -> Params {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut p = Params::defaults(quick);
        if let Some(s) = std::env::var("BENCH_CHURN_SECS")
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|s| *s > 0.0)
        {
            p.churn_secs = Duration::from_secs_f64(s);
        }
        p
    }

    fn defaults(quick: bool) -> Params {
        if quick {
            Params {
                quick,
                small: 200,
                large: 5_000,
                rounds: 3,
                ops: 300,
                scan_rounds: 2,
                churn_base: 1_000,
                churn_baseline: Duration::from_secs(1),
                churn_secs: Duration::from_secs(2),
                owner_large: 10_000,
                owner_small: 1_000,
                owner_rounds: 3,
                owner_ops: 4,
            }
        } else {
            Params {
                quick,
                small: 1_000,
                large: 100_000,
                rounds: 5,
                ops: 2_000,
                scan_rounds: 3,
                churn_base: 10_000,
                churn_baseline: Duration::from_secs(3),
                churn_secs: Duration::from_secs(10),
                owner_large: 100_000,
                owner_small: 1_000,
                owner_rounds: 5,
                owner_ops: 20,
            }
        }
    }
}

fn header(run_dir: &Path, p: &Params) {
    // SAFETY: plain libc calls with buffers of the right size.
    let (date, kernel) = unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&t, &mut tm);
        let mut buf = [0u8; 64];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%Y-%m-%d %H:%M:%S UTC".as_ptr(),
            &tm,
        );
        let date = String::from_utf8_lossy(&buf[..n]).into_owned();
        let mut u: libc::utsname = std::mem::zeroed();
        libc::uname(&mut u);
        let kernel = format!(
            "{} {} {}",
            CStr::from_ptr(u.sysname.as_ptr()).to_string_lossy(),
            CStr::from_ptr(u.release.as_ptr()).to_string_lossy(),
            CStr::from_ptr(u.machine.as_ptr()).to_string_lossy()
        );
        (date, kernel)
    };
    let fs = fs_type(run_dir).map_or("unknown".to_string(), |t| {
        format!("{} (f_type 0x{t:X})", fs_name(t))
    });
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!("libsession bench  {date}  {kernel}  {cpus} CPUs");
    println!("bench dir {}  fs {fs}", run_dir.display());
    println!(
        "{}{} rounds x {} ops per operation (median of round means; p99 over all calls); stores of {} and {}",
        if p.quick { "QUICK SMOKE RUN: " } else { "" },
        p.rounds,
        p.ops,
        p.small,
        p.large
    );
}

struct Cleanup(PathBuf, Option<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        session_shutdown();
        let t = Instant::now();
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            eprintln!("cleanup of {}: {err}", self.0.display());
        }
        if let Some(base) = &self.1 {
            let _ = std::fs::remove_dir(base); // only if we created it and it is empty
        }
        eprintln!(
            "cleanup: removed {} in {:.1} s",
            self.0.display(),
            t.elapsed().as_secs_f64()
        );
    }
}

fn main() {
    // A churn worker (phase 9) is this binary started again: nothing else runs there.
    if let Ok(config) = std::env::var(churn::CHILD_ENV) {
        churn::child_main(config);
    }
    let start = Instant::now();
    let p = Params::from_env();
    let redis_mode = RedisMode::from_env();
    let only = only_from_env();
    if redis_mode != RedisMode::Off {
        redis_driver::require_redis_tools();
    }
    // cargo bench passes "--bench"; nothing else to parse.
    let (base, created_base) = match std::env::var_os("BENCH_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            let existed = d.exists();
            std::fs::create_dir_all(&d).expect("BENCH_DIR");
            (d.clone(), (!existed).then_some(d))
        }
        _ => (std::env::temp_dir(), None),
    };
    let run_dir = base.join(format!("session_bench.{}", std::process::id()));
    std::fs::create_dir(&run_dir).expect("cannot create the run directory");
    let run_dir = run_dir.canonicalize().unwrap();
    let topdir = file::set_topdir(&run_dir);
    let _cleanup = Cleanup(run_dir.clone(), created_base);
    header(&run_dir, &p);
    if topdir {
        println!("(run dir marked FS_TOPDIR_FL, chattr +T: its store directories are spread over ext4 block groups; see fresh_root)");
    }

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let mut rep = Report::default();

    // BENCH_ONLY=churn,encryption,owner,topologies: just those phases.
    if let Some(only) = &only {
        if only.iter().any(|o| o == "churn") {
            churn::phase(&p, &run_dir, &mut rep, start);
        }
        if only.iter().any(|o| o == "encryption") {
            contents::encryption(&p, &run_dir, &mut rep, start);
        }
        if only.iter().any(|o| o == "owner") {
            if redis_mode != RedisMode::Only {
                contents::owner_local(&p, &run_dir, &mut rep, start);
            }
            if redis_mode != RedisMode::Off {
                contents::owner_redis(&p, &mut rep, start);
            }
        }
        if only.iter().any(|o| o == "topologies") {
            redis_driver::require_redis_tools();
            topologies::phase(&p, &mut rep, start);
        }
        if only.iter().any(|o| o == "local_cache") {
            redis_driver::require_redis_tools();
            local_cache::phase(&p, &mut rep, start);
        }
        report::print_report(&p, &rep);
        return;
    }

    // 1.-9. memory and file drivers
    let dirs = (redis_mode != RedisMode::Only)
        .then(|| local_phases(&p, &run_dir, &mut rng, &mut rep, start));

    // 10. Redis driver; 10b. its owner index; 10c. Redis topologies
    if redis_mode != RedisMode::Off {
        redis_driver::redis_phase(&p, &mut rep, start);
        contents::owner_redis(&p, &mut rep, start);
        topologies::phase(&p, &mut rep, start);
        local_cache::phase(&p, &mut rep, start);
    }

    report::print_report(&p, &rep);
    progress(start, "done; cleaning up");
    drop(dirs);
}

/// The phases of `BENCH_ONLY` (comma-separated), if set; exits on an unknown one.
fn only_from_env() -> Option<Vec<String>> {
    let only = std::env::var("BENCH_ONLY").ok().filter(|v| !v.is_empty())?;
    let only: Vec<String> = only.split(',').map(|o| o.trim().to_string()).collect();
    if let Some(bad) = only.iter().find(|o| {
        !["churn", "encryption", "owner", "topologies", "local_cache"].contains(&o.as_str())
    }) {
        eprintln!(
            "session_bench: unknown BENCH_ONLY phase {bad:?} (churn, encryption, owner, topologies, local_cache)"
        );
        std::process::exit(2);
    }
    Some(only)
}

/// Phases 1-9 (see the top of the file); returns what must live until the cleanup.
fn local_phases(
    p: &Params,
    run_dir: &Path,
    rng: &mut Rng,
    rep: &mut Report,
    start: Instant,
) -> (file::FileScn, file::FileScn, file::GcStores) {
    // 1. memory driver
    memory::scenario(p, p.small, rng, rep, start);
    memory::scenario(p, p.large, rng, rep, start);
    memory::gc(p, rep, start);

    // 2.-3. file driver, everything that creates and nothing that deletes
    let mut small = file::phase_one(p, run_dir, "small", p.small, false, rng, rep, start);
    let mut large = file::phase_one(p, run_dir, "large", p.large, true, rng, rep, start);

    // 4. get with idle_timeout
    file::idle_get(p, run_dir, p.small, rng, rep, start);
    file::idle_get(p, run_dir, p.large, rng, rep, start);
    file::refresh_get(p, run_dir, rep, start);

    // 5. the stores of the expiring GCs
    let gc = file::prepare_gc(p, run_dir, rep, start);

    // 6. deletes start here
    file::phase_two(p, &mut large, rng, rep, start);
    file::phase_two(p, &mut small, rng, rep, start);

    // 7.-8. GC with 10% expired, then with everything expired
    file::gc_tenth(p, &gc, rep, start);
    file::gc_all(p, &gc, rep, start);

    // 9. cleanup under churn, on tmpfs
    churn::phase(p, run_dir, rep, start);

    // 9b.-9c. encryption at rest and the owner index, on tmpfs
    contents::encryption(p, run_dir, rep, start);
    contents::owner_local(p, run_dir, rep, start);

    (small, large, gc)
}
