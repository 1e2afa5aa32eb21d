//! libsession benchmark through the C ABI, judged against floors of bare syscalls
//! measured in the same run, in the same directory, on files of the same size.
//!
//! Run:   cargo bench --bench session_bench
//! Env:   BENCH_DIR=<dir>  parent of the run directory (default: std::env::temp_dir());
//!                         the bench works in a fresh `session_bench.<pid>` inside it and
//!                         removes only that at the end.
//!        BENCH_QUICK=1    smoke run (small stores, few ops).
//!        BENCH_REDIS=0    skip the Redis phase (8); BENCH_REDIS=only runs just that phase.
//!                         The Redis phase needs `redis-server` and `redis-benchmark` in
//!                         PATH (`bash tests/run_all.sh` installs them); without them the
//!                         bench says so and exits with status 2 before measuring anything.
//!
//! Every operation goes through the exported `extern "C"` functions of
//! `session::ffi` with `*const c_char` arguments, as a C server calls them. The time
//! of one call is measured alone; freeing the returned malloc'd string is not timed.
//!
//! # Method
//! Each operation runs `ROUNDS` rounds of `OPS` calls. Our call and its floors are
//! interleaved call by call (the order rotates every iteration), so drift and noise
//! from the shared machine hit ours and the floor alike. Reported: the median over
//! the rounds of the mean ns/op, ops/s from that median, and the p99 of the per-call
//! latencies of all rounds. Ratio = our ns/op / floor ns/op.
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
//!   1. memory driver (no files);
//!   2. file driver, 1,000 stored: populate; get; update (vs in-place floor); create;
//!   3. file driver, 100,000 stored: populate; GC scan with nothing expired; get;
//!      update; create;
//!   4. the 100,000 sessions with lifetime 1 s for the expiring GC, in their own dir;
//!
//!   From here on files are deleted:
//!
//!   5. update floor by temp file + rename over the old file (frees an inode per call;
//!      a design that updates this way lives permanently in this delete/create churn,
//!      so measuring it here is its realistic cost); destroy vs unlink; 100k then 1k;
//!   6. GC with everything expired (includes 100,000 unlinks);
//!   7. cleanup (unlinks everything left; it runs at the very end, after phase 8);
//!   8. Redis driver against `redis-benchmark`, on one redis-server the bench starts on
//!      a free loopback port (`tests/support/redis_server.rs`). Per round: 1 thread,
//!      then 8 threads (pool_size 16): our create, get, update (5,000 calls per thread
//!      and op; 500 in a quick run), and `redis-benchmark -t set,get -d 200 -P 1 -r
//!      100000` with `-c 1` / `-c 8` and the same number of requests; which side goes
//!      first alternates between the 5 rounds (3 quick). Medians over the rounds of
//!      ops/s (calls / wall time of the round), mean, p50 and p99 of the per-call
//!      latencies. Targets: with 1 thread our p50 and mean latency <= 1.2x
//!      redis-benchmark's single client (create and update vs SET, get vs GET); with 8
//!      threads our throughput >= 0.7x its 8 clients. Both sides are a client plus the
//!      same redis-server on the same 2 cores (see `redis_phase`); in the 1-client
//!      rounds the server is pinned to CPU 0 and either client to CPU 1, since the
//!      round trip is ~20 us on one CPU and ~60 us across CPUs and the scheduler flips
//!      between the two (BENCH_REDIS_PIN=0 disables the pinning). redis-benchmark's
//!      percentiles come from its histogram on an 8 us grid (55, 63, 71, .. us here),
//!      so its p50 moves in steps of ~10%; its mean is finer.
//!
//! If every candidate directory is slow, the notes say so (WARNING): absolute create
//! times are then inflated, the ratios to the interleaved floors remain fair. A store
//! of 100,000 files fills ~13 block groups, and the creates that follow go on into
//! neighbouring groups, which a previous run's GC and cleanup (220,000 unlinks) or
//! other processes may have poisoned: the populate lines (µs/create per tenth) show
//! it, and it makes "create at 100k / at 1k" compare filesystem states rather than
//! the library (the line prints how much the floors moved too). For clean absolute
//! numbers on ext4 leave ~6 minutes between runs.
//!
//! "stored" is the number of sessions in the store when the operation's rounds
//! start. Get and update run before create so that the directory holds just the
//! stored sessions plus the floor's own files; the create rounds then add
//! ROUNDS*OPS sessions and 2*ROUNDS*OPS floor files, which destroy/unlink remove.

use session::ffi::{
    session_create, session_destroy, session_get, session_init_json, session_last_error,
    session_remove_expired, session_shutdown, session_update,
};
use std::ffi::{c_char, CStr, CString};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DATA_LEN: usize = 200;

struct Params {
    quick: bool,
    small: usize,
    large: usize,
    rounds: usize,
    ops: usize,
    scan_rounds: usize,
}

impl Params {
    fn from_env() -> Params {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        if quick {
            Params {
                quick,
                small: 200,
                large: 5_000,
                rounds: 3,
                ops: 300,
                scan_rounds: 2,
            }
        } else {
            Params {
                quick,
                small: 1_000,
                large: 100_000,
                rounds: 5,
                ops: 2_000,
                scan_rounds: 3,
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Data, names, PRNG

/// ~200-byte JSON-like session data; `tag` varies its content.
fn json_data(tag: u64) -> CString {
    let mut s = format!(
        r#"{{"user_id":{},"name":"Ada Lovelace","email":"ada@example.org","roles":["admin","editor"],"csrf":"{:016x}{:016x}","cart":[17,42,99],"theme":"dark","lang":"en-GB","flash":""#,
        tag % 1_000_000,
        tag.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        tag ^ 0xdead_beef
    );
    while s.len() < DATA_LEN - 2 {
        s.push('x');
    }
    s.push_str("\"}");
    assert_eq!(s.len(), DATA_LEN);
    CString::new(s).unwrap()
}

/// A 64-character file name (like a session id, but not one: the first character is
/// not hex, so the store's GC ignores it), NUL-terminated.
type Name = [u8; 65];

fn name(prefix: char, n: u64) -> Name {
    let s = format!("{prefix}{n:063x}");
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(s.as_bytes());
    out
}

fn cname(n: &Name) -> *const c_char {
    n.as_ptr().cast()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------
// The C API, with checks outside the timed region

fn last_error() -> String {
    let p = session_last_error();
    if p.is_null() {
        "(no error)".into()
    } else {
        // SAFETY: a NUL-terminated string owned by libsession, valid until the next call.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn init(json: &CStr) {
    // SAFETY: valid NUL-terminated string.
    if unsafe { session_init_json(json.as_ptr()) } == 0 {
        panic!("session_init_json failed: {}", last_error());
    }
}

fn file_config(root: &Path, lifetime: u64) -> CString {
    let v = serde_json::json!({
        "sessions": {"driver": "storage", "storage_name": "bench", "lifetime": lifetime},
        "storages": {"bench": {"type": "filesystem", "root": root.to_str().expect("utf-8 path")}}
    });
    CString::new(v.to_string()).unwrap()
}

fn memory_config(lifetime: u64) -> CString {
    let v = serde_json::json!({"sessions": {"driver": "memory", "lifetime": lifetime}});
    CString::new(v.to_string()).unwrap()
}

/// Takes a malloc'd id returned by `session_create`, checks it, frees it.
fn take_id(p: *mut c_char) -> CString {
    if p.is_null() {
        panic!("session_create failed: {}", last_error());
    }
    // SAFETY: p is a NUL-terminated malloc'd string that we own.
    let id = unsafe { CStr::from_ptr(p) }.to_owned();
    unsafe { libc::free(p.cast()) };
    assert_eq!(id.as_bytes().len(), 64);
    id
}

/// Creates `n` sessions; also returns the µs/create of each tenth of the work (a
/// tenth that is much slower than the others hit a block group full of recently
/// freed inodes, see the top of the file).
fn populate(n: usize, data: &CStr) -> (Vec<CString>, Duration, Vec<f64>) {
    let t = Instant::now();
    let mut ids = Vec::with_capacity(n);
    let mut tenths = Vec::new();
    let chunk = n.div_ceil(10);
    let mut tc = Instant::now();
    for i in 0..n {
        // SAFETY: data is NUL-terminated.
        ids.push(take_id(unsafe { session_create(data.as_ptr()) }));
        if (i + 1) % chunk == 0 || i + 1 == n {
            let len = (i % chunk + 1) as f64;
            tenths.push((tc.elapsed().as_nanos() as f64 / len / 1e3).round());
            tc = Instant::now();
        }
    }
    (ids, t.elapsed(), tenths)
}

#[inline(always)]
fn timed(f: impl FnOnce()) -> u64 {
    let t = Instant::now();
    f();
    t.elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------------------
// Floors: bare libc calls relative to a descriptor of the session directory, with
// the same flags the store uses where they are free (O_CLOEXEC, O_NOFOLLOW).

fn os_check(ok: bool, what: &str) {
    if !ok {
        panic!("{what}: {}", io::Error::last_os_error());
    }
}

struct Dir {
    fd: libc::c_int,
}

impl Dir {
    fn open(path: &Path) -> Dir {
        let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: valid path.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        os_check(fd >= 0, "open dir");
        Dir { fd }
    }

    /// open(O_CREAT|O_EXCL) + write + close.
    fn create_excl(&self, name: *const c_char, buf: &[u8]) {
        // SAFETY: plain syscalls on valid pointers.
        unsafe {
            let fd = libc::openat(
                self.fd,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                0o600,
            );
            os_check(fd >= 0, "floor openat(O_CREAT|O_EXCL)");
            let n = libc::write(fd, buf.as_ptr().cast(), buf.len());
            os_check(n == buf.len() as isize, "floor write");
            libc::close(fd);
        }
    }

    /// temp file open(O_CREAT|O_EXCL) + write + close + rename onto `name`.
    fn create_rename(&self, tmp: *const c_char, name: *const c_char, buf: &[u8]) {
        self.create_excl(tmp, buf);
        // SAFETY: valid names.
        os_check(
            unsafe { libc::renameat(self.fd, tmp, self.fd, name) } == 0,
            "floor renameat",
        );
    }

    /// open + read + close.
    fn read(&self, name: *const c_char, buf: &mut [u8]) -> usize {
        // SAFETY: plain syscalls on valid pointers.
        unsafe {
            let fd = libc::openat(
                self.fd,
                name,
                libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            );
            os_check(fd >= 0, "floor openat(O_RDONLY)");
            let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            os_check(n > 0, "floor read");
            libc::close(fd);
            n as usize
        }
    }

    /// open + pwrite at 0 + close (in place: not crash-atomic by itself).
    fn pwrite_in_place(&self, name: *const c_char, buf: &[u8]) {
        // SAFETY: plain syscalls on valid pointers.
        unsafe {
            let fd = libc::openat(
                self.fd,
                name,
                libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            );
            os_check(fd >= 0, "floor openat(O_WRONLY)");
            let n = libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), 0);
            os_check(n == buf.len() as isize, "floor pwrite");
            libc::close(fd);
        }
    }

    fn unlink(&self, name: *const c_char) {
        // SAFETY: valid name.
        os_check(
            unsafe { libc::unlinkat(self.fd, name, 0) } == 0,
            "floor unlinkat",
        );
    }

    fn size_of(&self, name: *const c_char) -> usize {
        // SAFETY: st is written before it is read.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        os_check(
            unsafe { libc::fstatat(self.fd, name, &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0,
            "fstatat",
        );
        st.st_size as usize
    }

    /// readdir of the whole directory + fstatat of every entry: the GC scan floor.
    /// Returns the number of entries (without . and ..).
    fn scan(&self) -> usize {
        // SAFETY: plain libc directory calls; each entry is used before the next readdir.
        unsafe {
            let fd = libc::openat(
                self.fd,
                c".".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            );
            os_check(fd >= 0, "openat .");
            let stream = libc::fdopendir(fd);
            os_check(!stream.is_null(), "fdopendir");
            let mut count = 0;
            let mut st: libc::stat = std::mem::zeroed();
            loop {
                let e = libc::readdir(stream);
                if e.is_null() {
                    break;
                }
                let n = (*e).d_name.as_ptr();
                if *n == b'.' as c_char
                    && (*n.add(1) == 0 || (*n.add(1) == b'.' as c_char && *n.add(2) == 0))
                {
                    continue;
                }
                if libc::fstatat(self.fd, n, &mut st, libc::AT_SYMLINK_NOFOLLOW) == 0 {
                    count += 1;
                }
            }
            libc::closedir(stream);
            count
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: our descriptor.
        unsafe { libc::close(self.fd) };
    }
}

// ---------------------------------------------------------------------------
// Statistics

#[derive(Default, Clone)]
struct Stat {
    round_means: Vec<f64>,
    samples: Vec<u64>,
}

impl Stat {
    fn median(&self) -> f64 {
        let mut v = self.round_means.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let n = v.len();
        if n == 0 {
            return f64::NAN;
        }
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    }
    fn p99(&self) -> u64 {
        let mut v = self.samples.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0;
        }
        v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)]
    }
    fn spread(&self) -> (f64, f64) {
        let min = self
            .round_means
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        let max = self.round_means.iter().cloned().fold(0.0, f64::max);
        (min, max)
    }
}

/// Runs `rounds` x `ops` iterations; each iteration calls `op(kind, index)` once per
/// kind, in an order that rotates every iteration. `op` returns the ns of its call.
fn run_rounds(p: &Params, kinds: usize, mut op: impl FnMut(usize, usize) -> u64) -> Vec<Stat> {
    let mut stats = vec![Stat::default(); kinds];
    for r in 0..p.rounds {
        let mut sums = vec![0u64; kinds];
        for i in 0..p.ops {
            let g = r * p.ops + i;
            for slot in 0..kinds {
                let k = (i + slot) % kinds;
                let ns = op(k, g);
                sums[k] += ns;
                stats[k].samples.push(ns);
            }
        }
        for k in 0..kinds {
            stats[k].round_means.push(sums[k] as f64 / p.ops as f64);
        }
    }
    stats
}

// ---------------------------------------------------------------------------
// Report

struct Floor {
    label: &'static str,
    stat: Stat,
    /// Target ratio; None: for information.
    target: Option<f64>,
}

struct Row {
    driver: &'static str,
    stored: usize,
    op: &'static str,
    stat: Stat,
    floors: Vec<Floor>,
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    gc: Vec<String>,
    notes: Vec<String>,
    verdicts: Vec<(String, bool)>,
    scan_floor_per_entry: Option<f64>,
    /// The Redis phase's table and notes, printed as they are.
    redis: Vec<String>,
}

impl Report {
    fn find(&self, driver: &str, stored: usize, op: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.driver == driver && r.stored == stored && r.op == op)
    }
    fn floor(&self, driver: &str, stored: usize, op: &str, label: &str) -> Option<f64> {
        self.find(driver, stored, op)?
            .floors
            .iter()
            .find(|f| f.label == label)
            .map(|f| f.stat.median())
    }
}

fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let n = x.round() as u64;
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

fn progress(start: Instant, what: &str) {
    eprintln!("[{:6.1}s] {what}", start.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------
// Memory driver

fn memory_scenario(p: &Params, n: usize, rng: &mut Rng, rep: &mut Report, start: Instant) {
    progress(start, &format!("memory driver, {n} stored"));
    init(&memory_config(3600));
    let data = json_data(1);
    let upd = [json_data(2), json_data(3)];
    let (ids, took, _) = populate(n, &data);
    rep.notes.push(format!(
        "populate memory {n}: {:.2} s ({} ns/create)",
        took.as_secs_f64(),
        thousands(took.as_nanos() as f64 / n as f64)
    ));

    let get = run_rounds(p, 1, |_, _| {
        let id = &ids[rng.below(ids.len())];
        let mut out = std::ptr::null_mut();
        // SAFETY: valid strings.
        let ns = timed(|| out = unsafe { session_get(id.as_ptr()) });
        assert!(!out.is_null(), "session_get: {}", last_error());
        unsafe { libc::free(out.cast()) };
        ns
    });
    let update = run_rounds(p, 1, |_, g| {
        let id = &ids[rng.below(ids.len())];
        let mut ok = 0;
        let ns = timed(|| ok = unsafe { session_update(id.as_ptr(), upd[g & 1].as_ptr()) });
        assert!(ok != 0, "session_update: {}", last_error());
        ns
    });
    let mut created = Vec::with_capacity(p.rounds * p.ops);
    let create = run_rounds(p, 1, |_, _| {
        let mut out = std::ptr::null_mut();
        let ns = timed(|| out = unsafe { session_create(data.as_ptr()) });
        created.push(take_id(out));
        ns
    });
    let destroy = run_rounds(p, 1, |_, g| {
        let id = &created[g];
        let mut ok = 0;
        let ns = timed(|| ok = unsafe { session_destroy(id.as_ptr()) });
        assert!(ok != 0, "session_destroy: {}", last_error());
        ns
    });
    for (op, stat) in [
        ("create", create),
        ("get", get),
        ("update", update),
        ("destroy", destroy),
    ] {
        let stat = stat.into_iter().next().unwrap();
        rep.rows.push(Row {
            driver: "memory",
            stored: n,
            op,
            stat,
            floors: vec![],
        });
    }
    session_shutdown();
}

fn memory_gc(p: &Params, rep: &mut Report, start: Instant) {
    let n = p.large;
    progress(start, &format!("memory driver, GC over {n}"));
    let data = json_data(7);
    init(&memory_config(3600));
    let _ = populate(n, &data);
    let mut scan = Vec::new();
    for _ in 0..p.scan_rounds {
        scan.push(timed(|| session_remove_expired()) as f64);
        assert!(
            session_last_error().is_null(),
            "remove_expired: {}",
            last_error()
        );
    }
    scan.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let scan = scan[scan.len() / 2];
    session_shutdown();

    init(&memory_config(1));
    let t = Instant::now();
    let _ = populate(n, &data);
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(t.elapsed()));
    let all = timed(|| session_remove_expired()) as f64;
    assert!(
        session_last_error().is_null(),
        "remove_expired: {}",
        last_error()
    );
    session_shutdown();
    rep.gc.push(format!(
        "memory  {:>7}  none expired (walk the map)     {:>9.2} ms  {:>8} ns/entry",
        thousands(n as f64),
        scan / 1e6,
        thousands(scan / n as f64)
    ));
    rep.gc.push(format!(
        "memory  {:>7}  all expired (remove them all)   {:>9.2} ms  {:>8} ns/entry",
        thousands(n as f64),
        all / 1e6,
        thousands(all / n as f64)
    ));
}

// ---------------------------------------------------------------------------
// File driver

struct FileScn {
    n: usize,
    config: CString,
    dir: Dir,
    ids: Vec<CString>,
    /// Sessions made by the create rounds; the destroy rounds remove them.
    created: Vec<CString>,
    /// Files made by the open(O_EXCL) create floor; the unlink floor removes them.
    floor_excl: Vec<Name>,
    /// Files made by the temp+rename create floor; the rename-update floor targets them.
    floor_renamed: Vec<Name>,
    file_len: usize,
    create: Option<(Stat, Stat, Stat)>,
    get: Option<(Stat, Stat)>,
    update: Option<(Stat, Stat)>,
}

/// Files made to probe a candidate directory's create speed; they stay in it.
const PROBES: usize = 32;
/// A probe median above this means the block group is slowed by recent deletes.
const SLOW_CREATE_NS: f64 = 80_000.0;

/// Makes `parent/<label><k>/sessions` for a store and probes its create speed with
/// PROBES open(O_EXCL)+write+close. On ext4 without a journal, creates in a block
/// group where many inodes were freed in the last ~30 s are 4-40x slower; other
/// processes on the machine (test suites in /tmp) cause that too. A fresh directory
/// usually lands in another block group, so up to 6 candidates are tried and the
/// first fast one (else the fastest) is used. Returns the root and the probe count.
fn fresh_root(parent: &Path, label: &str, rep: &mut Report) -> PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let buf = [b'p'; 280];
    let mut best: Option<(f64, PathBuf)> = None;
    let mut tried = Vec::new();
    for attempt in 0..6 {
        let root = parent.join(format!("{label}{attempt}"));
        let sessions = root.join("sessions");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&sessions)
            .unwrap();
        let dir = Dir::open(&sessions);
        let mut v: Vec<u64> = (0..PROBES as u64)
            .map(|i| timed(|| dir.create_excl(cname(&name('p', i)), &buf)))
            .collect();
        v.sort_unstable();
        let med = v[v.len() / 2] as f64;
        tried.push(thousands(med));
        if best.as_ref().map_or(true, |(b, _)| med < *b) {
            best = Some((med, root));
        }
        if med < SLOW_CREATE_NS {
            break;
        }
    }
    let (med, root) = best.unwrap();
    rep.notes.push(format!(
        "{label}: create probe median (ns) per candidate dir {:?}{}",
        tried,
        if med < SLOW_CREATE_NS {
            String::new()
        } else {
            " -- WARNING: all candidates slow (recent deletes on this fs); absolute create numbers are inflated, ratios to the interleaved floors stay valid".to_string()
        }
    ));
    root
}

/// Marks the run directory with FS_TOPDIR_FL (`chattr +T`), so that ext4's Orlov
/// allocator spreads its subdirectories over block groups as it does for top-level
/// directories, instead of putting them next to the parent: /tmp's own block group is
/// often full of recently freed inodes (test suites, a previous run's cleanup) and a
/// create there costs ~1 ms instead of ~20 us for up to 6 minutes (ext4 skips inodes
/// freed less than 60 s ago, 360 s while their inode table block is dirty). This only
/// places the bench directories; the floors measured beside ours are in the very same
/// directories, so ratios are fair either way. Best effort: false where unsupported.
fn set_topdir(dir: &Path) -> bool {
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
    const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
    let d = Dir::open(dir);
    let mut flags: libc::c_int = 0;
    // SAFETY: the ext4 flag ioctls read and write one int.
    unsafe {
        libc::ioctl(d.fd, FS_IOC_GETFLAGS as _, &mut flags) == 0 && {
            flags |= FS_TOPDIR_FL;
            libc::ioctl(d.fd, FS_IOC_SETFLAGS as _, &flags) == 0
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn file_phase_one(
    p: &Params,
    parent: &Path,
    label: &str,
    n: usize,
    scan: bool,
    rng: &mut Rng,
    rep: &mut Report,
    start: Instant,
) -> FileScn {
    progress(start, &format!("file driver, populate {n}"));
    let root = &fresh_root(parent, label, rep);
    let config = file_config(root, 3600);
    init(&config);
    let dir = Dir::open(&root.join("sessions"));
    let data = json_data(1);
    let upd = [json_data(2), json_data(3)];
    let (ids, took, tenths) = populate(n, &data);
    rep.notes.push(format!(
        "populate file {n}: {:.2} s ({} ns/create; us/create per tenth {:?})",
        took.as_secs_f64(),
        thousands(took.as_nanos() as f64 / n as f64),
        tenths
    ));
    let file_len = dir.size_of(ids[0].as_ptr());
    // The floors write files as large as a fresh session file, with the same bytes
    // count (the content does not matter to the kernel).
    let fbuf: Vec<u8> = data
        .as_bytes()
        .iter()
        .cycle()
        .take(file_len)
        .copied()
        .collect();

    if scan {
        progress(
            start,
            &format!("file driver, GC scan (nothing expired) over {n}"),
        );
        let mut ours = Vec::new();
        let mut floor = Vec::new();
        let mut entries = 0;
        for r in 0..p.scan_rounds {
            for k in 0..2 {
                if (r + k) % 2 == 0 {
                    ours.push(timed(|| session_remove_expired()) as f64);
                    assert!(
                        session_last_error().is_null(),
                        "remove_expired: {}",
                        last_error()
                    );
                } else {
                    let mut count = 0;
                    floor.push(timed(|| count = dir.scan()) as f64);
                    assert_eq!(count, n + PROBES, "the directory holds something else");
                    entries = count;
                }
            }
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let (o, f) = (med(&mut ours), med(&mut floor));
        let ratio = o / f;
        rep.gc.push(format!(
            "file    {:>7}  none expired (pure scan)        {:>9.2} ms  {:>8} ns/entry | floor readdir+fstatat {:>7} ns/entry  {:5.2}x",
            thousands(n as f64),
            o / 1e6,
            thousands(o / entries as f64),
            thousands(f / entries as f64),
            ratio
        ));
        rep.scan_floor_per_entry = Some(f / entries as f64);
        rep.notes.push(format!(
            "GC scan rounds (ms): ours {:?}, floor {:?}",
            ours.iter()
                .map(|x| (x / 1e4).round() / 100.0)
                .collect::<Vec<_>>(),
            floor
                .iter()
                .map(|x| (x / 1e4).round() / 100.0)
                .collect::<Vec<_>>()
        ));
    }

    // Floor files for the in-place update floor: at most OPS of them, next to the sessions.
    let n_upd = n.min(p.ops);
    let upd_files: Vec<Name> = (0..n_upd as u64).map(|i| name('u', i)).collect();
    for f in &upd_files {
        dir.create_excl(cname(f), &fbuf);
    }

    progress(start, &format!("file driver, get/update with {n} stored"));
    let mut rbuf = vec![0u8; 16 * 1024];
    // get vs open+read+close of another random session file of the same store.
    let get = run_rounds(p, 2, |k, _| {
        let id = &ids[rng.below(ids.len())];
        if k == 0 {
            let mut out = std::ptr::null_mut();
            let ns = timed(|| out = unsafe { session_get(id.as_ptr()) });
            assert!(!out.is_null(), "session_get: {}", last_error());
            unsafe { libc::free(out.cast()) };
            ns
        } else {
            let mut got = 0;
            let ns = timed(|| got = dir.read(id.as_ptr(), &mut rbuf));
            assert_eq!(got, file_len);
            ns
        }
    });
    // update vs open+pwrite+close in place on a floor file of the same size.
    let update = run_rounds(p, 2, |k, g| {
        if k == 0 {
            let id = &ids[rng.below(ids.len())];
            let mut ok = 0;
            let ns = timed(|| ok = unsafe { session_update(id.as_ptr(), upd[g & 1].as_ptr()) });
            assert!(ok != 0, "session_update: {}", last_error());
            ns
        } else {
            let f = &upd_files[rng.below(upd_files.len())];
            timed(|| dir.pwrite_in_place(cname(f), &fbuf))
        }
    });

    progress(start, &format!("file driver, create with {n} stored"));
    let total = p.rounds * p.ops;
    let mut created = Vec::with_capacity(total);
    let floor_excl: Vec<Name> = (0..total as u64).map(|i| name('x', i)).collect();
    let floor_renamed: Vec<Name> = (0..total as u64).map(|i| name('r', i)).collect();
    let tmp: Vec<Name> = (0..total as u64).map(|i| name('t', i)).collect();
    let create = run_rounds(p, 3, |k, g| match k {
        0 => {
            let mut out = std::ptr::null_mut();
            let ns = timed(|| out = unsafe { session_create(data.as_ptr()) });
            created.push(take_id(out));
            ns
        }
        1 => timed(|| dir.create_rename(cname(&tmp[g]), cname(&floor_renamed[g]), &fbuf)),
        _ => timed(|| dir.create_excl(cname(&floor_excl[g]), &fbuf)),
    });
    let mut it = create.into_iter();
    let create = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let mut it = get.into_iter();
    let get = (it.next().unwrap(), it.next().unwrap());
    let mut it = update.into_iter();
    let update = (it.next().unwrap(), it.next().unwrap());
    session_shutdown();
    FileScn {
        n,
        config,
        dir,
        ids,
        created,
        floor_excl,
        floor_renamed,
        file_len,
        create: Some(create),
        get: Some(get),
        update: Some(update),
    }
}

/// The deleting half: update by temp+rename (information), destroy vs unlink.
fn file_phase_two(p: &Params, s: &mut FileScn, rng: &mut Rng, rep: &mut Report, start: Instant) {
    progress(
        start,
        &format!(
            "file driver, update-by-rename floor and destroy with {} stored",
            s.n
        ),
    );
    init(&s.config);
    let fbuf = vec![b'y'; s.file_len];
    let total = p.rounds * p.ops;
    let tmp: Vec<Name> = (0..total as u64).map(|i| name('w', i)).collect();
    let dir = &s.dir;
    let renamed = &s.floor_renamed;
    let rename_update = run_rounds(p, 1, |_, g| {
        let target = &renamed[rng.below(renamed.len())];
        timed(|| dir.create_rename(cname(&tmp[g]), cname(target), &fbuf))
    })
    .pop()
    .unwrap();
    let created = &s.created;
    let excl = &s.floor_excl;
    let destroy = run_rounds(p, 2, |k, g| {
        if k == 0 {
            let id = &created[g];
            let mut ok = 0;
            let ns = timed(|| ok = unsafe { session_destroy(id.as_ptr()) });
            assert!(ok != 0, "session_destroy: {}", last_error());
            ns
        } else {
            timed(|| dir.unlink(cname(&excl[g])))
        }
    });
    let mut it = destroy.into_iter();
    let (destroy, unlink) = (it.next().unwrap(), it.next().unwrap());
    session_shutdown();

    let (create, tmp_rename, excl) = s.create.take().unwrap();
    let (get, read) = s.get.take().unwrap();
    let (update, pwrite) = s.update.take().unwrap();
    let n = s.n;
    rep.rows.push(Row {
        driver: "file",
        stored: n,
        op: "create",
        stat: create,
        floors: vec![
            Floor {
                label: "tmp open(O_EXCL)+write+close+rename",
                stat: tmp_rename,
                target: Some(1.5),
            },
            Floor {
                label: "open(O_CREAT|O_EXCL)+write+close",
                stat: excl,
                target: None,
            },
        ],
    });
    rep.rows.push(Row {
        driver: "file",
        stored: n,
        op: "get",
        stat: get,
        floors: vec![Floor {
            label: "open+read+close",
            stat: read,
            target: Some(1.5),
        }],
    });
    rep.rows.push(Row {
        driver: "file",
        stored: n,
        op: "update",
        stat: update,
        floors: vec![
            Floor {
                label: "open+pwrite+close (in place)",
                stat: pwrite,
                target: Some(3.0),
            },
            Floor {
                label: "tmp+write+close+rename over old (*)",
                stat: rename_update,
                target: None,
            },
        ],
    });
    rep.rows.push(Row {
        driver: "file",
        stored: n,
        op: "destroy",
        stat: destroy,
        floors: vec![Floor {
            label: "unlink",
            stat: unlink,
            target: None,
        }],
    });
    let _ = &s.ids;
}

// ---------------------------------------------------------------------------
// Redis driver (phase 8): ours through the C ABI vs `redis-benchmark`, same server

#[path = "../tests/support/redis_server.rs"]
mod redis_server;

#[derive(Clone, Copy, PartialEq, Eq)]
enum RedisMode {
    Off,
    On,
    /// `BENCH_REDIS=only`: just this phase (no file or memory phases).
    Only,
}

impl RedisMode {
    fn from_env() -> RedisMode {
        match std::env::var("BENCH_REDIS").as_deref() {
            Ok("0") | Ok("no") | Ok("off") => RedisMode::Off,
            Ok("only") => RedisMode::Only,
            _ => RedisMode::On,
        }
    }
}

/// True when `name` is an executable file in one of the `PATH` directories.
fn in_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(name))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// The Redis phase needs both programs; without them the bench stops (non-zero)
/// before doing anything, rather than silently leaving the phase out.
fn require_redis_tools() {
    let missing: Vec<&str> = ["redis-server", "redis-benchmark"]
        .into_iter()
        .filter(|n| !in_path(n))
        .collect();
    if !missing.is_empty() {
        let msg = format!(
            "session_bench: {} not found in PATH: the Redis phase cannot run. \
             `bash tests/run_all.sh` installs them (or set BENCH_REDIS=0 to skip the Redis phase).",
            missing.join(" and ")
        );
        println!("{msg}");
        eprintln!("{msg}");
        std::process::exit(2);
    }
}

struct RedisParams {
    rounds: usize,
    /// Calls per operation and round with one thread; each of the `THREADS` threads
    /// makes as many (so `THREADS * ops` per operation and round with 8 threads).
    ops: usize,
    /// Keys `key:000000000000`.. that redis-benchmark's `-r` draws from; all exist
    /// beforehand, so its GETs find 200-byte values as ours do.
    keyspace: usize,
}

const REDIS_THREADS: usize = 8;

impl RedisParams {
    fn new(p: &Params) -> RedisParams {
        if p.quick {
            RedisParams {
                rounds: 3,
                ops: 500,
                keyspace: 10_000,
            }
        } else {
            RedisParams {
                rounds: 5,
                ops: 5_000,
                keyspace: 100_000,
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ROp {
    Create,
    Get,
    Update,
}

impl ROp {
    const ALL: [ROp; 3] = [ROp::Create, ROp::Get, ROp::Update];
    fn name(self) -> &'static str {
        match self {
            ROp::Create => "create",
            ROp::Get => "get",
            ROp::Update => "update",
        }
    }
    /// The redis-benchmark test it is judged against.
    fn peer(self) -> &'static str {
        match self {
            ROp::Get => "GET",
            _ => "SET",
        }
    }
    fn command(self) -> &'static str {
        match self {
            ROp::Create => "SET NX EX",
            ROp::Get => "GET",
            ROp::Update => "SET XX KEEPTTL",
        }
    }
}

/// One round of one side: throughput over the wall time of the round, latencies
/// per call (ns).
#[derive(Clone, Copy, Default)]
struct RStat {
    ops_s: f64,
    avg_ns: f64,
    p50_ns: f64,
    p99_ns: f64,
}

fn median_of(v: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Median over the rounds of each field.
fn rstat_median(rounds: &[RStat]) -> RStat {
    RStat {
        ops_s: median_of(rounds.iter().map(|r| r.ops_s)),
        avg_ns: median_of(rounds.iter().map(|r| r.avg_ns)),
        p50_ns: median_of(rounds.iter().map(|r| r.p50_ns)),
        p99_ns: median_of(rounds.iter().map(|r| r.p99_ns)),
    }
}

/// `threads` threads make `ops` calls of `op` each, started together. Ids for get
/// and update are drawn from `ids`; created ids are returned. Every call is timed
/// alone; checking and freeing the returned string is not timed.
fn our_redis_round(
    op: ROp,
    threads: usize,
    ops: usize,
    ids: &[CString],
    seed: u64,
    cpu: Option<usize>,
) -> (RStat, Vec<CString>) {
    let data = [json_data(seed), json_data(seed ^ 1)];
    let barrier = std::sync::Barrier::new(threads);
    let results: Vec<(Instant, Instant, Vec<u64>, Vec<CString>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (data, barrier) = (&data, &barrier);
                s.spawn(move || {
                    if let Some(cpu) = cpu {
                        assert!(pin(0, &[cpu]), "cannot pin the bench thread to CPU {cpu}");
                    }
                    let mut rng = Rng(seed.wrapping_add(t as u64 * 0x9e37_79b9) | 1);
                    let mut samples = Vec::with_capacity(ops);
                    let mut created = Vec::new();
                    barrier.wait();
                    let begin = Instant::now();
                    for i in 0..ops {
                        match op {
                            ROp::Create => {
                                let d = data[i & 1].as_ptr();
                                let mut out = std::ptr::null_mut();
                                // SAFETY: NUL-terminated data.
                                samples.push(timed(|| out = unsafe { session_create(d) }));
                                created.push(take_id(out));
                            }
                            ROp::Get => {
                                let id = ids[rng.below(ids.len())].as_ptr();
                                let mut out = std::ptr::null_mut();
                                // SAFETY: NUL-terminated id.
                                samples.push(timed(|| out = unsafe { session_get(id) }));
                                assert!(!out.is_null(), "session_get: {}", last_error());
                                // SAFETY: malloc'd by libsession, ours to free.
                                unsafe { libc::free(out.cast()) };
                            }
                            ROp::Update => {
                                let id = ids[rng.below(ids.len())].as_ptr();
                                let d = data[i & 1].as_ptr();
                                let mut rc = 0;
                                // SAFETY: NUL-terminated strings.
                                samples.push(timed(|| rc = unsafe { session_update(id, d) }));
                                assert!(rc != 0, "session_update: {}", last_error());
                            }
                        }
                    }
                    (begin, Instant::now(), samples, created)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let begin = results.iter().map(|r| r.0).min().unwrap();
    let end = results.iter().map(|r| r.1).max().unwrap();
    let mut samples: Vec<u64> = results.iter().flat_map(|r| r.2.iter().copied()).collect();
    let created: Vec<CString> = results.into_iter().flat_map(|r| r.3).collect();
    samples.sort_unstable();
    let n = samples.len();
    let pct = |q: f64| samples[((n as f64 * q) as usize).min(n - 1)] as f64;
    let stat = RStat {
        ops_s: n as f64 / (end - begin).as_secs_f64(),
        avg_ns: samples.iter().sum::<u64>() as f64 / n as f64,
        p50_ns: pct(0.50),
        p99_ns: pct(0.99),
    };
    (stat, created)
}

/// Runs `redis-benchmark -t set,get` once; returns its SET and GET rows.
///
/// `-P 1`: one request in flight per connection, as our synchronous calls.
/// `-r keyspace`: random keys among `keyspace` existing ones (prepopulated), so the
/// GETs return 200-byte values. Its default single thread drives all `-c`
/// connections from one event loop.
fn redis_benchmark(
    port: u16,
    clients: usize,
    n: usize,
    keyspace: usize,
    cpu: Option<usize>,
) -> [RStat; 2] {
    let mut cmd = std::process::Command::new("redis-benchmark");
    if let Some(cpu) = cpu {
        use std::os::unix::process::CommandExt;
        // SAFETY: only a raw syscall between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if pin(0, &[cpu]) {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            })
        };
    }
    let out = cmd
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "set,get", "-d", &DATA_LEN.to_string(), "-P", "1"])
        .args(["-c", &clients.to_string(), "-n", &n.to_string()])
        .args(["-r", &keyspace.to_string(), "--csv"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("cannot run redis-benchmark: {err}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "redis-benchmark failed ({}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<String>> = text
        .lines()
        .filter(|l| l.starts_with('"'))
        .map(|l| {
            l.split(',')
                .map(|f| f.trim().trim_matches('"').to_string())
                .collect()
        })
        .collect();
    let header = rows
        .iter()
        .find(|r| r.first().is_some_and(|f| f == "test"))
        .unwrap_or_else(|| panic!("redis-benchmark --csv printed no header: {text}"));
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("redis-benchmark --csv has no column {name}: {text}"))
    };
    let (rps, avg, p50, p99) = (
        col("rps"),
        col("avg_latency_ms"),
        col("p50_latency_ms"),
        col("p99_latency_ms"),
    );
    let row = |test: &str| {
        let r = rows
            .iter()
            .find(|r| r.first().is_some_and(|f| f == test))
            .unwrap_or_else(|| panic!("redis-benchmark printed no {test} row: {text}"));
        let num = |i: usize| -> f64 {
            r[i].parse()
                .unwrap_or_else(|_| panic!("redis-benchmark: bad number {:?}", r[i]))
        };
        RStat {
            ops_s: num(rps),
            avg_ns: num(avg) * 1e6,
            p50_ns: num(p50) * 1e6,
            p99_ns: num(p99) * 1e6,
        }
    };
    [row("SET"), row("GET")]
}

/// Restricts thread or process `pid` (0: the calling thread) to `cpus`.
fn pin(pid: libc::pid_t, cpus: &[usize]) -> bool {
    // SAFETY: cpu_set_t is plain data, initialised by CPU_ZERO/CPU_SET before use.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The redis-server's pid, from `INFO server` (the helper keeps its Child private).
fn server_pid(server: &redis_server::RedisServer) -> Option<libc::pid_t> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut server.admin())
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Writes `key:000000000000`..`key:<keyspace-1>` (the names redis-benchmark's `-r`
/// makes) with 200-byte values.
fn prepopulate_keyspace(server: &redis_server::RedisServer, keyspace: usize) {
    let mut conn = server.admin();
    let value = [b'x'; DATA_LEN];
    for start in (0..keyspace).step_by(1000) {
        let mut pipe = redis::pipe();
        for k in start..(start + 1000).min(keyspace) {
            pipe.cmd("SET")
                .arg(format!("key:{k:012}"))
                .arg(&value[..])
                .ignore();
        }
        pipe.query::<()>(&mut conn)
            .expect("prepopulate redis-benchmark keys");
    }
}

fn redis_config(url: &str, lifetime: u64) -> CString {
    let v = serde_json::json!({"sessions": {
        "driver": "redis", "url": url, "lifetime": lifetime,
        "pool_size": 16, "command_timeout_ms": 1000
    }});
    CString::new(v.to_string()).unwrap()
}

/// The Redis phase. One redis-server on a free loopback port; in every round, for
/// 1 thread/client and then for 8, our create, get and update (through the C ABI)
/// and redis-benchmark's SET and GET run one after the other, which side goes first
/// alternating between rounds, so drift on the shared machine hits both. Medians
/// over the rounds are reported.
///
/// Fairness: both sides are a client (our threads in this process; redis-benchmark,
/// one process with one event-loop thread) plus the same redis-server, all on the
/// same 2 cores: redis-benchmark competes with the server for the CPUs exactly as
/// our threads do. Differences that remain: our keys are `session:` + 64 hex (72
/// bytes) against its 16-byte `key:NNNNNNNNNNNN`; create is `SET NX EX` (sets a TTL)
/// and update `SET XX KEEPTTL`, both judged against plain `SET`.
fn redis_phase(p: &Params, rep: &mut Report, start: Instant) {
    let rp = RedisParams::new(p);
    progress(start, "redis driver: starting redis-server");
    let server = redis_server::RedisServer::start(&[]);
    let version = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    prepopulate_keyspace(&server, rp.keyspace);
    init(&redis_config(&server.url(), 3600));

    // Placement for the 1-thread/1-client rounds. A loopback round trip costs ~20 us
    // when client and server share a CPU and ~60 us across CPUs (PERFORMANCE.md);
    // left to the scheduler, whole rounds flip between the two (unpinned runs showed
    // redis-benchmark's p50 at 23 us in one round and 79 us in the next), so medians
    // over a few rounds would compare placements rather than clients. So for those
    // rounds the server's main thread is pinned to CPU 0 and the client, our thread
    // or the redis-benchmark process alike, to CPU 1: the cross-CPU round trip, the
    // same for both sides. With 8 threads/clients nothing is pinned: clients and
    // server share both cores as the scheduler sees fit. BENCH_REDIS_PIN=0: never pin.
    let all_cpus: Vec<usize> =
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    let srv_pid = server_pid(&server);
    let pinning = std::env::var("BENCH_REDIS_PIN").map_or(true, |v| v != "0")
        && all_cpus.len() >= 2
        && srv_pid.is_some_and(|pid| pin(pid, &all_cpus));
    let place = |threads: usize| -> Option<usize> {
        if !pinning {
            return None;
        }
        let pid = srv_pid.expect("checked above");
        if threads == 1 {
            assert!(pin(pid, &[0]), "cannot pin redis-server to CPU 0");
            Some(1)
        } else {
            assert!(pin(pid, &all_cpus), "cannot unpin redis-server");
            None
        }
    };

    let mut seed = 0x5eed_u64;
    let mut ids: Vec<CString> = Vec::new();
    // Warm-up: fill the pool to 8 connections, the server's tables, both clients.
    progress(start, "redis driver: warm-up");
    for threads in [1, REDIS_THREADS] {
        let cpu = place(threads);
        for op in ROp::ALL {
            let (_, created) = our_redis_round(op, threads, 200, &ids, seed, cpu);
            ids.extend(created);
            seed += 1;
        }
        redis_benchmark(server.port, threads, 1_000, rp.keyspace, cpu);
    }

    // [threads index][op] per round, and redis-benchmark [clients index][SET, GET].
    let mut ours: Vec<Vec<Vec<RStat>>> = vec![vec![Vec::new(); 3]; 2];
    let mut theirs: Vec<Vec<Vec<RStat>>> = vec![vec![Vec::new(); 2]; 2];
    for r in 0..rp.rounds {
        for (ti, threads) in [1, REDIS_THREADS].into_iter().enumerate() {
            let n = threads * rp.ops;
            progress(
                start,
                &format!(
                    "redis driver: round {}/{}, {threads} thread(s)/client(s), {n} ops each ({})",
                    r + 1,
                    rp.rounds,
                    if r % 2 == 0 {
                        "ours first"
                    } else {
                        "redis-benchmark first"
                    }
                ),
            );
            let cpu = place(threads);
            for side in 0..2 {
                if (side + r) % 2 == 0 {
                    for (k, op) in ROp::ALL.into_iter().enumerate() {
                        let (stat, created) = our_redis_round(op, threads, rp.ops, &ids, seed, cpu);
                        ids.extend(created);
                        seed += 1;
                        ours[ti][k].push(stat);
                    }
                } else {
                    let rb = redis_benchmark(server.port, threads, n, rp.keyspace, cpu);
                    theirs[ti][0].push(rb[0]);
                    theirs[ti][1].push(rb[1]);
                }
            }
        }
    }
    session_shutdown();

    let us = |ns: f64| format!("{:.1}", ns / 1e3);
    let mut lines = vec![
        format!(
            "{version}; server 127.0.0.1:{} started by the bench; {DATA_LEN}-byte values; redis-benchmark -P 1 -r {} (all keys exist), -n = our calls per round",
            server.port, rp.keyspace
        ),
        format!(
            "{} rounds, ours and redis-benchmark alternating which goes first; per round {} calls per op with 1 thread, {} x {} with {REDIS_THREADS}; medians over the rounds",
            rp.rounds, rp.ops, REDIS_THREADS, rp.ops
        ),
        if pinning {
            "1 thread/client: redis-server pinned to CPU 0, the client (ours or redis-benchmark) to CPU 1 (cross-CPU round trip); 8: unpinned".to_string()
        } else {
            "nothing pinned (BENCH_REDIS_PIN=0, one CPU, or sched_setaffinity failed): 1-thread rounds may flip between same-CPU (~20 us) and cross-CPU (~60 us) round trips".to_string()
        },
        String::new(),
        format!(
            "{:<3} {:<7} {:<14} {:>9} {:>7} {:>7} {:>7} | {:<4} {:>9} {:>7} {:>7} {:>7} | {:>6} {:>6} {:>6}  target",
            "thr", "op", "command", "ops/s", "avg us", "p50 us", "p99 us", "rb", "ops/s", "avg us",
            "p50 us", "p99 us", "p50", "avg", "ops/s"
        ),
        "-".repeat(136),
    ];
    for (ti, threads) in [1, REDIS_THREADS].into_iter().enumerate() {
        for (k, op) in ROp::ALL.into_iter().enumerate() {
            let o = rstat_median(&ours[ti][k]);
            let t = rstat_median(&theirs[ti][usize::from(op == ROp::Get)]);
            let (r50, ravg, rops) = (o.p50_ns / t.p50_ns, o.avg_ns / t.avg_ns, o.ops_s / t.ops_s);
            let target = if threads == 1 {
                let p50_ok = r50 <= 1.2;
                let avg_ok = ravg <= 1.2;
                for (what, ratio, pass) in [("p50", r50, p50_ok), ("avg", ravg, avg_ok)] {
                    rep.verdicts.push((
                        format!(
                            "redis 1 thread {} {what} latency <= 1.2x redis-benchmark -c 1 {} {what}: {ratio:.2}x",
                            op.name(),
                            op.peer()
                        ),
                        pass,
                    ));
                }
                format!(
                    "p50 <= 1.2x {}, avg <= 1.2x {}",
                    if p50_ok { "PASS" } else { "MISS" },
                    if avg_ok { "PASS" } else { "MISS" }
                )
            } else {
                let pass = rops >= 0.7;
                rep.verdicts.push((
                    format!(
                        "redis {threads} threads {} throughput >= 0.7x redis-benchmark -c {threads} {}: {rops:.2}x",
                        op.name(),
                        op.peer()
                    ),
                    pass,
                ));
                format!("ops/s >= 0.7x {}", if pass { "PASS" } else { "MISS" })
            };
            lines.push(format!(
                "{:<3} {:<7} {:<14} {:>9} {:>7} {:>7} {:>7} | {:<4} {:>9} {:>7} {:>7} {:>7} | {:>5.2}x {:>5.2}x {:>5.2}x  {target}",
                threads,
                op.name(),
                op.command(),
                thousands(o.ops_s),
                us(o.avg_ns),
                us(o.p50_ns),
                us(o.p99_ns),
                op.peer(),
                thousands(t.ops_s),
                us(t.avg_ns),
                us(t.p50_ns),
                us(t.p99_ns),
                r50,
                ravg,
                rops
            ));
        }
    }
    lines.push(String::new());
    lines.push("round spread (min..max over the rounds): ours p50 us, ops/s | redis-benchmark p50 us, ops/s".into());
    let spread = |v: &[RStat], f: fn(&RStat) -> f64, scale: f64| {
        let lo = v.iter().map(f).fold(f64::INFINITY, f64::min) / scale;
        let hi = v.iter().map(f).fold(0.0, f64::max) / scale;
        if scale == 1.0 {
            format!("{}..{}", thousands(lo), thousands(hi))
        } else {
            format!("{lo:.1}..{hi:.1}")
        }
    };
    for (ti, threads) in [1, REDIS_THREADS].into_iter().enumerate() {
        for (k, op) in ROp::ALL.into_iter().enumerate() {
            let o = &ours[ti][k];
            let t = &theirs[ti][usize::from(op == ROp::Get)];
            lines.push(format!(
                "  {threads} {:<7} {} us, {} ops/s | {} {} us, {} ops/s",
                op.name(),
                spread(o, |s| s.p50_ns, 1e3),
                spread(o, |s| s.ops_s, 1.0),
                op.peer(),
                spread(t, |s| s.p50_ns, 1e3),
                spread(t, |s| s.ops_s, 1.0),
            ));
        }
    }
    lines.push(format!(
        "ops/s = calls / wall time of the round (ours incl. the untimed checks and frees); redis-benchmark's latency percentiles sit on an 8 us grid (its mean is finer); {} sessions stored at the end",
        thousands(ids.len() as f64)
    ));
    rep.redis = lines;
    drop(server);
}

// ---------------------------------------------------------------------------

fn header(run_dir: &Path, p: &Params) {
    // SAFETY: plain libc calls with buffers of the right size.
    let (date, kernel, fs) = unsafe {
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
        let c = CString::new(run_dir.as_os_str().as_encoded_bytes()).unwrap();
        let mut sfs: libc::statfs = std::mem::zeroed();
        let fs = if libc::statfs(c.as_ptr(), &mut sfs) == 0 {
            let t = sfs.f_type as u64;
            let name = match t {
                0xEF53 => "ext4",
                0x0102_1994 => "tmpfs",
                0x5846_5342 => "xfs",
                0x9123_683E => "btrfs",
                0x794C_7630 => "overlayfs",
                _ => "?",
            };
            format!("{name} (f_type 0x{t:X})")
        } else {
            "unknown".into()
        };
        (date, kernel, fs)
    };
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
    let start = Instant::now();
    let p = Params::from_env();
    let redis_mode = RedisMode::from_env();
    if redis_mode != RedisMode::Off {
        require_redis_tools();
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
    let topdir = set_topdir(&run_dir);
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

    // 1.-7. memory and file drivers
    let dirs = (redis_mode != RedisMode::Only)
        .then(|| local_phases(&p, &run_dir, &mut rng, &mut rep, start));

    // 8. Redis driver
    if redis_mode != RedisMode::Off {
        redis_phase(&p, &mut rep, start);
    }

    print_report(&p, &rep);
    progress(start, "done; cleaning up");
    drop(dirs);
}

/// Phases 1-7 (see the top of the file); returns what must live until the cleanup.
fn local_phases(
    p: &Params,
    run_dir: &Path,
    rng: &mut Rng,
    rep: &mut Report,
    start: Instant,
) -> (Dir, FileScn, FileScn) {
    // 1. memory driver
    memory_scenario(p, p.small, rng, rep, start);
    memory_scenario(p, p.large, rng, rep, start);
    memory_gc(p, rep, start);

    // 2.-3. file driver, everything that creates and nothing that deletes
    let mut small = file_phase_one(p, run_dir, "small", p.small, false, rng, rep, start);
    let mut large = file_phase_one(p, run_dir, "large", p.large, true, rng, rep, start);

    // 4. the sessions for the expiring GC, lifetime 1 s, in their own directory
    progress(
        start,
        &format!(
            "file driver, populate {} sessions with lifetime 1 s",
            p.large
        ),
    );
    let gc_root = fresh_root(run_dir, "expiring", rep);
    init(&file_config(&gc_root, 1));
    let gc_dir = Dir::open(&gc_root.join("sessions"));
    let (_, took, tenths) = populate(p.large, &json_data(9));
    let gc_populated = Instant::now();
    rep.notes.push(format!(
        "populate file {} (lifetime 1 s): {:.2} s ({} ns/create; us/create per tenth {:?})",
        p.large,
        took.as_secs_f64(),
        thousands(took.as_nanos() as f64 / p.large as f64),
        tenths
    ));
    session_shutdown();

    // 5. deletes start here
    file_phase_two(p, &mut large, rng, rep, start);
    file_phase_two(p, &mut small, rng, rep, start);

    // 6. GC with everything expired
    progress(
        start,
        &format!("file driver, GC with all {} expired", p.large),
    );
    init(&file_config(&gc_root, 1));
    std::thread::sleep(Duration::from_millis(1100).saturating_sub(gc_populated.elapsed()));
    let before = gc_dir.scan();
    let ns = timed(|| session_remove_expired()) as f64;
    assert!(
        session_last_error().is_null(),
        "remove_expired: {}",
        last_error()
    );
    let after = gc_dir.scan();
    session_shutdown();
    let unlink = rep
        .floor("file", p.large, "destroy", "unlink")
        .unwrap_or(f64::NAN);
    let scan_floor = rep.scan_floor_per_entry.unwrap_or(f64::NAN);
    let per = ns / before.max(1) as f64;
    rep.gc.push(format!(
        "file    {:>7}  all expired (removed {:>7})   {:>9.2} ms  {:>8} ns/entry | floor unlink {:>7} ns/entry  {:5.2}x; unlink+readdir+fstatat {:>7} ns  {:5.2}x",
        thousands(before as f64),
        thousands((before - after) as f64),
        ns / 1e6,
        thousands(per),
        thousands(unlink),
        per / unlink,
        thousands(unlink + scan_floor),
        per / (unlink + scan_floor)
    ));
    rep.notes.push(format!(
        "GC all expired: the unlink floor is the destroy rounds' unlink at {} stored, measured just before",
        p.large
    ));

    (gc_dir, small, large)
}

fn print_report(p: &Params, rep: &Report) {
    let mut verdicts: Vec<(String, bool)> = rep.verdicts.clone();
    if !rep.rows.is_empty() {
        print_local_tables(p, rep, &mut verdicts);
    }
    if !rep.redis.is_empty() {
        println!();
        println!("redis driver vs redis-benchmark (same run, same redis-server):");
        for l in &rep.redis {
            println!("  {l}");
        }
    }
    println!();
    let misses = verdicts.iter().filter(|(_, pass)| !pass).count();
    println!("targets: {} pass, {} miss", verdicts.len() - misses, misses);
    for (what, pass) in &verdicts {
        println!("  {} {what}", if *pass { "PASS" } else { "MISS" });
    }
}

/// The memory and file drivers' tables, GC lines, spreads and notes.
fn print_local_tables(p: &Params, rep: &Report, verdicts: &mut Vec<(String, bool)>) {
    println!();
    println!(
        "{:<6} {:>7} {:<8} {:>9} {:>10} {:>9}  {:<37} {:>9} {:>7}  target",
        "driver",
        "stored",
        "op",
        "ns/op",
        "ops/s",
        "p99 ns",
        "floor (same run, same directory)",
        "floor ns",
        "ratio"
    );
    println!("{}", "-".repeat(122));
    let mut rows: Vec<&Row> = rep.rows.iter().collect();
    // memory first, then file; small store first; create, get, update, destroy (stable).
    rows.sort_by_key(|r| (r.driver != "memory", r.stored));
    for row in &rows {
        let med = row.stat.median();
        let left = format!(
            "{:<6} {:>7} {:<8} {:>9} {:>10} {:>9}",
            row.driver,
            thousands(row.stored as f64),
            row.op,
            thousands(med),
            thousands(1e9 / med),
            thousands(row.stat.p99() as f64)
        );
        if row.floors.is_empty() {
            println!("{left}");
        }
        for (i, f) in row.floors.iter().enumerate() {
            let fm = f.stat.median();
            let ratio = med / fm;
            let target = match f.target {
                Some(t) => {
                    let pass = ratio <= t;
                    verdicts.push((
                        format!(
                            "file {} at {} stored <= {t}x {}: {ratio:.2}x",
                            row.op,
                            thousands(row.stored as f64),
                            f.label
                        ),
                        pass,
                    ));
                    format!("<= {t}x {}", if pass { "PASS" } else { "MISS" })
                }
                None => "info".into(),
            };
            println!(
                "{:<53}  {:<37} {:>9} {:>6.2}x  {target}",
                if i == 0 { left.as_str() } else { "" },
                f.label,
                thousands(fm),
                ratio
            );
        }
    }
    println!("(*) measured in the delete phase, where such a design permanently lives; see the top of benches/session_bench.rs");

    // create at large vs small
    if let (Some(s), Some(l)) = (
        rep.find("file", p.small, "create"),
        rep.find("file", p.large, "create"),
    ) {
        let ratio = l.stat.median() / s.stat.median();
        let label = "tmp open(O_EXCL)+write+close+rename";
        let floor_growth = |label: &str| match (
            rep.floor("file", p.small, "create", label),
            rep.floor("file", p.large, "create", label),
        ) {
            (Some(fs), Some(fl)) => fl / fs,
            _ => f64::NAN,
        };
        let rename_growth = floor_growth(label);
        let excl_growth = floor_growth("open(O_CREAT|O_EXCL)+write+close");
        let pass = ratio <= 1.2;
        println!(
            "file create at {} stored / at {} stored: {:.2}x  <= 1.2x {}  (the floors moved by: tmp+rename {:.2}x, open(O_EXCL) {:.2}x; ours normalised by the rename floor: {:.2}x)",
            thousands(p.large as f64),
            thousands(p.small as f64),
            ratio,
            if pass { "PASS" } else { "MISS" },
            rename_growth,
            excl_growth,
            ratio / rename_growth
        );
        verdicts.push((
            format!(
                "file create at {} stored <= 1.2x create at {}: {ratio:.2}x",
                p.large, p.small
            ),
            pass,
        ));
    }

    println!();
    println!("session_remove_expired:");
    for l in &rep.gc {
        println!("  {l}");
    }
    println!();
    println!("round spread (min..max of round means, ns/op):");
    for row in &rows {
        let (a, b) = row.stat.spread();
        let mut line = format!(
            "  {:<6} {:>7} {:<8} {}..{}",
            row.driver,
            thousands(row.stored as f64),
            row.op,
            thousands(a),
            thousands(b)
        );
        for f in &row.floors {
            let (a, b) = f.stat.spread();
            line.push_str(&format!(
                " | {} {}..{}",
                f.label.split_whitespace().next().unwrap_or(""),
                thousands(a),
                thousands(b)
            ));
        }
        println!("{line}");
    }
    for n in &rep.notes {
        println!("  {n}");
    }
}
