//! What the library does with a session's contents: encryption at rest (`secret`)
//! and the owner index (`owner_key`), each beside its unencrypted twin or its
//! floor, measured in the same run with the calls interleaved.
//!
//! # Encryption at rest (phase 9b)
//! On tmpfs (the run directory if it is tmpfs, else a directory of ours in
//! /dev/shm): two file stores of `small` sessions of 200-byte JSON, one with a
//! `secret` (AES-256-GCM: every write seals with a fresh nonce, every read opens;
//! a sealed record is the data + 33 bytes) and its twin without; the same pair of
//! memory stores. Each through its own `session_store_t` handle. For get, then
//! for update, the store with a secret and its twin run in the same rounds,
//! interleaved call by call (the order rotates every call), on random sessions,
//! with the bare system calls on files as large as the unencrypted session files:
//! open+read+close for get, open+pwrite+close in place for update (information).
//! Before measuring, the bench checks that a sealed file does not hold the data in
//! clear and that the sealed get returns the data. Targets: the file driver's get
//! and update with a secret <= 1.25x the same call without. The memory driver's
//! rows are for information: there the call is a few hundred ns, so the AES-GCM
//! of 200 bytes (and the nonce from the OS for a write) is a large share of it.
//!
//! # Owner index: destroy_owner (phase 9c; Redis: 10b)
//! Stores with `"owner_key": "user_id"`: a large one holding `owner_large` sessions
//! of other owners (two sessions per owner, as users with a phone and a laptop),
//! and a small one holding `owner_small` such sessions. Four kinds of calls run
//! interleaved, rotating: `session_store_destroy_owner` of an owner with
//! `OWNED` (100) sessions in the large store, the same in the small store, and
//! the floor in each: `OWNED` x `session_store_destroy` of sessions made the same
//! way (one owner's, indexed), each destroy timed alone and summed. Before each
//! call its `OWNED` sessions are created, untimed. destroy_owner must return
//! exactly `OWNED`. Reported: calls/s, p50, p99 and mean of the call (median over
//! the rounds of the round means), per session. Target: destroy_owner in the large
//! store <= 1.5x in the small one (the cost follows the owner's sessions, not the
//! store's). Against the floor: information. destroy_owner lists the owner's
//! index entries, reads each session to check that it is live and still the
//! owner's, ends the sessions and removes the entries; the floor is how a caller
//! would end the same sessions without it (one destroy each, which in a store
//! with an owner index may have its own index work to do), so the ratio is a
//! comparison, not a bound.
//!
//! File and memory run after the churn (phase 9); the file stores are on tmpfs.
//! Redis runs after the Redis phase (10) on a redis-server of its own (the large
//! store in database 1, the small one in database 2), with the server pinned to
//! CPU 0 and the measuring thread to CPU 1 as the 1-thread Redis rounds are
//! (BENCH_REDIS_PIN=0: unpinned).

use crate::common::{
    cname, file_config, file_config_with, fs_name, fs_type, json_data, last_error, name,
    populate_with, progress, thousands, timed, tmpfs_root, Handle, Name, Rng,
};
use crate::floor::Dir;
use crate::redis_driver::{pin, redis_server::RedisServer, server_pid};
use crate::report::{pass_miss, Report};
use crate::stats::{run_rounds, run_rounds_n, Stat};
use crate::Params;
use session::ffi::{
    session_store_destroy, session_store_destroy_owner, session_store_get, session_store_update,
};
use std::ffi::{CStr, CString};
use std::path::Path;
use std::time::Instant;

/// The secret of the encrypted stores (at least 32 bytes).
const SECRET: &str = "session-bench secret: 48 bytes of test key data";
/// Target: a call with a secret at most this times the same call without.
const SEAL_TARGET: f64 = 1.25;
/// Sessions of the owner that destroy_owner ends.
const OWNED: usize = 100;
/// Target: destroy_owner in the large store at most this times in the small one.
const FLAT_TARGET: f64 = 1.5;
/// The owner whose sessions destroy_owner ends (`json_data(1)` has `"user_id":1`),
/// the owner of the floor's sessions, and the first of the other owners.
const OWNER: &CStr = c"1";
const OWNER_TAG: u64 = 1;
const FLOOR_OWNER_TAG: u64 = 2;
const OTHERS_TAG: u64 = 1_000;

fn memory_store_config(extra: serde_json::Value) -> CString {
    let mut sessions = serde_json::json!({"driver": "memory", "lifetime": 3600});
    if let (Some(s), Some(e)) = (sessions.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    CString::new(serde_json::json!({ "sessions": sessions }).to_string()).unwrap()
}

/// One timed `session_store_get`, checked and freed outside the timed region.
fn store_get(h: &Handle, id: &CStr) -> u64 {
    let mut out = std::ptr::null_mut();
    // SAFETY: open handle, NUL-terminated id.
    let ns = timed(|| out = unsafe { session_store_get(h.raw(), id.as_ptr()) });
    assert!(!out.is_null(), "session_store_get: {}", last_error());
    // SAFETY: malloc'd by libsession, ours to free.
    unsafe { libc::free(out.cast()) };
    ns
}

/// One timed `session_store_update`, checked.
fn store_update(h: &Handle, id: &CStr, data: &CStr) -> u64 {
    let mut ok = 0;
    // SAFETY: open handle, NUL-terminated strings.
    let ns = timed(|| ok = unsafe { session_store_update(h.raw(), id.as_ptr(), data.as_ptr()) });
    assert!(ok != 0, "session_store_update: {}", last_error());
    ns
}

/// The data of a session as the caller gets it back, untimed.
fn get_data(h: &Handle, id: &CStr) -> Vec<u8> {
    // SAFETY: open handle, NUL-terminated id.
    let out = unsafe { session_store_get(h.raw(), id.as_ptr()) };
    assert!(!out.is_null(), "session_store_get: {}", last_error());
    // SAFETY: a NUL-terminated string malloc'd by libsession, ours to free.
    let data = unsafe { CStr::from_ptr(out) }.to_bytes().to_vec();
    // SAFETY: as above.
    unsafe { libc::free(out.cast()) };
    data
}

/// How a table shows latencies: ns (encryption) or µs with one decimal (destroy_owner).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Ns,
    Us,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
        }
    }
    fn show(self, ns: f64) -> String {
        match self {
            Unit::Ns => thousands(ns),
            Unit::Us => format!("{:.1}", ns / 1e3),
        }
    }
}

/// The column heads of a table.
fn head(first: &str, op: &str, what: &str, unit: Unit) -> [String; 2] {
    let u = unit.name();
    let h = format!(
        "{:<6} {:>7} {:<7} {:<38} {:>9} {:>8} {:>8} {:>8} {:>16}  target",
        "driver",
        first,
        op,
        what,
        "ops/s",
        format!("p50 {u}"),
        format!("p99 {u}"),
        format!("avg {u}"),
        "ratio avg (p50)"
    );
    let rule = "-".repeat(h.len() + 8);
    [h, rule]
}

/// One line of measured values; `left` holds the driver, size and op (or blanks).
fn line(left: &str, what: &str, s: &Stat, ratio: &str, target: &str, unit: Unit) -> String {
    let avg = s.median();
    format!(
        "{left:<22} {what:<38} {:>9} {:>8} {:>8} {:>8} {ratio:>16}  {target}",
        thousands(1e9 / avg),
        unit.show(s.percentile(0.5) as f64),
        unit.show(s.p99() as f64),
        unit.show(avg),
    )
    .trim_end()
    .to_string()
}

/// Adds a section to the report, after a blank line if it is not the first.
fn push_section(rep: &mut Report, lines: Vec<String>) {
    if !rep.contents.is_empty() {
        rep.contents.push(String::new());
    }
    rep.contents.extend(lines);
}

/// "1.09x (1.07x)": the ratio of the means (medians of round means) and of the p50s.
fn ratios(ours: &Stat, other: &Stat) -> (f64, String) {
    let avg = ours.median() / other.median();
    let p50 = ours.percentile(0.5) as f64 / other.percentile(0.5) as f64;
    (avg, format!("{avg:.2}x ({p50:.2}x)"))
}

/// The rows of one operation: ours with a secret, its twin (with the target) and
/// a floor (information).
#[allow(clippy::too_many_arguments)]
fn seal_rows(
    rep: &mut Report,
    lines: &mut Vec<String>,
    driver: &str,
    n: usize,
    op: &str,
    stats: Vec<Stat>,
    floor: Option<&str>,
    target: Option<f64>,
) {
    let mut it = stats.into_iter();
    let (sealed, plain) = (it.next().unwrap(), it.next().unwrap());
    let left = format!("{driver:<6} {:>7} {op:<7}", thousands(n as f64));
    lines.push(line(
        &left,
        "with secret (AES-256-GCM)",
        &sealed,
        "",
        "",
        Unit::Ns,
    ));
    let (ratio, text) = ratios(&sealed, &plain);
    let verdict = match target {
        Some(t) => {
            let pass = ratio <= t;
            rep.verdicts.push((
                format!(
                    "{driver} {op} with a secret at {} stored <= {t}x without (same rounds): {ratio:.2}x",
                    thousands(n as f64)
                ),
                pass,
            ));
            format!("<= {t}x {}", pass_miss(pass))
        }
        None => "info".into(),
    };
    lines.push(line(
        "",
        "no secret (twin, same rounds)",
        &plain,
        &text,
        &verdict,
        Unit::Ns,
    ));
    if let (Some(label), Some(f)) = (floor, it.next()) {
        let (_, text) = ratios(&sealed, &f);
        lines.push(line("", label, &f, &text, "info", Unit::Ns));
    }
}

/// Phase 9b: get and update with a secret against the same store without.
pub fn encryption(p: &Params, run_dir: &Path, rep: &mut Report, start: Instant) {
    let n = p.small;
    let (root, _remove) = tmpfs_root(run_dir, "seal");
    std::fs::create_dir_all(&root).expect("encryption directory");
    let fs = fs_type(&root).map_or("?", fs_name);
    progress(
        start,
        &format!(
            "encryption at rest: file stores of {n} with and without a secret in {} ({fs})",
            root.display()
        ),
    );
    let (plain_root, sealed_root) = (root.join("plain"), root.join("sealed"));
    for d in [&plain_root, &sealed_root] {
        std::fs::create_dir_all(d).expect("encryption store directory");
    }
    let with_secret = serde_json::json!({ "secret": SECRET });
    let plain = Handle::open(&file_config(&plain_root, 3600));
    let sealed = Handle::open(&file_config_with(&sealed_root, 3600, with_secret.clone()));
    let (plain_ids, _, _) = populate_with(n, |i| plain.create(&json_data(i as u64)));
    let (sealed_ids, _, _) = populate_with(n, |i| sealed.create(&json_data(i as u64)));
    let plain_dir = Dir::open(&plain_root.join("sessions"));
    let sealed_dir = Dir::open(&sealed_root.join("sessions"));

    // Encryption is really on: the file holds no plaintext, is 33 bytes longer, and
    // a get gives the data back.
    let mut rbuf = vec![0u8; 16 * 1024];
    let got = sealed_dir.read(sealed_ids[0].as_ptr(), &mut rbuf);
    let clear = rbuf[..got].windows(12).any(|w| w == b"Ada Lovelace");
    assert!(!clear, "the store with a secret wrote the data in clear");
    assert_eq!(get_data(&sealed, &sealed_ids[0]), json_data(0).as_bytes());
    let plain_len = plain_dir.size_of(plain_ids[0].as_ptr());
    let sealed_len = sealed_dir.size_of(sealed_ids[0].as_ptr());

    let mut rng = Rng(0x5ea1_u64 | 1);
    let upd = [json_data(2), json_data(3)];
    let fbuf: Vec<u8> = upd[0]
        .as_bytes()
        .iter()
        .cycle()
        .take(plain_len)
        .copied()
        .collect();
    let upd_files: Vec<Name> = (0..n.min(p.ops) as u64).map(|i| name('u', i)).collect();
    for f in &upd_files {
        plain_dir.create_excl(cname(f), &fbuf);
    }

    progress(
        start,
        &format!("encryption at rest: file get/update with {n} stored"),
    );
    let get = run_rounds(p, 3, |k, _| {
        let j = rng.below(n);
        match k {
            0 => store_get(&sealed, &sealed_ids[j]),
            1 => store_get(&plain, &plain_ids[j]),
            _ => {
                let mut got = 0;
                let ns = timed(|| got = plain_dir.read(plain_ids[j].as_ptr(), &mut rbuf));
                assert_eq!(got, plain_len);
                ns
            }
        }
    });
    let update = run_rounds(p, 3, |k, g| {
        let j = rng.below(n);
        match k {
            0 => store_update(&sealed, &sealed_ids[j], &upd[g & 1]),
            1 => store_update(&plain, &plain_ids[j], &upd[g & 1]),
            _ => {
                let f = &upd_files[rng.below(upd_files.len())];
                timed(|| plain_dir.pwrite_in_place(cname(f), &fbuf))
            }
        }
    });
    drop((plain, sealed));

    progress(
        start,
        &format!("encryption at rest: memory get/update with {n} stored"),
    );
    let mplain = Handle::open(&memory_store_config(serde_json::json!({})));
    let msealed = Handle::open(&memory_store_config(with_secret));
    let (mplain_ids, _, _) = populate_with(n, |i| mplain.create(&json_data(i as u64)));
    let (msealed_ids, _, _) = populate_with(n, |i| msealed.create(&json_data(i as u64)));
    assert_eq!(get_data(&msealed, &msealed_ids[0]), json_data(0).as_bytes());
    let mget = run_rounds(p, 2, |k, _| {
        let j = rng.below(n);
        match k {
            0 => store_get(&msealed, &msealed_ids[j]),
            _ => store_get(&mplain, &mplain_ids[j]),
        }
    });
    let mupdate = run_rounds(p, 2, |k, g| {
        let j = rng.below(n);
        match k {
            0 => store_update(&msealed, &msealed_ids[j], &upd[g & 1]),
            _ => store_update(&mplain, &mplain_ids[j], &upd[g & 1]),
        }
    });
    drop((mplain, msealed));

    let mut lines = vec![
        format!(
            "encryption at rest: a store with \"secret\" (AES-256-GCM) against its twin without, {} rounds x {} calls, interleaved call by call; file stores on {fs} ({})",
            p.rounds,
            p.ops,
            root.display()
        ),
        format!(
            "session data {} bytes: {plain_len}-byte file without a secret, {sealed_len} with; avg = median of the round means (as ns/op above); ratio = with secret / that line",
            crate::common::DATA_LEN
        ),
    ];
    lines.extend(head("stored", "op", "store", Unit::Ns));
    let target = Some(SEAL_TARGET);
    let (read, pwrite) = (
        Some("open+read+close (floor)"),
        Some("open+pwrite+close in place (floor)"),
    );
    seal_rows(rep, &mut lines, "file", n, "get", get, read, target);
    seal_rows(rep, &mut lines, "file", n, "update", update, pwrite, target);
    seal_rows(rep, &mut lines, "memory", n, "get", mget, None, None);
    seal_rows(rep, &mut lines, "memory", n, "update", mupdate, None, None);
    push_section(rep, lines);
}

/// The two stores of a driver for destroy_owner: `large` and `small` other sessions.
struct OwnerStores {
    driver: &'static str,
    large: Handle,
    small: Handle,
}

/// Creates `n` sessions of other owners (two per owner) in `h` with `threads`
/// threads; returns the seconds it took.
fn fill_others(h: &Handle, n: usize, threads: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    h.create(&json_data(OTHERS_TAG + (i / 2) as u64));
                }
            });
        }
    });
    t.elapsed().as_secs_f64()
}

/// The four interleaved kinds of calls (see the top of the file); returns
/// [destroy_owner large, destroy_owner small, floor large, floor small].
fn destroy_owner_rounds(s: &OwnerStores, rounds: usize, ops: usize) -> Vec<Stat> {
    let (owned, other) = (json_data(OWNER_TAG), json_data(FLOOR_OWNER_TAG));
    let stores = [&s.large, &s.small];
    let call = |k: usize| -> u64 {
        let h = stores[k % 2];
        if k < 2 {
            for _ in 0..OWNED {
                h.create(&owned);
            }
            let mut ended = 0;
            // SAFETY: open handle, NUL-terminated owner.
            let ns =
                timed(|| ended = unsafe { session_store_destroy_owner(h.raw(), OWNER.as_ptr()) });
            assert_eq!(
                ended,
                OWNED as libc::c_long,
                "{} session_store_destroy_owner: {}",
                s.driver,
                last_error()
            );
            ns
        } else {
            let ids: Vec<CString> = (0..OWNED).map(|_| h.create(&other)).collect();
            let mut sum = 0;
            for id in &ids {
                let mut ok = 0;
                // SAFETY: open handle, NUL-terminated id.
                sum += timed(|| ok = unsafe { session_store_destroy(h.raw(), id.as_ptr()) });
                assert!(
                    ok != 0,
                    "{} session_store_destroy: {}",
                    s.driver,
                    last_error()
                );
            }
            sum
        }
    };
    for k in 0..4 {
        call(k); // warm-up
    }
    run_rounds_n(rounds, ops, 4, |k, _| call(k))
}

/// The table rows and targets of one driver's destroy_owner.
fn owner_report(p: &Params, s: &OwnerStores, stats: Vec<Stat>, rep: &mut Report) -> Vec<String> {
    let (large, small) = (p.owner_large, p.owner_small);
    let mut lines = Vec::new();
    let labels = [
        (large, "destroy_owner, 100 sessions"),
        (small, "destroy_owner, 100 sessions"),
        (large, "100 x session_store_destroy (floor)"),
        (small, "100 x session_store_destroy (floor)"),
    ];
    for (k, (others, what)) in labels.iter().enumerate() {
        let left = format!("{:<6} {:>7} {:<7}", s.driver, thousands(*others as f64), "");
        let (ratio, target) = match k {
            1 => {
                let (r, text) = ratios(&stats[0], &stats[1]);
                let pass = r <= FLAT_TARGET;
                rep.verdicts.push((
                    format!(
                        "{} destroy_owner of 100 among {} sessions <= {FLAT_TARGET}x among {}: {r:.2}x",
                        s.driver,
                        thousands(large as f64),
                        thousands(small as f64)
                    ),
                    pass,
                ));
                (
                    text,
                    format!("<= {FLAT_TARGET}x {} (large / this)", pass_miss(pass)),
                )
            }
            2 => (
                ratios(&stats[0], &stats[2]).1,
                "info (destroy_owner / this)".into(),
            ),
            3 => (
                ratios(&stats[1], &stats[3]).1,
                "info (destroy_owner / this)".into(),
            ),
            _ => (String::new(), String::new()),
        };
        lines.push(line(&left, what, &stats[k], &ratio, &target, Unit::Us));
    }
    let (floor_moved, _) = ratios(&stats[2], &stats[3]);
    lines.push(format!(
        "{:<6} per session: destroy_owner {} / {} ns, floor {} / {} ns (large / small); the floor moved {floor_moved:.2}x from {} to {} stored",
        s.driver,
        thousands(stats[0].median() / OWNED as f64),
        thousands(stats[1].median() / OWNED as f64),
        thousands(stats[2].median() / OWNED as f64),
        thousands(stats[3].median() / OWNED as f64),
        thousands(small as f64),
        thousands(large as f64),
    ));
    lines
}

/// The common header of the destroy_owner tables.
fn owner_header(p: &Params, rounds: usize, ops: usize, notes: &[String]) -> Vec<String> {
    let mut lines = vec![format!(
        "destroy_owner: {OWNED} sessions of one owner among {} (then {}) sessions of other owners (two each), \"owner_key\": \"user_id\"; {rounds} rounds x {ops} calls of each of the four, interleaved; each call's {OWNED} sessions created just before it, untimed",
        thousands(p.owner_large as f64),
        thousands(p.owner_small as f64)
    )];
    lines.extend(notes.iter().cloned());
    lines.push(
        "ops/s = calls/s (each ends 100 sessions); p50/p99 over all calls, avg = median of the round means; ratio avg (p50)"
            .into(),
    );
    lines.extend(head("others", "", "call", Unit::Us));
    lines
}

/// Phase 9c: destroy_owner on the file driver (tmpfs) and the memory driver.
pub fn owner_local(p: &Params, run_dir: &Path, rep: &mut Report, start: Instant) {
    let (large, small) = (p.owner_large, p.owner_small);
    let (root, _remove) = tmpfs_root(run_dir, "owner");
    let owner_key = serde_json::json!({"owner_key": "user_id"});
    std::fs::create_dir_all(&root).expect("owner directory");
    let fs = fs_type(&root).map_or("?", fs_name);
    let mut notes = Vec::new();
    let mut body = Vec::new();
    for driver in ["file", "memory"] {
        let open = |label: &str| {
            if driver == "file" {
                let r = root.join(label);
                std::fs::create_dir_all(&r).expect("owner store directory");
                Handle::open(&file_config_with(&r, 3600, owner_key.clone()))
            } else {
                Handle::open(&memory_store_config(owner_key.clone()))
            }
        };
        let s = OwnerStores {
            driver,
            large: open("large"),
            small: open("small"),
        };
        progress(
            start,
            &format!(
                "owner index, {driver}: populate {large} and {small} sessions of other owners"
            ),
        );
        let (tl, ts) = (
            fill_others(&s.large, large, 1),
            fill_others(&s.small, small, 1),
        );
        notes.push(format!(
            "populate {driver} (owner index{}): {} in {tl:.2} s ({} ns/create), {} in {ts:.2} s",
            if driver == "file" {
                format!(", {fs}: {}", root.display())
            } else {
                String::new()
            },
            thousands(large as f64),
            thousands(tl * 1e9 / large as f64),
            thousands(small as f64)
        ));
        progress(
            start,
            &format!("owner index, {driver}: destroy_owner rounds"),
        );
        let stats = destroy_owner_rounds(&s, p.owner_rounds, p.owner_ops);
        body.extend(owner_report(p, &s, stats, rep));
    }
    let mut lines = owner_header(p, p.owner_rounds, p.owner_ops, &notes);
    lines.extend(body);
    push_section(rep, lines);
}

/// Phase 10b: destroy_owner on the Redis driver, on a redis-server of its own.
pub fn owner_redis(p: &Params, rep: &mut Report, start: Instant) {
    const THREADS: usize = 8;
    let (large, small) = (p.owner_large, p.owner_small);
    progress(start, "owner index, redis: starting redis-server");
    let server = RedisServer::start(&[]);
    let open = |db: u32| {
        let config = serde_json::json!({"sessions": {
            "driver": "redis", "url": format!("{}/{db}", server.url()), "lifetime": 3600,
            "pool_size": 16, "command_timeout_ms": 1000, "owner_key": "user_id"
        }});
        Handle::open(&CString::new(config.to_string()).unwrap())
    };
    let s = OwnerStores {
        driver: "redis",
        large: open(1),
        small: open(2),
    };
    progress(
        start,
        &format!("owner index, redis: populate {large} and {small} sessions of other owners ({THREADS} threads)"),
    );
    let (tl, ts) = (
        fill_others(&s.large, large, THREADS),
        fill_others(&s.small, small, THREADS),
    );
    let all_cpus: Vec<usize> =
        (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    let pinning = std::env::var("BENCH_REDIS_PIN").map_or(true, |v| v != "0")
        && all_cpus.len() >= 2
        && server_pid(&server).is_some_and(|pid| pin(pid, &[0]));
    progress(start, "owner index, redis: destroy_owner rounds");
    // A thread of its own, so that the pinning ends with it.
    let stats = std::thread::scope(|sc| {
        sc.spawn(|| {
            if pinning {
                assert!(pin(0, &[1]), "cannot pin the bench thread to CPU 1");
            }
            destroy_owner_rounds(&s, p.owner_rounds, p.owner_ops)
        })
        .join()
        .unwrap()
    });
    let notes = [
        format!(
            "populate redis (owner index, {THREADS} threads): {} in {tl:.2} s, {} in {ts:.2} s; {}; redis-server of its own, large store in db 1, small in db 2",
            thousands(large as f64),
            thousands(small as f64),
            if pinning {
                "server pinned to CPU 0, the measuring thread to CPU 1"
            } else {
                "nothing pinned"
            }
        ),
    ];
    let mut lines = owner_header(p, p.owner_rounds, p.owner_ops, &notes);
    lines.extend(owner_report(p, &s, stats, rep));
    push_section(rep, lines);
    drop(s);
    drop(server);
}
