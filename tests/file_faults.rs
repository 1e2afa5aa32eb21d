//! Fault injection on the file driver (issue 9, item 3): writers killed with
//! SIGKILL at random instants, a full disk (RLIMIT_FSIZE), an unwritable storage
//! root, damaged files, a clock that stepped back, and symlinks or hard links
//! planted under a valid id's name.
//!
//! Child processes are this test binary run again with `FILE_FAULTS_ROLE` set and
//! one `#[ignore]`d role test selected (`--ignored --exact`), so a child never
//! inherits the harness's threads the way a `fork()` would. Every child is killed
//! and reaped by a guard, also when an assertion fails.

mod support;

use session::config::Config;
use session::{SessionError, Sessions};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use support::temp::TempDir;

const ROLE: &str = "FILE_FAULTS_ROLE";
const DIR: &str = "FILE_FAULTS_DIR";
const LOG: &str = "FILE_FAULTS_LOG";

/// The file driver with its storage root at `root` (sessions in `root/sessions`).
fn open(root: &Path, lifetime_secs: u64) -> session::Result<Sessions> {
    let json = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "lifetime": {lifetime_secs}}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        root.display()
    );
    Sessions::open(&Config::from_json(json.as_bytes()).unwrap())
}

fn file_sessions(root: &Path, lifetime_secs: u64) -> Sessions {
    open(root, lifetime_secs).unwrap()
}

/// A small xorshift generator: no dependency, a different stream per process.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Rng((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs this test binary again as the child role `test` (an ignored test).
fn child(test: &str, envs: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, test)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

/// Whether this process runs as the child role `test`; false in a normal run.
fn is_role(test: &str) -> bool {
    std::env::var(ROLE).as_deref() == Ok(test)
}

/// Kills (SIGKILL) and reaps every child it holds when dropped: no test leaves a
/// process behind, also when an assertion fails.
#[derive(Default)]
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// 1. SIGKILL at random instants
// ---------------------------------------------------------------------------

/// One member value, self-checking: `K:` then a length and fill byte that both
/// depend on the counter K. A torn or mixed write cannot produce another valid one.
fn member(k: u64) -> String {
    let fill = char::from(b'a' + (k % 26) as u8);
    let len = [5, 3_000, 20_000, 100, 9_000, 40][(k % 6) as usize] + (k % 13) as usize;
    let mut text = format!("{k}:");
    text.extend(std::iter::repeat(fill).take(len));
    text
}

/// The counter of a member value, checking that every byte belongs to it.
fn parse_member(text: &str) -> u64 {
    let (k, body) = text.split_once(':').expect("member without counter");
    let k: u64 = k.parse().expect("member counter");
    assert_eq!(
        body,
        &member(k)[k.to_string().len() + 1..],
        "torn member {k}"
    );
    k
}

/// A session's data: its label (the logical session, which survives regenerate),
/// `p` set by update (which drops `q`), `q` set by set_value.
fn data(label: &str, p: u64) -> Vec<u8> {
    serde_json::json!({"label": label, "p": member(p)})
        .to_string()
        .into_bytes()
}

/// Parses a session's data: (label, p, q), checking every member.
fn parse_data(bytes: &[u8]) -> (String, u64, Option<u64>) {
    let value: serde_json::Value = serde_json::from_slice(bytes).expect("session is not JSON");
    let object = value.as_object().expect("session is not an object");
    let label = object["label"].as_str().expect("label").to_string();
    let p = parse_member(object["p"].as_str().expect("p"));
    let q = object
        .get("q")
        .map(|q| parse_member(q.as_str().expect("q")));
    (label, p, q)
}

/// One writer process: creates, updates, set_values, regenerates and destroys its
/// own sessions in a shared directory until it is killed. Each call is logged in
/// `FILE_FAULTS_LOG` with one `write(2)` before it (`B ...`) and one after it
/// returned successfully (`A ...`), so after a SIGKILL the parent knows which
/// calls completed and which one at most was in flight.
#[test]
#[ignore = "child role of every_session_survives_writers_killed_at_random_instants"]
fn role_killed_writer() {
    if !is_role("role_killed_writer") {
        return;
    }
    let root = PathBuf::from(std::env::var(DIR).unwrap());
    let log_path = std::env::var(LOG).unwrap();
    let incarnation = Path::new(&log_path)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let mut line = |text: String| log.write_all(format!("{text}\n").as_bytes()).unwrap();
    let s = file_sessions(&root, 3600);
    let mut rng = Rng::seeded();
    let mut live: Vec<(String, String)> = Vec::new(); // (label, id)
    let mut k: u64 = 0;
    let mut labels = 0;
    loop {
        k += 1;
        let op = rng.below(100);
        if live.len() < 4 || (op < 8 && live.len() < 30) {
            labels += 1;
            let label = format!("{incarnation}-{labels}");
            line(format!("B create {label} - {k}"));
            let id = s.create(&data(&label, k)).unwrap();
            line(format!("A create {label} {id} {k}"));
            live.push((label, id.as_str().to_string()));
            continue;
        }
        let at = rng.below(live.len() as u64) as usize;
        let (label, id) = live[at].clone();
        if op < 45 {
            line(format!("B update {label} {id} {k}"));
            s.update(id.as_bytes(), &data(&label, k)).unwrap();
            line(format!("A update {label} {id} {k}"));
        } else if op < 85 {
            line(format!("B set {label} {id} {k}"));
            let value = serde_json::Value::from(member(k)).to_string();
            s.set_value(id.as_bytes(), b"q", value.as_bytes()).unwrap();
            line(format!("A set {label} {id} {k}"));
        } else if op < 95 {
            line(format!("B regen {label} {id} -"));
            let new = s.regenerate(id.as_bytes()).unwrap();
            line(format!("A regen {label} {id} {new}"));
            live[at].1 = new.as_str().to_string();
        } else {
            line(format!("B destroy {label} {id} -"));
            s.destroy(id.as_bytes()).unwrap();
            line(format!("A destroy {label} {id} -"));
            live.swap_remove(at);
        }
    }
}

/// A session's (p, q) counters.
type Members = (u64, Option<u64>);

/// What the logs say about one logical session.
#[derive(Debug, Default, Clone)]
struct Expect {
    /// Its id after the last completed call (None: created in flight).
    id: Option<String>,
    /// (p, q) after the last completed call.
    done: Option<Members>,
    /// The call in flight when its writer was killed, if any: (op, p, q after it).
    pending: Option<(String, Option<Members>)>,
    destroyed: bool,
}

/// Replays the logs: every label and what it must look like now.
fn replay(logs: &[PathBuf]) -> HashMap<String, Expect> {
    let mut all = HashMap::new();
    for path in logs {
        // Empty when the writer was killed before opening it.
        let mut text = std::fs::read_to_string(path).unwrap_or_default();
        // A writer killed inside its write(2) may leave the last line cut short.
        // Dropping that fragment is right either way: a cut "B" line means the
        // call never started (it is logged before the call), and a cut "A" line
        // leaves its "B" without an "A", so the call counts as in flight (old or
        // new value allowed).
        if !text.ends_with('\n') {
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            text.truncate(keep);
        }
        for row in text.lines() {
            let f: Vec<&str> = row.split(' ').collect();
            assert_eq!(f.len(), 5, "log row {row:?}");
            let (phase, op, label, id, arg) = (f[0], f[1], f[2], f[3], f[4]);
            let e: &mut Expect = all.entry(label.to_string()).or_default();
            let after = match op {
                "create" | "update" => Some((arg.parse().unwrap(), None)),
                "set" => e.done.map(|(p, _)| (p, Some(arg.parse().unwrap()))),
                _ => e.done,
            };
            if phase == "B" {
                e.pending = Some((op.to_string(), after));
                continue;
            }
            assert_eq!(phase, "A", "log row {row:?}");
            e.pending = None;
            e.done = after;
            match op {
                "create" => e.id = Some(id.to_string()),
                "regen" => e.id = Some(arg.to_string()),
                "destroy" => e.destroyed = true,
                _ => {}
            }
        }
    }
    all
}

#[test]
fn every_session_survives_writers_killed_at_random_instants() {
    const WRITERS: usize = 4;
    let dir = TempDir::new("faults-kill");
    let root = dir.join("store");
    let logs_dir = dir.join("logs");
    std::fs::create_dir_all(&logs_dir).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    // Configure (create the directory) before any writer starts.
    drop(file_sessions(&root, 3600));
    let root_text = root.to_str().unwrap().to_string();
    let mut logs = Vec::new();
    let spawn = |logs: &mut Vec<PathBuf>| {
        let log = logs_dir.join(format!("w{}", logs.len()));
        let child = child(
            "role_killed_writer",
            &[(DIR, &root_text), (LOG, log.to_str().unwrap())],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
        logs.push(log);
        child
    };
    let mut children = Children::default();
    for _ in 0..WRITERS {
        let c = spawn(&mut logs);
        children.0.push(c);
    }
    let mut rng = Rng::seeded();
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(20 + rng.below(250)));
        let at = rng.below(WRITERS as u64) as usize;
        let victim = &mut children.0[at];
        // A writer that exited on its own failed an unwrap: a library error.
        assert!(
            victim.try_wait().unwrap().is_none(),
            "writer {at} exited on its own"
        );
        victim.kill().unwrap();
        victim.wait().unwrap();
        kills += 1;
        children.0[at] = spawn(&mut logs);
    }
    for victim in &mut children.0 {
        assert!(victim.try_wait().unwrap().is_none(), "a writer exited");
        victim.kill().unwrap();
        victim.wait().unwrap();
    }
    drop(children);

    let expected = replay(&logs);
    let completed: usize = logs
        .iter()
        .map(|log| {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            text.lines().filter(|row| row.starts_with("A ")).count()
        })
        .sum();
    // Before any call: how many regenerates were killed between writing the
    // descriptor tagged with the new id and the rename (the file under the old
    // name carries the new id's tag), for the report. The API calls below must
    // give each of them back to the old id.
    let mut torn_regenerates = 0;
    for e in expected.values() {
        let (Some(old), Some(("regen", _))) =
            (&e.id, e.pending.as_ref().map(|(op, p)| (op.as_str(), p)))
        else {
            continue;
        };
        use session::store::file::format::{descriptors, tag, DESC_LEN};
        let Ok(bytes) = std::fs::read(root.join("sessions").join(old)) else {
            continue;
        };
        let header = &bytes[..bytes.len().min(2 * DESC_LEN)];
        let old_id = session::SessionId::parse(old.as_bytes()).unwrap();
        if descriptors(header)
            .first()
            .is_some_and(|(_, d)| d.tag != tag(&old_id))
        {
            torn_regenerates += 1;
        }
    }
    let s = file_sessions(&root, 3600);
    let allowed = |e: &Expect, got: Members, label: &str| {
        let ok = e.done == Some(got) || e.pending.as_ref().is_some_and(|(_, p)| *p == Some(got));
        assert!(ok, "{label}: read {got:?}, expected {e:?}");
    };
    // First every known id through the API: this also repairs a regenerate that
    // was killed between its two steps (the next call on the old id does).
    let mut labels_seen = 0;
    for (label, e) in &expected {
        labels_seen += 1;
        let Some(id) = &e.id else { continue };
        let got = s.get(id.as_bytes());
        let pending = e.pending.as_ref().map(|(op, _)| op.as_str());
        match (got, e.destroyed, pending) {
            (Ok(bytes), false, _) => {
                let (l, p, q) = parse_data(&bytes);
                assert_eq!(&l, label);
                allowed(e, (p, q), label);
            }
            (Err(err), true, _) => assert_eq!(err.code, SessionError::NotFound, "{label}"),
            // Destroyed or moved by the call in flight.
            (Err(err), false, Some("destroy" | "regen")) => {
                assert_eq!(err.code, SessionError::NotFound, "{label}")
            }
            (got, destroyed, pending) => panic!(
                "{label} ({id}): {:?}, destroyed {destroyed}, in flight {pending:?}",
                got.map(|b| b.len())
            ),
        }
    }
    // Then every file in the directory: each label is live under exactly one id.
    let mut seen: HashMap<String, String> = HashMap::new();
    // A writer killed between its data `pwrite` and the `futimens` that sets the
    // mtime to the session's end leaves an mtime of "now": `ids` and `count` judge
    // such a file by its descriptor (`count_and_ids_see_a_session_whose_update_was_
    // killed` below). `remove_expired` checks such files under the lock and repairs
    // their mtime; it must delete no live session doing so (abandoned creates are
    // younger than ABANDONED_AFTER, so they stay too).
    let hidden = s.count().unwrap();
    assert_eq!(
        s.remove_expired().unwrap(),
        0,
        "remove_expired deleted a session"
    );
    let listed: Vec<String> = s
        .ids()
        .unwrap()
        .iter()
        .map(|id| id.as_str().to_string())
        .collect();
    assert_eq!(s.count().unwrap(), listed.len() as u64);
    let hidden = (listed.len() as u64).saturating_sub(hidden);
    for id in &listed {
        match s.get(id.as_bytes()) {
            Ok(bytes) => {
                let (label, p, q) = parse_data(&bytes);
                let e = expected.get(&label).expect("a session no writer created");
                allowed(e, (p, q), &label);
                if let Some(other) = seen.insert(label.clone(), id.as_str().to_string()) {
                    panic!("{label} is live under two ids: {other} and {id}");
                }
            }
            // A file whose creator was killed before its descriptor was written.
            Err(err) => assert_eq!(err.code, SessionError::NotFound, "{id}"),
        }
    }
    let mut in_flight = 0;
    for (label, e) in &expected {
        let pending = e.pending.as_ref().map(|(op, _)| op.as_str());
        let live = seen.get(label);
        match (e.destroyed, pending) {
            (true, _) => assert!(live.is_none(), "{label} destroyed but live"),
            (false, Some("create")) => {} // created or not
            (false, Some("destroy")) => {
                if let Some(id) = live {
                    assert_eq!(Some(id), e.id.as_ref(), "{label}");
                }
            }
            (false, Some("regen")) => {
                // Exactly one of the old and the new id holds it.
                let id = live.unwrap_or_else(|| panic!("{label} lost by a regenerate"));
                if id != e.id.as_ref().unwrap() {
                    in_flight += 1;
                    assert_eq!(
                        s.get(e.id.as_ref().unwrap().as_bytes()).unwrap_err().code,
                        SessionError::NotFound
                    );
                }
            }
            _ => assert_eq!(
                live,
                e.id.as_ref(),
                "{label} lost or moved: {e:?}; listed by ids(): {}; get now: {:?}",
                listed.contains(e.id.as_ref().unwrap()),
                s.get(e.id.as_ref().unwrap().as_bytes())
                    .map(|b| parse_data(&b))
            ),
        }
    }
    eprintln!(
        "{kills} kills, {} writer runs, {completed} calls completed, {labels_seen} sessions, \
         {} live, {torn_regenerates} regenerates killed between their two steps, \
         {in_flight} regenerates completed but unlogged, {hidden} hidden from count \
         until remove_expired",
        logs.len(),
        seen.len()
    );
    assert!(kills >= 20, "only {kills} kills");
    assert!(seen.len() >= 4, "too few sessions to mean anything");
}

/// Once a library bug, seen by the SIGKILL test: a writer killed after its data
/// `pwrite` (which sets the mtime to now) and before the `futimens` that sets it to
/// the session's end left a live session that `get` found but `count` and `ids`
/// left out (they judged by `mtime > now` alone) until a `remove_expired` repaired
/// the mtime. The same came from an update that failed with EFBIG/ENOSPC part-way
/// through its data write. They now judge such a file (an mtime the driver did not
/// set) by its descriptor.
#[test]
fn count_and_ids_see_a_session_whose_update_was_killed() {
    use std::os::unix::fs::FileExt;
    let dir = TempDir::new("faults-bug");
    let s = file_sessions(dir.path(), 3600);
    let id = s.create(b"{\"a\":1}").unwrap();
    let path = dir.join("sessions").join(id.as_str());
    // What write_data does before it is killed: new data past the live version.
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    let len = file.metadata().unwrap().len();
    file.write_all_at(b"{\"a\":2}", len).unwrap();
    drop(file);
    std::thread::sleep(Duration::from_millis(10));
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"{\"a\":1}");
    assert_eq!(s.count().unwrap(), 1, "a live session is not counted");
    assert_eq!(s.ids().unwrap().len(), 1, "a live session is not listed");
}

// ---------------------------------------------------------------------------
// 2. Full disk: RLIMIT_FSIZE in a child process
// ---------------------------------------------------------------------------

fn set_file_size_limit(limit: libc::rlim_t) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut rl) }, 0);
    rl.rlim_cur = limit.min(rl.rlim_max);
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &rl) }, 0);
}

fn big_object(fill: char, len: usize) -> Vec<u8> {
    serde_json::json!({ "big": fill.to_string().repeat(len) })
        .to_string()
        .into_bytes()
}

/// The child of `a_full_disk_fails_writes_keeps_sessions_and_recovers`: with
/// SIGXFSZ ignored, a write past RLIMIT_FSIZE fails with EFBIG as on a full disk.
#[test]
#[ignore = "child role of a_full_disk_fails_writes_keeps_sessions_and_recovers"]
fn role_full_disk() {
    if !is_role("role_full_disk") {
        return;
    }
    const LIMIT: usize = 64 * 1024;
    assert_ne!(
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) },
        libc::SIG_ERR
    );
    let root = PathBuf::from(std::env::var(DIR).unwrap());
    let s = file_sessions(&root, 3600);
    let small = big_object('s', 1_000);
    let id = s.create(&small).unwrap();
    let other = s.create(&big_object('o', 20_000)).unwrap();
    let files_before = std::fs::read_dir(root.join("sessions")).unwrap().count();

    set_file_size_limit(LIMIT as libc::rlim_t);
    // The limit binds in this process: a plain write past it fails with EFBIG.
    let probe = root.join("probe");
    let err = std::fs::write(&probe, vec![0u8; 2 * LIMIT]).expect_err("RLIMIT_FSIZE");
    assert_eq!(err.raw_os_error(), Some(libc::EFBIG), "{err}");
    std::fs::remove_file(&probe).unwrap();
    let unavailable = |what: &str, result: session::Result<()>| {
        let err = result.expect_err(what);
        assert_eq!(
            err.code,
            SessionError::StorageUnavailable,
            "{what}: {err:?}"
        );
    };
    // Larger than the limit, and with the 144-byte header just across it (a short
    // write, then EFBIG).
    for len in [3 * LIMIT, LIMIT - 100] {
        let big = big_object('b', len);
        unavailable("create", s.create(&big).map(drop));
        unavailable("create_ttl", s.create_ttl(&big, 60).map(drop));
        unavailable("update", s.update(id.as_bytes(), &big));
        let value = serde_json::Value::from("v".repeat(len)).to_string();
        unavailable(
            "set_value",
            s.set_value(id.as_bytes(), b"v", value.as_bytes()),
        );
        unavailable("update of the larger one", s.update(other.as_bytes(), &big));
        // Existing sessions are intact and readable, failed creates left no file.
        assert_eq!(s.get(id.as_bytes()).unwrap(), small);
        assert_eq!(s.get(other.as_bytes()).unwrap(), big_object('o', 20_000));
        assert_eq!(s.get_value(id.as_bytes(), b"v").unwrap(), None);
        assert_eq!(
            std::fs::read_dir(root.join("sessions")).unwrap().count(),
            files_before,
            "a failed create left a file"
        );
    }
    // Calls that write nothing new still work, and destroy frees space.
    assert!(s.ttl(id.as_bytes()).unwrap() > Duration::from_secs(3500));
    s.touch(id.as_bytes()).unwrap();
    // remove_expired repairs the mtimes the failed writes left (see the bug test)
    // and deletes nothing.
    // (Before it, count() is 0 here although both sessions read: the library bug
    // of bug_count_and_ids_miss_a_session_whose_update_was_killed.)
    assert_eq!(s.remove_expired().unwrap(), 0);
    assert_eq!(s.count().unwrap(), 2);

    // Space returns: everything works again, in the same store handle.
    set_file_size_limit(libc::RLIM_INFINITY);
    let big = big_object('B', 3 * LIMIT);
    let fresh = s.create(&big).unwrap();
    assert_eq!(s.get(fresh.as_bytes()).unwrap(), big);
    s.update(id.as_bytes(), &big).unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), big);
    let value = serde_json::Value::from("v".repeat(LIMIT)).to_string();
    s.set_value(other.as_bytes(), b"v", value.as_bytes())
        .unwrap();
    assert_eq!(
        s.get_value(other.as_bytes(), b"v").unwrap().unwrap(),
        value.as_bytes()
    );
    let regenerated = s.regenerate(other.as_bytes()).unwrap();
    assert_eq!(s.count().unwrap(), 3);
    s.destroy(regenerated.as_bytes()).unwrap();
    println!("role_full_disk: all checks passed");
}

/// Waits for `child` at most `limit`, then kills it; returns its exit status and
/// stderr.
fn wait_for(mut child: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    let mut guard = Children::default();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, err);
        }
        if started.elapsed() > limit {
            guard.0.push(child);
            drop(guard);
            panic!("child still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_full_disk_fails_writes_keeps_sessions_and_recovers() {
    let dir = TempDir::new("faults-fsize");
    let root = dir.path().to_str().unwrap().to_string();
    let child = child("role_full_disk", &[(DIR, &root)]).spawn().unwrap();
    let (status, err) = wait_for(child, Duration::from_secs(25));
    assert!(status.success(), "full-disk child failed: {status}\n{err}");
    // The child ran the role (not an empty harness run): its sessions are there.
    let s = file_sessions(dir.path(), 3600);
    assert_eq!(s.count().unwrap(), 2);
}

// ---------------------------------------------------------------------------
// 3. An unwritable or unusable storage root
// ---------------------------------------------------------------------------

#[test]
fn an_unusable_storage_root_is_a_clear_init_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("faults-root");
    let init_error = |root: &Path| -> session::Error {
        open(root, 60)
            .err()
            .unwrap_or_else(|| panic!("{root:?} was accepted as a storage root"))
    };
    // A root that does not exist: a configuration error naming it.
    let missing = dir.join("missing");
    let err = init_error(&missing);
    assert_eq!(err.code, SessionError::Config, "{err:?}");
    assert!(err.message.contains(missing.to_str().unwrap()), "{err:?}");
    assert!(err.message.contains("must exist"), "{err:?}");
    // A root that is a file, and a sessions/ that is a file.
    let file = dir.join("file");
    std::fs::write(&file, b"x").unwrap();
    let err = init_error(&file);
    assert!(err.message.contains("Not a directory"), "{err:?}");
    let nested = dir.join("nested");
    std::fs::create_dir(&nested).unwrap();
    std::fs::write(nested.join("sessions"), b"x").unwrap();
    let err = init_error(&nested);
    assert!(err.message.contains("it must be a directory"), "{err:?}");
    assert!(nested.join("sessions").is_file());

    // A root without write permission: sessions/ cannot be created. Permissions do
    // not bind a process with CAP_DAC_OVERRIDE (tests run as root in CI
    // containers, where a read-only bind mount is not available either): there
    // the sub-check is skipped, but only after proving that the directory really
    // is writable for this process, so the skip cannot hide a failure.
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    let probe = locked.join("probe");
    match std::fs::create_dir(&probe) {
        Ok(()) => {
            std::fs::remove_dir(&probe).unwrap();
            assert_eq!(
                unsafe { libc::geteuid() },
                0,
                "a 0500 directory is writable by a process that is not root"
            );
            eprintln!(
                "an_unusable_storage_root_is_a_clear_init_error: running as root, \
                 permissions do not bind: the unwritable-root sub-check is skipped"
            );
        }
        Err(probe_err) => {
            assert_eq!(probe_err.kind(), std::io::ErrorKind::PermissionDenied);
            let err = init_error(&locked);
            assert_eq!(err.code, SessionError::StorageUnavailable, "{err:?}");
            assert!(err.message.contains("Permission denied"), "{err:?}");
            assert!(err.message.contains(locked.to_str().unwrap()), "{err:?}");
        }
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Once writable it works.
    let s = file_sessions(&locked, 60);
    let id = s.create(b"{}").unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), b"{}");
}

// ---------------------------------------------------------------------------
// 4. Damaged files
// ---------------------------------------------------------------------------

/// A damaged file is 401-class (not found, or corrupt), never 503 and never a
/// crash, for every call.
fn assert_401(what: &str, err: session::Error) {
    assert!(
        matches!(err.code, SessionError::NotFound | SessionError::Corrupt),
        "{what}: {err:?}"
    );
}

#[test]
fn truncated_or_garbage_session_files_are_corrupt_never_a_crash() {
    let dir = TempDir::new("faults-damage");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.join("sessions");
    let data = br#"{"user":"alice","cart":[1,2,3],"pad":"xxxxxxxxxxxxxxxxxxxx"}"#;
    let id = s.create(data).unwrap();
    let path = sessions.join(id.as_str());
    let good = std::fs::read(&path).unwrap();
    const HEADER: usize = 144; // two 72-byte descriptors
    assert_eq!(good.len(), HEADER + data.len());
    for len in 0..good.len() {
        std::fs::write(&path, &good[..len]).unwrap();
        let err = s.get(id.as_bytes()).expect_err("a truncated file read");
        if len >= HEADER {
            // The descriptor is whole, its data is cut short: damage.
            assert_eq!(
                err.code,
                SessionError::Corrupt,
                "truncated to {len}: {err:?}"
            );
        } else {
            assert_401(&format!("get, truncated to {len}"), err);
        }
        assert_401(
            "get_value",
            s.get_value(id.as_bytes(), b"user").unwrap_err(),
        );
        assert_401(
            "set_value",
            s.set_value(id.as_bytes(), b"k", b"1").unwrap_err(),
        );
        assert_401(
            "pop_value",
            s.pop_value(id.as_bytes(), b"user").unwrap_err(),
        );
        // ttl/touch/update judge the descriptor only: they may succeed on a file
        // whose data is damaged (an update replaces it), but never fail with 503.
        for (what, result) in [
            ("ttl", s.ttl(id.as_bytes()).map(drop)),
            ("touch", s.touch(id.as_bytes())),
        ] {
            if let Err(err) = result {
                assert_401(what, err);
            }
        }
    }
    // A regenerate moves a damaged file without reading its data (or fails): the
    // damage moves with it.
    std::fs::write(&path, &good[..good.len() - 1]).unwrap();
    match s.regenerate(id.as_bytes()) {
        Ok(new) => {
            assert_eq!(
                s.get(new.as_bytes()).unwrap_err().code,
                SessionError::Corrupt
            );
            assert_eq!(
                s.get(id.as_bytes()).unwrap_err().code,
                SessionError::NotFound
            );
            std::fs::rename(sessions.join(new.as_str()), &path).unwrap();
        }
        Err(err) => assert_401("regenerate", err),
    }
    // Garbage of every length up to a few KiB, zeros, and a file of 0xff.
    let mut rng = Rng::seeded();
    for len in (0..4096).step_by(97).chain([HEADER, 2 * HEADER]) {
        for fill in 0..3 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| match fill {
                    0 => rng.next() as u8,
                    1 => 0,
                    _ => 0xff,
                })
                .collect();
            std::fs::write(&path, &bytes).unwrap();
            assert_401("get of garbage", s.get(id.as_bytes()).unwrap_err());
            let what = format!("update of garbage {len} {fill}");
            assert_401(&what, s.update(id.as_bytes(), b"{}").expect_err(&what));
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "garbage was written");
        }
    }
    // The store as a whole still works, and destroy removes the damaged file.
    s.destroy(id.as_bytes()).unwrap();
    assert!(!path.exists());
    let fresh = s.create(data).unwrap();
    assert_eq!(s.get(fresh.as_bytes()).unwrap(), data);
    // A damaged file among good ones breaks neither count nor ids nor
    // remove_expired.
    std::fs::write(sessions.join("a".repeat(64)), b"garbage").unwrap();
    s.remove_expired().unwrap();
    assert_eq!(s.count().unwrap(), 1);
    assert_eq!(s.ids().unwrap(), vec![fresh]);
}

/// A symlink planted under a valid id's name, whatever it points at, is a forged
/// id (401), never a store outage (503), for reads.
#[test]
fn a_symlink_under_a_valid_id_is_not_found_or_corrupt_never_unavailable() {
    let dir = TempDir::new("faults-symlink");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.join("sessions");
    let victim = s.create(b"{\"victim\":true}").unwrap();
    let outside = dir.join("outside");
    std::fs::write(&outside, b"not a session").unwrap();
    let outside_dir = dir.join("outside-dir");
    std::fs::create_dir(&outside_dir).unwrap();
    let targets = [
        outside.clone(),
        outside_dir.clone(),
        dir.join("dangling"),
        sessions.join(victim.as_str()),
        PathBuf::from("/dev/null"),
        PathBuf::from("/dev/zero"),
        sessions.clone(),
    ];
    for (n, target) in targets.iter().enumerate() {
        let id = format!("{:064x}", n + 1);
        std::os::unix::fs::symlink(target, sessions.join(&id)).unwrap();
        let at = format!("symlink to {target:?}");
        assert_401(&format!("get, {at}"), s.get(id.as_bytes()).unwrap_err());
        assert_401(&format!("ttl, {at}"), s.ttl(id.as_bytes()).unwrap_err());
        assert_401(
            &format!("exists, {at}"),
            s.exists(id.as_bytes()).unwrap_err(),
        );
        assert_401(&format!("peek, {at}"), s.peek(id.as_bytes()).unwrap_err());
        assert_401(
            &format!("get_value, {at}"),
            s.get_value(id.as_bytes(), b"victim").unwrap_err(),
        );
    }
    s.remove_expired().unwrap();
    assert_eq!(s.count().unwrap(), 1);
    assert_eq!(s.get(victim.as_bytes()).unwrap(), b"{\"victim\":true}");
    assert_eq!(std::fs::read(&outside).unwrap(), b"not a session");
}

/// Found while writing the tests above: a directory or a FIFO planted under a
/// valid id's name makes get/update/touch/destroy fail with STORAGE_UNAVAILABLE
/// (EISDIR, ESPIPE: "cannot read a session file") where a symlink or a garbage
/// file gives NOT_FOUND/CORRUPT. A web server answers 503 to a forged id whose
/// name an attacker with access to the directory planted, instead of 401.
#[test]
fn a_directory_or_fifo_under_a_valid_id_is_401_not_503() {
    let dir = TempDir::new("faults-special");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.join("sessions");
    let directory = "d".repeat(64);
    std::fs::create_dir(sessions.join(&directory)).unwrap();
    let fifo = "f".repeat(64);
    let path = std::ffi::CString::new(sessions.join(&fifo).to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    for id in [&directory, &fifo] {
        assert_401("get", s.get(id.as_bytes()).unwrap_err());
        assert_401("update", s.update(id.as_bytes(), b"{}").unwrap_err());
        assert_401("touch", s.touch(id.as_bytes()).unwrap_err());
    }
    // destroy of a name that holds a directory: no 503 either.
    s.destroy(directory.as_bytes()).unwrap();
}

// ---------------------------------------------------------------------------
// 5. The clock
// ---------------------------------------------------------------------------

/// The driver's clock is `SystemTime::now()` (`now_ns` in src/store/mod.rs), which
/// a test cannot step. What is covered here is the rule a backwards step must not
/// break: the END WRITTEN IN THE DESCRIPTOR decides, not the file's mtime. After
/// the clock steps back by an hour, a file's mtime (set from the clock of its last
/// write) can lie an hour ahead of what the descriptor allows; it is simulated by
/// setting the mtime an hour into the future with utimensat (`File::set_modified`)
/// after the driver wrote it. Checked: such a session ended by its descriptor is
/// gone for every call (get, ttl, exists, touch, update, set_value, regenerate
/// cannot revive it), a live one keeps its descriptor's ttl, and repeated touches
/// with an idle timeout never carry a session past its absolute end.
///
/// NOT covered: a real step of the system clock (descriptor ends are wall-clock
/// times too, so a session written before a backwards step of one hour lives one
/// hour longer in real time; no test can observe that without changing the
/// clock), and `remove_expired`/`count`/`ids`, which judge a file by its mtime
/// alone while it is in the future: an ended file with a future mtime is counted
/// and listed and not removed until that mtime passes (see
/// `bug_remove_expired_count_and_ids_trust_a_future_mtime` below); covered here is
/// only that it is removed once its mtime has passed.
#[test]
fn an_mtime_in_the_future_does_not_make_a_session_immortal() {
    let dir = TempDir::new("faults-clock");
    let root = dir.path();
    let json = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "lifetime": 3,
              "idle_timeout": 2}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        root.display()
    );
    let s = Sessions::open(&Config::from_json(json.as_bytes()).unwrap()).unwrap();
    let sessions = dir.join("sessions");
    let hour_ahead = || SystemTime::now() + Duration::from_secs(3600);
    let set_mtime = |id: &session::SessionId, to: SystemTime| {
        std::fs::File::options()
            .write(true)
            .open(sessions.join(id.as_str()))
            .unwrap()
            .set_modified(to)
            .unwrap();
    };
    let started = Instant::now();
    let ending = s.create_ttl(b"{\"n\":1}", 1).unwrap();
    let touched = s.create(b"{\"n\":2}").unwrap();
    // A live session with a future mtime keeps the ttl its descriptor says.
    set_mtime(&touched, hour_ahead());
    assert!(s.ttl(touched.as_bytes()).unwrap() <= Duration::from_secs(3));
    // Touch the second session every 300 ms, pushing its mtime an hour ahead each
    // time, until past its absolute end (3 s): the idle end moves, the absolute
    // end does not.
    let mut last_ok = Duration::ZERO;
    while started.elapsed() < Duration::from_millis(4500) {
        match s.touch(touched.as_bytes()) {
            Ok(()) => {
                last_ok = started.elapsed();
                set_mtime(&touched, hour_ahead());
            }
            Err(err) => assert_eq!(err.code, SessionError::NotFound),
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(last_ok > Duration::from_millis(1500), "touch failed early");
    assert!(last_ok < Duration::from_secs(3) + Duration::from_millis(300));
    set_mtime(&ending, hour_ahead());
    for id in [&ending, &touched] {
        let gone = |what: &str, result: session::Result<()>| {
            assert_eq!(result.unwrap_err().code, SessionError::NotFound, "{what}");
        };
        gone("get", s.get(id.as_bytes()).map(drop));
        gone("ttl", s.ttl(id.as_bytes()).map(drop));
        gone("exists", s.exists(id.as_bytes()));
        gone("touch", s.touch(id.as_bytes()));
        gone("update", s.update(id.as_bytes(), b"{\"n\":3}"));
        gone("set_value", s.set_value(id.as_bytes(), b"n", b"3"));
        gone("regenerate", s.regenerate(id.as_bytes()).map(drop));
        gone("get again", s.get(id.as_bytes()).map(drop));
    }
    // Once the clock has caught up with the mtimes (simulated: mtime now in the
    // past), remove_expired deletes both.
    let past = SystemTime::now() - Duration::from_secs(5);
    set_mtime(&ending, past);
    set_mtime(&touched, past);
    assert_eq!(s.remove_expired().unwrap(), 2);
    assert!(!sessions.join(ending.as_str()).exists());
    assert!(!sessions.join(touched.as_str()).exists());
    assert_eq!(s.count().unwrap(), 0);
}

/// `remove_expired`, `count` and `ids` trust a future mtime: an ended session
/// whose file's mtime lies ahead (a clock that stepped back after the write, or
/// any other writer of the mtime) is counted and listed although `get` says not
/// found, and is not removed until its mtime passes.
#[test]
#[ignore = "limitation: ended sessions with a future mtime are counted, listed, kept"]
fn bug_remove_expired_count_and_ids_trust_a_future_mtime() {
    let dir = TempDir::new("faults-future");
    let s = file_sessions(dir.path(), 3600);
    let id = s.create_ttl(b"{}", 1).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::File::options()
        .write(true)
        .open(dir.join("sessions").join(id.as_str()))
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();
    assert_eq!(
        s.get(id.as_bytes()).unwrap_err().code,
        SessionError::NotFound
    );
    assert_eq!(s.count().unwrap(), 0, "an ended session is counted");
    assert!(s.ids().unwrap().is_empty(), "an ended session is listed");
    assert_eq!(s.remove_expired().unwrap(), 1, "an ended session is kept");
}

// ---------------------------------------------------------------------------
// 6. Symlinks and hard links under a valid id's name, for every writing call
// ---------------------------------------------------------------------------

/// A file's contents and mtime: what a write through a link would change.
fn snapshot(path: &Path) -> (Vec<u8>, SystemTime) {
    let meta = std::fs::metadata(path).unwrap();
    (std::fs::read(path).unwrap(), meta.modified().unwrap())
}

type Call = fn(&Sessions, &[u8]) -> session::Result<()>;

const WRITING_CALLS: [(&str, Call); 9] = [
    ("update", |s, id| s.update(id, b"{\"written\":1}")),
    ("update_if", |s, id| s.update_if(id, b"{\"written\":1}", 1)),
    ("set_value", |s, id| s.set_value(id, b"written", b"1")),
    ("delete_value", |s, id| s.delete_value(id, b"victim")),
    ("pop_value", |s, id| s.pop_value(id, b"victim").map(drop)),
    ("regenerate", |s, id| s.regenerate(id).map(drop)),
    ("touch", |s, id| s.touch(id)),
    ("get", |s, id| s.get(id).map(drop)),
    ("destroy", |s, id| s.destroy(id)),
];

#[test]
fn links_under_a_valid_id_are_never_followed_or_written_through() {
    let dir = TempDir::new("faults-links");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.join("sessions");
    let outside_dir = dir.join("outside");
    std::fs::create_dir(&outside_dir).unwrap();
    let victim_data = b"{\"victim\":true}";
    let victim = s.create(victim_data).unwrap();
    let victim_path = sessions.join(victim.as_str());
    let mut planted = 0;
    for (call, run) in WRITING_CALLS {
        for kind in [
            "symlink to a file outside",
            "symlink to a valid file of its own id, moved outside",
            "symlink to another session's file",
            "hard link to another session's file",
            "hard link to a file outside",
        ] {
            planted += 1;
            // A valid id that has (had) a session of its own.
            let id = s.create(b"{\"victim\":false}").unwrap();
            let name = sessions.join(id.as_str());
            let outside = outside_dir.join(format!("target-{planted}"));
            let target = match kind {
                "symlink to a file outside" | "hard link to a file outside" => {
                    std::fs::remove_file(&name).unwrap();
                    std::fs::write(&outside, b"do not touch").unwrap();
                    outside.clone()
                }
                "symlink to a valid file of its own id, moved outside" => {
                    std::fs::rename(&name, &outside).unwrap();
                    outside.clone()
                }
                _ => {
                    std::fs::remove_file(&name).unwrap();
                    victim_path.clone()
                }
            };
            if kind.starts_with("symlink") {
                std::os::unix::fs::symlink(&target, &name).unwrap();
            } else {
                std::fs::hard_link(&target, &name).unwrap();
            }
            let before = snapshot(&target);
            std::thread::sleep(Duration::from_millis(2)); // an mtime change shows
            let what = format!("{call} through a {kind}");
            match run(&s, id.as_bytes()) {
                // destroy removes the planted name itself, never its target.
                Ok(()) if call == "destroy" => assert!(
                    std::fs::symlink_metadata(&name).is_err(),
                    "{what}: Ok but the name is still there"
                ),
                Ok(()) => panic!("{what}: succeeded"),
                Err(err) => assert_401(&what, err),
            }
            assert_eq!(snapshot(&target), before, "{what}: the target changed");
            assert_eq!(s.get(victim.as_bytes()).unwrap(), victim_data, "{what}");
        }
    }
    // Nothing was written anywhere outside, and the victim is whole.
    for entry in std::fs::read_dir(&outside_dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(bytes == b"do not touch" || !bytes.windows(7).any(|w| w == b"written"));
    }
    assert_eq!(s.get(victim.as_bytes()).unwrap(), victim_data);
    assert_eq!(s.get_value(victim.as_bytes(), b"written").unwrap(), None);
}

/// A hard link planted under a session's own id that points at a file outside the
/// directory holding a valid copy of that session (same tag; `O_NOFOLLOW` does not
/// apply to hard links): writers see the second name (`st_nlink` > 1) and refuse to
/// write through it, so whoever planted it never reads a later version.
#[test]
fn a_hard_link_of_its_own_valid_file_is_never_written_through() {
    let dir = TempDir::new("faults-ownlink");
    let s = file_sessions(dir.path(), 3600);
    let sessions = dir.join("sessions");
    let id = s.create(b"{\"secret\":1}").unwrap();
    let outside = dir.join("exfiltrated");
    std::fs::rename(sessions.join(id.as_str()), &outside).unwrap();
    std::fs::hard_link(&outside, sessions.join(id.as_str())).unwrap();
    let before = snapshot(&outside);
    let err = s.update(id.as_bytes(), b"{\"secret\":2}").unwrap_err();
    assert_eq!(err.code, session::SessionError::Corrupt, "{}", err.message);
    assert_eq!(snapshot(&outside), before, "written through a hard link");
}
