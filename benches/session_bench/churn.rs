//! Cleanup under churn (phase 9): remove_expired while other processes create and
//! destroy sessions in the same directory as fast as they can.
//!
//! The directory is on tmpfs (the run directory if it is tmpfs, else a directory of
//! our own in /dev/shm) and holds `churn_base` live sessions. PROCESSES children, each
//! the bench binary itself started with `BENCH_CHURN_CHILD` set (a fresh process:
//! nothing inherited from this one's threads or stores), run THREADS threads that
//! each create a session and destroy their oldest one once they hold WINDOW, through
//! one `session_store_t` handle per process. The children take commands on stdin
//! (`go`, `mark`: print the counters, `stop`; end of input counts as stop, so they
//! never outlive the bench) and answer on stdout.
//!
//! Timeline: go; 0.5 s warm-up; a baseline of churn alone; then for `churn_secs` the
//! bench's main thread (the third actor) calls, in rotating order, remove_expired
//! (`session_store_remove_expired`), a plain readdir of the directory, and readdir +
//! fstatat of every entry; stop. Each of the actor's calls is timed alone. The actor
//! shares the 2 CPUs with the 16 churning threads, and so does every kind of call it
//! makes: their durations include the same waits for a CPU.

use crate::common::{
    file_config, fs_name, fs_type, json_data, last_error, ms, populate_with, progress, take_id_of,
    thousands, timed, tmpfs_root, Handle,
};
use crate::floor::Dir;
use crate::report::Report;
use crate::Params;
use session::ffi::{session_store_create, session_store_destroy, session_store_remove_expired};
use std::collections::VecDeque;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Set in a child's environment to the store's JSON config: run as a churn worker.
pub const CHILD_ENV: &str = "BENCH_CHURN_CHILD";
const PROCESSES: usize = 2;
const THREADS: usize = 8;
/// Sessions each churning thread holds before it destroys its oldest.
const WINDOW: usize = 32;
/// A child stops by itself after this long, whatever happens to the bench.
const CHILD_LIMIT: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Counters {
    creates: AtomicU64,
    destroys: AtomicU64,
    errors: AtomicU64,
}

/// The child: churns until told to stop (or its stdin ends), then exits.
pub fn child_main(config: String) -> ! {
    let config = CString::new(config).expect("config without NUL");
    let h = Handle::open(&config);
    let data = json_data(13);
    let (go, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let counters = Counters::default();
    let begin = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| worker(&h, &data, &go, &stop, &counters, begin));
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ready").and_then(|()| out.flush());
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match line.trim() {
                "go" => go.store(true, Ordering::Release),
                "mark" => {
                    let _ = writeln!(
                        out,
                        "mark {} {} {}",
                        counters.creates.load(Ordering::Relaxed),
                        counters.destroys.load(Ordering::Relaxed),
                        counters.errors.load(Ordering::Relaxed)
                    )
                    .and_then(|()| out.flush());
                }
                "stop" => break,
                _ => {}
            }
        }
        stop.store(true, Ordering::Release);
        go.store(true, Ordering::Release);
    });
    drop(h);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "done").and_then(|()| out.flush());
    std::process::exit(0);
}

fn worker(
    h: &Handle,
    data: &CString,
    go: &AtomicBool,
    stop: &AtomicBool,
    c: &Counters,
    begin: Instant,
) {
    while !go.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut window: VecDeque<CString> = VecDeque::with_capacity(WINDOW + 1);
    let mut reported = false;
    let mut fail = |what: &str| {
        c.errors.fetch_add(1, Ordering::Relaxed);
        if !reported {
            eprintln!(
                "churn child {}: {what}: {}",
                std::process::id(),
                last_error()
            );
            reported = true;
        }
    };
    while !stop.load(Ordering::Relaxed) && begin.elapsed() < CHILD_LIMIT {
        // SAFETY: open handle, NUL-terminated data.
        let p = unsafe { session_store_create(h.raw(), data.as_ptr()) };
        if p.is_null() {
            fail("session_store_create");
            continue;
        }
        window.push_back(take_id_of(p, "session_store_create"));
        c.creates.fetch_add(1, Ordering::Relaxed);
        if window.len() > WINDOW {
            let id = window.pop_front().expect("non-empty");
            // SAFETY: open handle, NUL-terminated id.
            if unsafe { session_store_destroy(h.raw(), id.as_ptr()) } != 0 {
                c.destroys.fetch_add(1, Ordering::Relaxed);
            } else {
                fail("session_store_destroy");
            }
        }
    }
    for id in window {
        // SAFETY: open handle, NUL-terminated id.
        if unsafe { session_store_destroy(h.raw(), id.as_ptr()) } == 0 {
            fail("session_store_destroy");
        }
    }
}

struct Child {
    proc: std::process::Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Child {
    fn spawn(config: &CString) -> Child {
        let exe = std::env::current_exe().expect("the bench binary's path");
        let mut proc = Command::new(exe)
            .env(CHILD_ENV, config.to_str().expect("UTF-8 config"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start a churn child (the bench binary itself)");
        let stdin = proc.stdin.take().unwrap();
        let stdout = BufReader::new(proc.stdout.take().unwrap());
        Child {
            proc,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, cmd: &str) {
        writeln!(self.stdin, "{cmd}")
            .and_then(|()| self.stdin.flush())
            .expect("churn child gone");
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.stdout.read_line(&mut l).expect("churn child output");
        assert!(!l.is_empty(), "churn child exited early (see its stderr)");
        l.trim().to_string()
    }

    /// (creates, destroys, errors) so far.
    fn mark(&mut self) -> [u64; 3] {
        self.send("mark");
        let l = self.line();
        let v: Vec<u64> = l
            .strip_prefix("mark ")
            .unwrap_or_else(|| panic!("churn child said {l:?}"))
            .split(' ')
            .map(|x| x.parse().expect("counter"))
            .collect();
        [v[0], v[1], v[2]]
    }
}

/// Durations (ns) of one kind of the actor's calls.
#[derive(Default)]
struct Calls(Vec<f64>);

impl Calls {
    fn median(&self) -> f64 {
        crate::common::median_of(self.0.iter().copied())
    }
    fn max(&self) -> f64 {
        self.0.iter().copied().fold(0.0, f64::max)
    }
    fn p90(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v.get((v.len() * 9 / 10).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    }
    fn line(&self, what: &str, quiet: &Calls, tail: &str) -> String {
        format!(
            "{what:<44} {:>6} {:>9} {:>9} {:>9}   {:>9} {:>9}   {tail}",
            self.0.len(),
            ms(self.median()),
            ms(self.p90()),
            ms(self.max()),
            ms(quiet.median()),
            ms(quiet.max())
        )
    }
}

/// The third actor: remove_expired, a plain readdir, readdir + fstatat, in an
/// order that rotates every iteration, each call timed alone.
#[derive(Default)]
struct Actor {
    gc: Calls,
    plain: Calls,
    stat: Calls,
    removed: libc::c_long,
    /// Entries seen by each plain readdir.
    entries: Vec<f64>,
    i: usize,
}

impl Actor {
    fn iteration(&mut self, h: &Handle, dir: &Dir) {
        for slot in 0..3 {
            match (self.i + slot) % 3 {
                0 => {
                    let mut r = 0;
                    // SAFETY: open handle.
                    let ns = timed(|| r = unsafe { session_store_remove_expired(h.raw()) });
                    assert!(r >= 0, "session_store_remove_expired: {}", last_error());
                    self.gc.0.push(ns as f64);
                    self.removed += r;
                }
                1 => {
                    let mut n = 0;
                    self.plain.0.push(timed(|| n = dir.readdir_count()) as f64);
                    self.entries.push(n as f64);
                }
                _ => {
                    let ns = timed(|| {
                        dir.scan();
                    });
                    self.stat.0.push(ns as f64);
                }
            }
        }
        self.i += 1;
    }
}

fn mark_all(children: &mut [Child]) -> ([u64; 3], Instant) {
    let mut sum = [0u64; 3];
    for c in children.iter_mut() {
        let m = c.mark();
        for k in 0..3 {
            sum[k] += m[k];
        }
    }
    (sum, Instant::now())
}

pub fn phase(p: &Params, run_dir: &Path, rep: &mut Report, start: Instant) {
    let (root, _remove) = tmpfs_root(run_dir, "churn");
    std::fs::create_dir_all(&root).expect("churn directory");
    let fs = fs_type(&root).map_or("?", fs_name);
    progress(
        start,
        &format!(
            "cleanup under churn: populate {} in {} ({fs})",
            p.churn_base,
            root.display()
        ),
    );
    let config = file_config(&root, 3600);
    let h = Handle::open(&config);
    let dir = Dir::open(&root.join("sessions"));
    let data = json_data(14);
    let _ = populate_with(p.churn_base, |_| h.create(&data));

    let mut children: Vec<Child> = (0..PROCESSES).map(|_| Child::spawn(&config)).collect();
    for c in children.iter_mut() {
        let l = c.line();
        assert_eq!(l, "ready", "churn child said {l:?}");
    }
    // The same calls on the quiet directory first: what they cost without churn.
    let mut quiet = Actor::default();
    for _ in 0..p.scan_rounds * 3 {
        quiet.iteration(&h, &dir);
    }
    for c in children.iter_mut() {
        c.send("go");
    }
    std::thread::sleep(Duration::from_millis(500));
    let (m0, t0) = mark_all(&mut children);
    progress(
        start,
        &format!(
            "cleanup under churn: {PROCESSES} processes x {THREADS} threads churning; {:.0} s alone",
            p.churn_baseline.as_secs_f64()
        ),
    );
    std::thread::sleep(p.churn_baseline);
    let (m1, t1) = mark_all(&mut children);
    progress(
        start,
        &format!(
            "cleanup under churn: {:.0} s of remove_expired / readdir / readdir+fstatat",
            p.churn_secs.as_secs_f64()
        ),
    );
    let mut busy = Actor::default();
    while t1.elapsed() < p.churn_secs {
        busy.iteration(&h, &dir);
    }
    let (m2, t2) = mark_all(&mut children);
    for c in children.iter_mut() {
        c.send("stop");
    }
    for mut c in children {
        let l = c.line();
        assert_eq!(l, "done", "churn child said {l:?}");
        let status = c.proc.wait().expect("churn child");
        assert!(status.success(), "churn child failed: {status}");
    }
    let left = dir.readdir_count();
    drop(h);

    let rate =
        |a: [u64; 3], b: [u64; 3], k: usize, t: Duration| (b[k] - a[k]) as f64 / t.as_secs_f64();
    let (base_c, base_d) = (rate(m0, m1, 0, t1 - t0), rate(m0, m1, 1, t1 - t0));
    let (gc_c, gc_d) = (rate(m1, m2, 0, t2 - t1), rate(m1, m2, 1, t2 - t1));
    let errors = m2[2];
    let removed = busy.removed + quiet.removed;
    let (gc_max, plain_max) = (busy.gc.max(), busy.plain.max());
    let ratio = gc_max / plain_max;
    let verdict = rep.verdict(
        format!(
            "file remove_expired under churn: max duration <= 3x a plain readdir's max: {ratio:.2}x ({} ms / {} ms)",
            ms(gc_max),
            ms(plain_max)
        ),
        ratio <= 3.0,
    );
    rep.verdict(
        format!(
            "file remove_expired under churn deletes no live session and churn calls never fail: removed {removed}, {errors} failed calls, {} of {} base sessions left",
            thousands(left as f64),
            thousands(p.churn_base as f64)
        ),
        removed == 0 && errors == 0 && left == p.churn_base,
    );
    rep.churn = vec![
        format!(
            "{} ({fs}): {} live sessions, plus {PROCESSES} processes x {THREADS} threads each creating a session and destroying its oldest once it holds {WINDOW} (~{} entries)",
            root.display(),
            thousands(p.churn_base as f64),
            thousands(crate::common::median_of(busy.entries.iter().copied()))
        ),
        format!(
            "churn alone ({:.1} s):          {:>8} creates/s + {:>8} destroys/s",
            (t1 - t0).as_secs_f64(),
            thousands(base_c),
            thousands(base_d)
        ),
        format!(
            "churn during the actor ({:.1} s): {:>8} creates/s + {:>8} destroys/s ({:.0}% of alone); {errors} failed calls",
            (t2 - t1).as_secs_f64(),
            thousands(gc_c),
            thousands(gc_d),
            100.0 * (gc_c + gc_d) / (base_c + base_d)
        ),
        format!(
            "{:<44} {:>6} {:>9} {:>9} {:>9}   {:>9} {:>9}",
            "the actor's calls, in turn on one thread:",
            "calls",
            "median ms",
            "p90 ms",
            "max ms",
            "quiet med",
            "quiet max"
        ),
        busy.gc.line("session_store_remove_expired", &quiet.gc, &format!("removed {removed}")),
        busy.plain.line(
            "plain readdir",
            &quiet.plain,
            &format!(
                "remove_expired / it: median {:.2}x, max {ratio:.2}x  <= 3x (max) {verdict}",
                busy.gc.median() / busy.plain.median()
            )
        ),
        busy.stat.line(
            "readdir + fstatat of every entry",
            &quiet.stat,
            &format!(
                "remove_expired / it: median {:.2}x, max {:.2}x  info",
                busy.gc.median() / busy.stat.median(),
                gc_max / busy.stat.max()
            )
        ),
        format!(
            "quiet: the same calls on the same directory before the churn started (base sessions only, {} entries)",
            thousands(crate::common::median_of(quiet.entries.iter().copied()))
        ),
    ];
}
