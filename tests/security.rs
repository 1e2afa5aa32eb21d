//! The claims of `SECURITY.md`, one test named for each: ids that cannot be
//! guessed, hostile ids that never reach the filesystem or Redis, private files
//! under any umask, records that cannot move between ids, fixation, error messages
//! and `Debug` output free of data, ids and secrets, and the known limits, stated
//! as tests so that the document stays true.
//!
//! Most tests call the C API as a C server would (C strings in, `free()` on what
//! comes back, `session_last_error()`), on handles only: no test here touches the
//! global configuration, so they can run on parallel threads. The Redis tests start
//! a real `redis-server` on a free loopback port.

mod support;

use session::ffi::*;
use session::seal::{Sealer, Secret};
use session::store::file::format;
use session::{Config, SessionError, SessionId, Sessions};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_long, CStr};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::ptr::null;
use std::time::Instant;
use support::c_api::{c, last_error, take};
use support::redis_server::RedisServer;
use support::temp::TempDir;

const SECRET: &str = "SECRET-ONE-3f9c1e7a: the secret of the security tests, 32+ bytes";
const OTHER_SECRET: &str = "SECRET-TWO-b2d84c06: another secret of the security tests";
const DATA_MARKER: &str = "DATA-MARKER-5e1b";
const OWNER_MARKER: &str = "OWNER-MARKER-77a2";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A handle from `session_store_open_json`, closed when dropped.
struct Handle(*mut SessionStore);

impl Handle {
    #[track_caller]
    fn open(json: &str) -> Handle {
        let store = unsafe { session_store_open_json(c(json).as_ptr(), null()) };
        assert!(!store.is_null(), "{json}: {:?}", last_error());
        Handle(store)
    }

    fn ptr(&self) -> *const SessionStore {
        self.0
    }

    #[track_caller]
    fn create(&self, data: &str) -> String {
        let id = unsafe { session_store_create(self.0, c(data).as_ptr()) };
        let id = text(id).unwrap_or_else(|| panic!("create: {:?}", last_error()));
        assert_eq!(id.len(), 64);
        id
    }

    fn get(&self, id: &str) -> Option<String> {
        text(unsafe { session_store_get(self.0, c(id).as_ptr()) })
    }

    fn exists(&self, id: &str) -> bool {
        unsafe { session_store_exists(self.0, c(id).as_ptr()) == 1 }
    }

    fn count(&self) -> c_long {
        unsafe { session_store_count(self.0) }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        unsafe { session_store_close(self.0) };
    }
}

fn text(ptr: *mut c_char) -> Option<String> {
    take(ptr).map(|bytes| String::from_utf8(bytes).unwrap())
}

/// The file store in `root` with `extra` keys of `sessions` (a JSON fragment that
/// starts with a comma, or nothing).
fn file_json(root: &Path, extra: &str) -> String {
    format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s"{extra}}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        root.display()
    )
}

fn memory_json(extra: &str) -> String {
    format!(r#"{{"sessions": {{"driver": "memory"{extra}}}}}"#)
}

fn redis_json(url: &str, extra: &str) -> String {
    format!(r#"{{"sessions": {{"driver": "redis", "url": "{url}"{extra}}}}}"#)
}

fn open_rust(json: &str) -> Sessions {
    let config = Config::from_json(json.as_bytes()).unwrap_or_else(|e| panic!("{json}: {e}"));
    Sessions::open(&config).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn code<T: std::fmt::Debug>(result: session::Result<T>) -> SessionError {
    result.expect_err("the call must fail").code
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Every entry under `dir`, recursively, with its size, mode and mtime: a
/// snapshot that any create, write, chmod or delete changes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, u32, i64, i64)> {
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            }
            all.insert(
                entry.path(),
                (meta.len(), meta.mode(), meta.mtime(), meta.mtime_nsec()),
            );
        }
    }
    all
}

const ROLE: &str = "LIBSESSION_SECURITY_ROLE";

/// Whether this process runs as the child role `test`; false in a normal run.
fn is_role(test: &str) -> bool {
    std::env::var(ROLE).as_deref() == Ok(test)
}

/// Runs the ignored test `role` in a new process of this test binary and checks
/// that it ran to its end (it prints `ROLE DONE`), so a filter that matched
/// nothing cannot pass for a success.
fn run_role(role: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            role,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ROLE DONE"),
        "child {role} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

// ---------------------------------------------------------------------------
// Guessed and forged ids
// ---------------------------------------------------------------------------

const IDS: usize = 1_000_000;

/// The value of a lowercase hex digit; anything else fails the test.
fn hex_value(ch: u8) -> usize {
    match ch {
        b'0'..=b'9' => usize::from(ch - b'0'),
        b'a'..=b'f' => usize::from(ch - b'a' + 10),
        _ => panic!("{:?} is not a lowercase hex digit", char::from(ch)),
    }
}

/// Pearson's chi-square statistic of `counts` against equal expected counts.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&n| (n as f64 - expected).powi(2) / expected)
        .sum()
}

/// Claim (guessed ids): `session_create_id` (the same `SessionId::generate` that
/// every create and regenerate uses) gives 64 lowercase hex digits, 1,000,000 of
/// them have no duplicate, and their digits are uniform overall, at each of the 64
/// positions, and as the 32 bytes they encode.
///
/// Bounds, for truly random ids (each chosen so that a correct generator fails far
/// less than once in a million runs):
/// - the 64,000,000 digits overall: each digit's count within 6 standard
///   deviations of 4,000,000 (sd = sqrt(64e6 * 1/16 * 15/16) = 1,936.5, so within
///   11,619; a false alarm has probability about 2e-9 per digit), and a chi-square
///   of at most 63.54 with 15 degrees of freedom (p = 1e-7);
/// - each position (1,000,000 digits, expected 62,500 each): chi-square at most
///   75.69 with 15 degrees of freedom (p = 1e-9 each, 6.4e-8 for all 64);
/// - the 32,000,000 bytes: chi-square at most 390.5 with 255 degrees of freedom
///   (p = 1e-7).
///
/// A generator that never emits a digit, fixes or biases a position (a byte of a
/// counter, a timestamp) or maps bytes to digits wrongly fails one of these. No
/// duplicate among the first 128 bits of each id means none among the whole ids.
/// The thresholds come from the Wilson-Hilferty approximation of the chi-square
/// quantiles.
#[test]
fn a_million_generated_ids_are_distinct_and_their_hex_digits_uniform() {
    let started = Instant::now();
    let mut prefixes: Vec<u128> = Vec::with_capacity(IDS);
    let mut by_position = vec![[0u64; 16]; 64];
    let mut bytes = [0u64; 256];
    for _ in 0..IDS {
        let ptr = session_create_id();
        assert!(!ptr.is_null(), "{:?}", last_error());
        let id = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        assert_eq!(id.len(), 64);
        let mut prefix = 0u128;
        for (i, pair) in id.chunks_exact(2).enumerate() {
            let (high, low) = (hex_value(pair[0]), hex_value(pair[1]));
            by_position[2 * i][high] += 1;
            by_position[2 * i + 1][low] += 1;
            bytes[high << 4 | low] += 1;
            if i < 16 {
                prefix = prefix << 8 | (high << 4 | low) as u128;
            }
        }
        prefixes.push(prefix);
        unsafe { libc::free(ptr.cast()) };
    }
    prefixes.sort_unstable();
    let duplicates = prefixes.windows(2).filter(|w| w[0] == w[1]).count();
    assert_eq!(duplicates, 0, "duplicate ids among {IDS}");

    let mut overall = [0u64; 16];
    for position in &by_position {
        for (digit, n) in position.iter().enumerate() {
            overall[digit] += n;
        }
    }
    let expected = (IDS * 64 / 16) as f64;
    let sd = (IDS as f64 * 64.0 / 16.0 * 15.0 / 16.0).sqrt();
    for (digit, &n) in overall.iter().enumerate() {
        assert!(
            (n as f64 - expected).abs() <= 6.0 * sd,
            "digit {digit:x} appears {n} times, expected {expected} +- {:.0}",
            6.0 * sd
        );
    }
    let chi = chi_square(&overall);
    assert!(chi <= 63.54, "overall chi-square {chi:.1} > 63.54");
    for (i, position) in by_position.iter().enumerate() {
        let chi = chi_square(position);
        assert!(
            chi <= 75.69,
            "position {i}: chi-square {chi:.1} > 75.69: {position:?}"
        );
    }
    let chi = chi_square(&bytes);
    assert!(chi <= 390.5, "byte chi-square {chi:.1} > 390.5");
    eprintln!(
        "{IDS} ids generated and checked in {:.2?}",
        started.elapsed()
    );
}

/// Claim (fork): ids keep no user-space random state, so a forked child (a
/// pre-fork server's worker) and its parent never draw the same ids.
#[test]
fn a_forked_child_and_its_parent_draw_different_ids() {
    const N: usize = 64;
    let mut fds = [0 as c_int; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // Warm up whatever state the generator may keep before the fork.
    SessionId::generate().unwrap();
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // The child: no allocation, no lock; N ids down the pipe, then _exit.
        let mut ok = true;
        for _ in 0..N {
            match SessionId::generate() {
                Ok(id) => {
                    let b = id.as_bytes();
                    ok &= unsafe { libc::write(fds[1], b.as_ptr().cast(), b.len()) } == 64;
                }
                Err(_) => ok = false,
            }
        }
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    unsafe { libc::close(fds[1]) };
    let mine: Vec<SessionId> = (0..N).map(|_| SessionId::generate().unwrap()).collect();
    let mut theirs = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = unsafe { libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        theirs.extend_from_slice(&buf[..n as usize]);
    }
    unsafe { libc::close(fds[0]) };
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(theirs.len(), N * 64);
    for child_id in theirs.chunks(64) {
        assert!(
            !mine.iter().any(|id| id.as_bytes() == child_id),
            "the child drew an id its parent drew too"
        );
    }
}

// ---------------------------------------------------------------------------
// Path traversal and hostile ids
// ---------------------------------------------------------------------------

/// Ids that are not 64 lowercase hex characters, as a hostile cookie may carry.
fn hostile_ids(live: &str) -> Vec<String> {
    let pad = |prefix: &str| format!("{prefix}{}", "a".repeat(64 - prefix.len()));
    vec![
        "../x".into(),
        "/etc/passwd".into(),
        "..%2f..%2fetc%2fpasswd".into(),
        pad("..%2f"),
        pad("%2e%2e%2f"),
        pad("../"),
        pad("..\\"),
        pad("/"),
        pad("./"),
        format!("{}/{}", &live[..31], &live[32..]),
        live.to_uppercase(),
        format!("{}A", &live[..63]),
        live[..63].to_string(),
        format!("{live}a"),
        format!("{live}/"),
        format!("{live}{}", "a".repeat(10_000)),
        format!(" {}", &live[..63]),
        format!("{}\n", &live[..63]),
        format!("{}é", &live[..62]),
        "g".repeat(64),
        "session:*".into(),
        String::new(),
    ]
}

/// Calls every function of the C API that takes a session id with `id` on `s`
/// and checks that each fails with `SESSION_ERROR_INVALID_ARGUMENT`.
unsafe fn expect_every_call_invalid(s: *const SessionStore, id: *const c_char, what: &str) {
    let check = |call: &str| {
        let (got, message) = last_error();
        assert_eq!(
            got,
            SessionError::InvalidArgument,
            "{call}({what:?}): {message}"
        );
    };
    let (data, key, value) = (c("{\"a\":1}"), c("k"), c("1"));
    let mut version = 0;
    assert!(session_store_get(s, id).is_null());
    check("get");
    assert_eq!(session_store_update(s, id, data.as_ptr()), 0);
    check("update");
    assert_eq!(session_store_destroy(s, id), 0);
    check("destroy");
    assert_eq!(session_store_touch(s, id), 0);
    check("touch");
    assert_eq!(session_store_ttl(s, id), -1);
    check("ttl");
    assert_eq!(session_store_exists(s, id), 0);
    check("exists");
    assert!(session_store_regenerate(s, id).is_null());
    check("regenerate");
    assert!(session_store_get_value(s, id, key.as_ptr()).is_null());
    check("get_value");
    assert_eq!(
        session_store_set_value(s, id, key.as_ptr(), value.as_ptr()),
        0
    );
    check("set_value");
    assert_eq!(session_store_delete_value(s, id, key.as_ptr()), 0);
    check("delete_value");
    assert!(session_store_pop_value(s, id, key.as_ptr()).is_null());
    check("pop_value");
    assert!(session_store_get_versioned(s, id, &mut version).is_null());
    check("get_versioned");
    assert_eq!(session_store_update_if(s, id, data.as_ptr(), 1), 0);
    check("update_if");
    assert!(session_store_cookie_header(s, id).is_null());
    check("cookie_header");
}

/// Claim (path traversal): an id that is not exactly 64 lowercase hex characters
/// (`../x`, `/etc/passwd`, `..%2f...`, separators, a NUL, uppercase, 63 or 65
/// characters) fails every call with `SESSION_ERROR_INVALID_ARGUMENT` before the
/// store is touched: nothing appears, changes or goes in or around the store
/// directory, and with the session directory gone (or Redis down) the answer is
/// still INVALID_ARGUMENT, never the STORAGE_UNAVAILABLE a lookup would give.
#[test]
fn hostile_ids_are_invalid_arguments_that_never_reach_the_filesystem_or_redis() {
    let temp = TempDir::new("security-traversal");
    let root = temp.join("root");
    std::fs::create_dir(&root).unwrap();
    // Bait where a traversal would land: next to and above the session directory.
    std::fs::write(root.join("x"), "do not touch").unwrap();
    std::fs::write(temp.join("x"), "do not touch").unwrap();
    let s = Handle::open(&file_json(&root, r#", "owner_key": "user_id""#));
    let live = s.create(r#"{"user_id":42}"#);
    let before = snapshot(temp.path());
    for id in hostile_ids(&live) {
        unsafe { expect_every_call_invalid(s.ptr(), c(&id).as_ptr(), &id) };
    }
    // A NUL inside the id: C sees the 63 characters before it.
    let with_nul = format!("{}\0a", &live[..63]);
    unsafe { expect_every_call_invalid(s.ptr(), with_nul.as_ptr().cast(), "63 chars + NUL") };
    assert_eq!(
        snapshot(temp.path()),
        before,
        "a hostile id touched the files"
    );
    assert_eq!(s.get(&live).as_deref(), Some(r#"{"user_id":42}"#));

    // The Rust API, with NULs anywhere in 64 bytes.
    let rust = open_rust(&file_json(&root, ""));
    let mut nul = live.as_bytes().to_vec();
    for at in [0, 20, 63] {
        nul[at] = 0;
        assert_eq!(code(rust.get(&nul)), SessionError::InvalidArgument);
        assert_eq!(code(rust.update(&nul, b"x")), SessionError::InvalidArgument);
        assert_eq!(code(rust.destroy(&nul)), SessionError::InvalidArgument);
        nul[at] = live.as_bytes()[at];
    }
    assert_eq!(
        snapshot(temp.path()),
        before,
        "a hostile id touched the files"
    );

    // With the session directory gone, a lookup fails with STORAGE_UNAVAILABLE:
    // hostile ids still fail with INVALID_ARGUMENT, so none was looked up.
    std::fs::rename(root.join("sessions"), temp.join("moved")).unwrap();
    let unknown = text(session_create_id()).unwrap();
    assert!(s.get(&unknown).is_none());
    assert_eq!(last_error().0, SessionError::StorageUnavailable);
    for id in hostile_ids(&live) {
        unsafe { expect_every_call_invalid(s.ptr(), c(&id).as_ptr(), &id) };
    }
    std::fs::rename(temp.join("moved"), root.join("sessions")).unwrap();

    // Redis that does not answer: a lookup is STORAGE_UNAVAILABLE, a hostile id
    // INVALID_ARGUMENT (no round trip was tried).
    let url = format!("redis://127.0.0.1:{}", closed_port());
    let r = Handle::open(&redis_json(&url, r#", "lazy_connect": true"#));
    assert!(r.get(&unknown).is_none());
    assert_eq!(last_error().0, SessionError::StorageUnavailable);
    for id in hostile_ids(&live) {
        unsafe { expect_every_call_invalid(r.ptr(), c(&id).as_ptr(), &id) };
    }
}

/// Claim (huge input): an id argument is read no further than 65 bytes, so an
/// over-long or unterminated string is rejected without being scanned: the id
/// here is 65 valid characters followed by an unmapped page, which any read past
/// them would hit (SIGSEGV).
#[test]
fn an_id_is_read_no_further_than_65_bytes() {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED);
    let base = map.cast::<u8>();
    unsafe {
        assert_eq!(
            libc::mprotect(base.add(page).cast(), page, libc::PROT_NONE),
            0
        );
        let id = base.add(page - 65);
        std::ptr::write_bytes(id, b'a', 65);
        let s = Handle::open(&memory_json(""));
        expect_every_call_invalid(s.ptr(), id.cast(), "65 bytes before a guard page");
        let (_, message) = last_error();
        assert!(message.contains("longer than 64"), "{message}");
        libc::munmap(map, 2 * page);
    }
}

/// Claim (huge input): deeply nested JSON is an error, never a stack overflow:
/// 100,000 open brackets as a per-key value, and as session data read by
/// `get_value` and by the owner index, on the file driver through the C API.
#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let temp = TempDir::new("security-nesting");
    let s = Handle::open(&file_json(
        temp.path(),
        r#", "owner_key": "user_id", "max_data_size": 1048576"#,
    ));
    let deep = "[".repeat(100_000);
    let id = s.create(r#"{"user_id":1}"#);
    let (i, key) = (c(&id), c("k"));
    unsafe {
        assert_eq!(
            session_store_set_value(s.ptr(), i.as_ptr(), key.as_ptr(), c(&deep).as_ptr()),
            0
        );
        assert_eq!(last_error().0, SessionError::InvalidArgument);
        // Data that nests deeply: stored as given (data is any bytes), but the
        // per-key calls and the owner index never recurse into it.
        let data = format!(r#"{{"user_id":{deep}, "k":1}}"#);
        let nested = s.create(&data);
        let n = c(&nested);
        assert!(session_store_get_value(s.ptr(), n.as_ptr(), key.as_ptr()).is_null());
        assert_eq!(last_error().0, SessionError::InvalidArgument);
        assert_eq!(
            session_store_update(s.ptr(), n.as_ptr(), c(&data).as_ptr()),
            1
        );
        assert_eq!(s.get(&nested), Some(data));
    }
}

// ---------------------------------------------------------------------------
// Other local users: permissions
// ---------------------------------------------------------------------------

/// Claim (other local users): session files and owner-index entries are created
/// 0600 and the session directory and the owner-index directories 0700, even
/// under umask 0, and a session directory found looser is made 0700.
///
/// umask is per process and the tests of one binary run on parallel threads, so
/// setting it here would change the files of every other test: the check runs in
/// a child process of this binary (`role_umask_0`).
#[test]
fn files_are_0600_and_directories_0700_even_under_umask_0() {
    run_role("role_umask_0");
}

#[test]
#[ignore = "a child role of files_are_0600_and_directories_0700_even_under_umask_0"]
fn role_umask_0() {
    if !is_role("role_umask_0") {
        return;
    }
    unsafe { libc::umask(0) };
    let temp = TempDir::new("security-umask");
    // The umask is really 0: a plain file gets the 0666 it asks for.
    let probe = temp.join("probe");
    std::fs::write(&probe, "x").unwrap();
    assert_eq!(std::fs::metadata(&probe).unwrap().mode() & 0o777, 0o666);

    // Every kind of write, with the owner index: create, create_ttl, update,
    // set_value, update_if, regenerate with a grace (a copied file) and without
    // (a renamed one), and the owner calls.
    let root = temp.join("root");
    std::fs::create_dir(&root).unwrap();
    let graceful = Handle::open(&file_json(
        &root,
        r#", "owner_key": "user_id", "regenerate_grace": 60"#,
    ));
    let plain = Handle::open(&file_json(&root, r#", "owner_key": "user_id""#));
    unsafe {
        let a = graceful.create(r#"{"user_id":1}"#);
        let b = text(session_store_create_ttl(
            plain.ptr(),
            c(r#"{"user_id":2}"#).as_ptr(),
            60,
        ))
        .unwrap();
        assert_eq!(
            session_store_update(plain.ptr(), c(&b).as_ptr(), c(r#"{"user_id":3}"#).as_ptr()),
            1
        );
        assert_eq!(
            session_store_set_value(
                plain.ptr(),
                c(&a).as_ptr(),
                c("user_id").as_ptr(),
                c("4").as_ptr()
            ),
            1
        );
        let mut version = 0;
        take(session_store_get_versioned(
            plain.ptr(),
            c(&a).as_ptr(),
            &mut version,
        ))
        .unwrap();
        assert_eq!(
            session_store_update_if(
                plain.ptr(),
                c(&a).as_ptr(),
                c(r#"{"user_id":5}"#).as_ptr(),
                version
            ),
            1
        );
        take(session_store_regenerate(graceful.ptr(), c(&a).as_ptr())).unwrap();
        take(session_store_regenerate(plain.ptr(), c(&b).as_ptr())).unwrap();
        assert!(session_store_count_owner(plain.ptr(), c("5").as_ptr()) >= 1);
        take(session_store_list_owner(plain.ptr(), c("3").as_ptr())).unwrap();
    }
    let sessions = root.join("sessions");
    let (mut files, mut dirs) = (0, 0);
    for (path, (_, mode, _, _)) in snapshot(&sessions) {
        let kind = mode & libc::S_IFMT;
        if kind == libc::S_IFDIR {
            assert_eq!(mode & 0o7777, 0o700, "{}", path.display());
            dirs += 1;
        } else {
            assert_eq!(kind, libc::S_IFREG, "{}", path.display());
            assert_eq!(mode & 0o7777, 0o600, "{}", path.display());
            files += 1;
        }
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&sessions), 0o700);
    // 3 session files (one kept by the grace) + 3 index entries; owners/ and at
    // least 3 owner directories.
    assert!(files >= 6 && dirs >= 4, "{files} files, {dirs} directories");

    // A session directory created 0777 before the library saw it is made 0700.
    let loose = temp.join("loose");
    std::fs::create_dir_all(loose.join("sessions")).unwrap();
    std::fs::set_permissions(
        loose.join("sessions"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    assert_eq!(mode(&loose.join("sessions")), 0o777);
    let _store = Handle::open(&file_json(&loose, ""));
    assert_eq!(mode(&loose.join("sessions")), 0o700);
    println!("ROLE DONE");
}

// ---------------------------------------------------------------------------
// Symlink races
// ---------------------------------------------------------------------------

/// Claim (symlink races): the session directory is re-opened by path only with
/// `O_NOFOLLOW`, so a session directory swapped for a symlink while the library
/// runs is refused (STORAGE_UNAVAILABLE), and nothing is written where the link
/// points.
#[test]
fn a_session_directory_swapped_for_a_symlink_is_refused_not_followed() {
    let temp = TempDir::new("security-swap");
    let root = temp.join("root");
    std::fs::create_dir(&root).unwrap();
    let s = Handle::open(&file_json(&root, ""));
    let id = s.create(r#"{"user_id":1}"#);
    let attacker = temp.join("attacker");
    std::fs::create_dir(&attacker).unwrap();
    std::fs::rename(root.join("sessions"), temp.join("moved")).unwrap();
    std::os::unix::fs::symlink(&attacker, root.join("sessions")).unwrap();
    // A miss re-checks the directory at once (other calls within a second), and
    // from then on every call re-checks until the real directory is back.
    let unknown = text(session_create_id()).unwrap();
    assert!(s.get(&unknown).is_none());
    let (code, message) = last_error();
    assert_eq!(code, SessionError::StorageUnavailable, "{message}");
    assert!(message.contains("symlink"), "{message}");
    assert!(s.get(&id).is_none());
    assert_eq!(last_error().0, SessionError::StorageUnavailable);
    assert!(unsafe { session_store_create(s.ptr(), c("{}").as_ptr()) }.is_null());
    let (code, message) = last_error();
    assert_eq!(code, SessionError::StorageUnavailable, "{message}");
    assert_eq!(std::fs::read_dir(&attacker).unwrap().count(), 0);
    // The real directory back: the store works again.
    std::fs::remove_file(root.join("sessions")).unwrap();
    std::fs::rename(temp.join("moved"), root.join("sessions")).unwrap();
    assert_eq!(s.get(&id).as_deref(), Some(r#"{"user_id":1}"#));
}

// ---------------------------------------------------------------------------
// Records moved between ids
// ---------------------------------------------------------------------------

fn session_file(root: &Path, id: &str) -> PathBuf {
    root.join("sessions").join(id)
}

/// Claim (records moved between ids, files): every descriptor of a session file
/// carries a tag of its id, so a file copied or renamed under another id's name is
/// never served as that id's session, with or without a secret: a read reports
/// `SESSION_ERROR_CORRUPT`, a write, touch or regenerate finds no session there
/// (`SESSION_ERROR_NOT_FOUND`) and never writes the file, and the original session
/// is untouched.
#[test]
fn a_session_file_copied_or_renamed_under_another_id_is_corrupt_with_or_without_a_secret() {
    for extra in ["".to_string(), format!(r#", "secret": "{SECRET}""#)] {
        let temp = TempDir::new("security-moved");
        let s = open_rust(&file_json(temp.path(), &extra));
        let a = s.create(br#"{"user_id":1,"role":"admin"}"#).unwrap();
        let b = s.create(br#"{"user_id":2}"#).unwrap();
        let fresh = SessionId::generate().unwrap();
        let copy = session_file(temp.path(), fresh.as_str());
        std::fs::copy(session_file(temp.path(), a.as_str()), &copy).unwrap();
        let bytes = std::fs::read(&copy).unwrap();
        let f = fresh.as_bytes();
        assert_eq!(code(s.get(f)), SessionError::Corrupt, "{extra}");
        assert_eq!(code(s.get_versioned(f)), SessionError::Corrupt);
        assert_eq!(code(s.get_value(f, b"role")), SessionError::Corrupt);
        assert_eq!(code(s.peek(f)), SessionError::Corrupt);
        assert_eq!(code(s.update(f, b"{}")), SessionError::NotFound);
        assert_eq!(code(s.update_if(f, b"{}", 1)), SessionError::NotFound);
        assert_eq!(code(s.set_value(f, b"k", b"1")), SessionError::NotFound);
        assert_eq!(code(s.touch(f)), SessionError::NotFound);
        assert_eq!(code(s.regenerate(f)), SessionError::NotFound);
        assert_eq!(code(s.ttl(f)), SessionError::NotFound);
        assert_eq!(code(s.exists(f)), SessionError::NotFound);
        assert_eq!(std::fs::read(&copy).unwrap(), bytes, "a write went through");
        assert_eq!(
            s.get(a.as_bytes()).unwrap(),
            br#"{"user_id":1,"role":"admin"}"#
        );
        // Copied over another live session: that one reads as CORRUPT, not as a.
        std::fs::copy(
            session_file(temp.path(), a.as_str()),
            session_file(temp.path(), b.as_str()),
        )
        .unwrap();
        assert_eq!(code(s.get(b.as_bytes())), SessionError::Corrupt);
        // Renamed: gone under the old id, CORRUPT under the new one.
        let moved = SessionId::generate().unwrap();
        std::fs::rename(
            session_file(temp.path(), a.as_str()),
            session_file(temp.path(), moved.as_str()),
        )
        .unwrap();
        assert_eq!(code(s.get(a.as_bytes())), SessionError::NotFound);
        assert_eq!(code(s.get(moved.as_bytes())), SessionError::Corrupt);
    }
}

/// Rewrites every valid descriptor of the session file at `path` with the tag of
/// `id` (and a valid checksum): a forgery only someone who can write the store
/// can make.
fn retag(path: &Path, id: &SessionId) {
    let mut bytes = std::fs::read(path).unwrap();
    for (slot, mut desc) in format::descriptors(&bytes[..format::HEADER_LEN]) {
        desc.tag = format::tag(id);
        let at = slot * format::DESC_LEN;
        bytes[at..at + format::DESC_LEN].copy_from_slice(&desc.encode());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Claim (records moved between ids, encryption): with a `secret` the record is
/// sealed with the id in its associated data, so even a copy whose id tags were
/// forged to match its new name does not open: `SESSION_ERROR_CORRUPT`.
#[test]
fn with_a_secret_even_a_retagged_file_copy_does_not_open() {
    let temp = TempDir::new("security-retag");
    let s = open_rust(&file_json(
        temp.path(),
        &format!(r#", "secret": "{SECRET}""#),
    ));
    let a = s.create(br#"{"user_id":1}"#).unwrap();
    let fresh = SessionId::generate().unwrap();
    let copy = session_file(temp.path(), fresh.as_str());
    std::fs::copy(session_file(temp.path(), a.as_str()), &copy).unwrap();
    retag(&copy, &fresh);
    let err = s.get(fresh.as_bytes()).unwrap_err();
    assert_eq!(err.code, SessionError::Corrupt);
    assert!(
        err.message.contains("does not authenticate"),
        "{}",
        err.message
    );
    assert_eq!(
        code(s.set_value(fresh.as_bytes(), b"k", b"1")),
        SessionError::Corrupt
    );
}

/// Known limit (records moved between ids, no secret): the id tag stops copies and
/// mistakes, not a forger. Without a secret, someone who can write the session
/// directory can re-tag a copied file, and it is served under its new id.
#[test]
fn known_limit_without_a_secret_a_retagged_file_copy_is_served() {
    let temp = TempDir::new("security-retag-plain");
    let s = open_rust(&file_json(temp.path(), ""));
    let a = s.create(br#"{"user_id":1}"#).unwrap();
    let fresh = SessionId::generate().unwrap();
    let copy = session_file(temp.path(), fresh.as_str());
    std::fs::copy(session_file(temp.path(), a.as_str()), &copy).unwrap();
    retag(&copy, &fresh);
    assert_eq!(s.get(fresh.as_bytes()).unwrap(), br#"{"user_id":1}"#);
}

/// Claim (records moved between ids, Redis): with a `secret`, a session's hash
/// copied or renamed to another id's key does not open: `SESSION_ERROR_CORRUPT`
/// on every call that reads the data.
#[test]
fn with_a_secret_a_redis_value_copied_to_another_key_is_corrupt() {
    let redis = RedisServer::start(&[]);
    let s = open_rust(&redis_json(
        &redis.url(),
        &format!(r#", "secret": "{SECRET}""#),
    ));
    let a = s.create(br#"{"user_id":1}"#).unwrap();
    let (fresh, moved) = (
        SessionId::generate().unwrap(),
        SessionId::generate().unwrap(),
    );
    let key = |id: &SessionId| format!("session:{id}");
    let copied: i64 = redis.query(0, &[b"COPY", key(&a).as_bytes(), key(&fresh).as_bytes()]);
    assert_eq!(copied, 1);
    let f = fresh.as_bytes();
    assert_eq!(code(s.get(f)), SessionError::Corrupt);
    assert_eq!(code(s.get_versioned(f)), SessionError::Corrupt);
    assert_eq!(code(s.get_value(f, b"user_id")), SessionError::Corrupt);
    assert_eq!(code(s.set_value(f, b"k", b"1")), SessionError::Corrupt);
    assert_eq!(code(s.regenerate(f)), SessionError::Corrupt);
    redis.query::<()>(0, &[b"RENAME", key(&a).as_bytes(), key(&moved).as_bytes()]);
    assert_eq!(code(s.get(moved.as_bytes())), SessionError::Corrupt);
    assert_eq!(code(s.get(a.as_bytes())), SessionError::NotFound);
}

/// Known limit (records moved between ids, Redis without a secret): a Redis value
/// carries no id of its own, so without a secret a hash copied to another id's
/// key is served under that id. Whoever can write Redis can do this; set a
/// `secret` to make it CORRUPT.
#[test]
fn known_limit_without_a_secret_a_redis_value_copied_to_another_key_is_served() {
    let redis = RedisServer::start(&[]);
    let s = open_rust(&redis_json(&redis.url(), ""));
    let a = s.create(br#"{"user_id":1}"#).unwrap();
    let fresh = SessionId::generate().unwrap();
    let copied: i64 = redis.query(
        0,
        &[
            b"COPY",
            format!("session:{a}").as_bytes(),
            format!("session:{fresh}").as_bytes(),
        ],
    );
    assert_eq!(copied, 1);
    assert_eq!(s.get(fresh.as_bytes()).unwrap(), br#"{"user_id":1}"#);
}

/// Known limit (replay): a sealed record stays valid for its own id, so someone
/// who can write the store can put back an older record of the same session
/// (with any secret, on every driver that stores records outside the process).
#[test]
fn known_limit_an_older_record_of_the_same_session_can_be_put_back() {
    let temp = TempDir::new("security-replay");
    let s = open_rust(&file_json(
        temp.path(),
        &format!(r#", "secret": "{SECRET}""#),
    ));
    let id = s.create(br#"{"role":"admin"}"#).unwrap();
    let old = std::fs::read(session_file(temp.path(), id.as_str())).unwrap();
    s.update(id.as_bytes(), br#"{"role":"user"}"#).unwrap();
    std::fs::write(session_file(temp.path(), id.as_str()), old).unwrap();
    assert_eq!(s.get(id.as_bytes()).unwrap(), br#"{"role":"admin"}"#);
}

/// Known limit (stolen ids from the store): the store is keyed by the ids
/// themselves: the file names in `sessions/` and `sessions/owners/TAG/`, and the
/// Redis keys, are the ids a cookie carries, with or without a secret. Whoever can
/// list the session directory or read Redis (or a backup of either) can use every
/// live session.
#[test]
fn known_limit_ids_are_stored_in_the_clear_as_file_names_and_redis_keys() {
    let temp = TempDir::new("security-names");
    let extra = format!(r#", "secret": "{SECRET}", "owner_key": "user_id""#);
    let s = open_rust(&file_json(temp.path(), &extra));
    let id = s.create(br#"{"user_id":7}"#).unwrap();
    let names: Vec<String> = snapshot(temp.path())
        .keys()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.iter().filter(|n| *n == id.as_str()).count(), 2);

    let redis = RedisServer::start(&[]);
    let r = open_rust(&redis_json(&redis.url(), &extra));
    let id = r.create(br#"{"user_id":7}"#).unwrap();
    let keys: Vec<String> = redis.query(0, &[b"KEYS", b"*"]);
    assert!(keys.contains(&format!("session:{id}")), "{keys:?}");
}

// ---------------------------------------------------------------------------
// Fixation
// ---------------------------------------------------------------------------

/// Claim (fixed ids): the library never adopts an id it did not generate. No
/// function takes an id to create a session under; every call given a well-formed
/// id that names no session fails with `SESSION_ERROR_NOT_FOUND` (or answers
/// "none") and leaves no session behind, on every driver. An attacker cannot
/// plant a session under an id of their choosing.
#[test]
fn a_client_chosen_id_is_never_adopted_on_any_driver() {
    let temp = TempDir::new("security-fixation");
    let redis = RedisServer::start(&[]);
    let extra = r#", "owner_key": "user_id""#;
    let stores = [
        ("file", Handle::open(&file_json(temp.path(), extra))),
        ("memory", Handle::open(&memory_json(extra))),
        ("redis", Handle::open(&redis_json(&redis.url(), extra))),
    ];
    let chosen = [
        "0123456789abcdef".repeat(4),
        text(session_create_id()).unwrap(),
    ];
    for (name, s) in &stores {
        for x in &chosen {
            let id = c(x);
            let data = c(r#"{"user_id":42}"#);
            let not_found = |call: &str| {
                let (got, message) = last_error();
                assert_eq!(got, SessionError::NotFound, "{name} {call}: {message}");
            };
            unsafe {
                let p = s.ptr();
                assert!(session_store_get(p, id.as_ptr()).is_null());
                not_found("get");
                assert_eq!(session_store_update(p, id.as_ptr(), data.as_ptr()), 0);
                not_found("update");
                for version in [0, 1, 2] {
                    assert_eq!(
                        session_store_update_if(p, id.as_ptr(), data.as_ptr(), version),
                        0
                    );
                    not_found("update_if");
                }
                let (key, value) = (c("user_id"), c("42"));
                assert_eq!(
                    session_store_set_value(p, id.as_ptr(), key.as_ptr(), value.as_ptr()),
                    0
                );
                not_found("set_value");
                assert_eq!(session_store_delete_value(p, id.as_ptr(), key.as_ptr()), 0);
                not_found("delete_value");
                assert!(session_store_pop_value(p, id.as_ptr(), key.as_ptr()).is_null());
                not_found("pop_value");
                assert_eq!(session_store_touch(p, id.as_ptr()), 0);
                not_found("touch");
                assert!(session_store_regenerate(p, id.as_ptr()).is_null());
                not_found("regenerate");
                let mut version = 0;
                assert!(session_store_get_versioned(p, id.as_ptr(), &mut version).is_null());
                not_found("get_versioned");
                assert_eq!(session_store_ttl(p, id.as_ptr()), -1);
                // The cookie helpers only format and parse: no session appears.
                take(session_store_cookie_header(p, id.as_ptr())).unwrap();
                let header = c(&format!("session_id={x}"));
                take(session_store_id_from_cookie_header(p, header.as_ptr())).unwrap();
                assert!(!s.exists(x), "{name}: {x} exists");
            }
        }
        assert_eq!(s.count(), 0, "{name}: a session was planted");
        assert_eq!(
            unsafe { session_store_count_owner(s.ptr(), c("42").as_ptr()) },
            0,
            "{name}"
        );
    }
    // No session file, no owner-index entry (only empty directories), no key.
    for (path, _) in snapshot(&temp.join("sessions")) {
        assert!(path.is_dir(), "{} was left behind", path.display());
    }
    let keys: Vec<String> = redis.query(0, &[b"KEYS", b"*"]);
    assert!(keys.is_empty(), "{keys:?}");
}

/// Claim (fixed ids, resources): with `owner_key`, `session_update` and
/// `session_update_if` write the owner-index entry before the session (so that a
/// crash never leaves a session unindexed); when the id names no session, the entry
/// is taken back at once, so updates of client-chosen ids leave nothing behind (no
/// file in `owners/TAG/`, no member of a Redis owner set), and the owner's count,
/// list and "log out everywhere" never see them.
#[test]
fn an_update_of_an_unknown_id_leaves_no_owner_index_entry() {
    let temp = TempDir::new("security-stale-entry");
    let redis = RedisServer::start(&[]);
    let extra = r#", "owner_key": "user_id""#;
    let file = Handle::open(&file_json(temp.path(), extra));
    let on_redis = Handle::open(&redis_json(&redis.url(), extra));
    let memory = Handle::open(&memory_json(extra));
    let chosen = "0123456789abcdef".repeat(4);
    for s in [&file, &on_redis, &memory] {
        let id = c(&chosen);
        let data = c(r#"{"user_id":42}"#);
        unsafe {
            assert_eq!(session_store_update(s.ptr(), id.as_ptr(), data.as_ptr()), 0);
            assert_eq!(last_error().0, SessionError::NotFound);
            assert_eq!(
                session_store_update_if(s.ptr(), id.as_ptr(), data.as_ptr(), 1),
                0
            );
            assert_eq!(last_error().0, SessionError::NotFound);
            assert_eq!(session_store_count_owner(s.ptr(), c("42").as_ptr()), 0);
            assert_eq!(
                text(session_store_list_owner(s.ptr(), c("42").as_ptr())).unwrap(),
                "[]"
            );
            assert_eq!(session_store_destroy_owner(s.ptr(), c("42").as_ptr()), 0);
        }
        assert!(!s.exists(&chosen));
    }
    let files: Vec<PathBuf> = snapshot(&temp.join("sessions"))
        .into_keys()
        .filter(|p| !p.is_dir())
        .collect();
    assert!(files.is_empty(), "{files:?}");
    let keys: Vec<String> = redis.query(0, &[b"KEYS", b"*"]);
    assert!(keys.is_empty(), "{keys:?}");
}

/// Claim (other local users): a session directory that belongs to another user and
/// is open to others is refused, not made 0700 and used: its owner could open it
/// again and read or plant sessions. Ours, open to others, is made 0700. (Creating
/// another user's directory needs root: CI runs the suite as root; otherwise only
/// the second half runs, and says so.)
#[test]
fn a_session_directory_of_another_user_open_to_others_is_refused() {
    let temp = TempDir::new("security-dir-owner");
    let dir = temp.join("sessions");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    if unsafe { libc::geteuid() } == 0 {
        let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::chown(path.as_ptr(), 65534, 65534) }, 0);
        let json = c(&file_json(temp.path(), ""));
        let store = unsafe { session_store_open_json(json.as_ptr(), std::ptr::null()) };
        assert!(store.is_null(), "another user's 0777 directory was used");
        let (code, message) = last_error();
        assert_eq!(code, SessionError::StorageUnavailable, "{message}");
        assert!(message.contains("belongs to user id 65534"), "{message}");
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777, "the directory was changed");
        // Its owner keeping it 0700 is how an admin's `sessionctl` (root) reads the
        // store of the server's user.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let s = Handle::open(&file_json(temp.path(), ""));
        let id = s.create("{}");
        assert!(s.exists(&id));
        drop(s);
        assert_eq!(unsafe { libc::chown(path.as_ptr(), 0, 0) }, 0);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    } else {
        eprintln!("not root: another user's directory cannot be made; checking ours only");
    }
    let s = Handle::open(&file_json(temp.path(), ""));
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    drop(s);
}

/// Claim (fixed ids): an attacker can still plant a real id (one the server gave
/// them) in a victim's browser; `session_regenerate` at login defeats it. The new
/// id is fresh, the old one stops working at once, and with `regenerate_grace` it
/// only reads the data as it was before the login: what the server writes after
/// the login, through the new id, never shows through the old one, and the old
/// one cannot be written.
#[test]
fn regenerate_at_login_leaves_a_planted_id_nothing_to_ride_on_every_driver() {
    let temp = TempDir::new("security-regenerate");
    let redis = RedisServer::start(&[]);
    for grace in [0, 60] {
        let extra = format!(r#", "regenerate_grace": {grace}"#);
        let stores = [
            ("file", Handle::open(&file_json(temp.path(), &extra))),
            ("memory", Handle::open(&memory_json(&extra))),
            ("redis", Handle::open(&redis_json(&redis.url(), &extra))),
        ];
        for (name, s) in &stores {
            let planted = s.create(r#"{"cart":[1]}"#);
            let fresh = unsafe { session_store_regenerate(s.ptr(), c(&planted).as_ptr()) };
            let fresh = text(fresh).unwrap();
            assert_ne!(fresh, planted);
            let (key, value) = (c("user_id"), c("42"));
            assert_eq!(
                unsafe {
                    session_store_set_value(
                        s.ptr(),
                        c(&fresh).as_ptr(),
                        key.as_ptr(),
                        value.as_ptr(),
                    )
                },
                1
            );
            assert!(s.get(&fresh).unwrap().contains(r#""user_id":42"#), "{name}");
            let old = s.get(&planted);
            if grace == 0 {
                assert_eq!(old, None, "{name}");
                assert_eq!(last_error().0, SessionError::NotFound);
            } else {
                assert_eq!(old.as_deref(), Some(r#"{"cart":[1]}"#), "{name}");
            }
            let p = c(&planted);
            unsafe {
                assert_eq!(
                    session_store_update(s.ptr(), p.as_ptr(), c("{}").as_ptr()),
                    0
                );
                assert_eq!(last_error().0, SessionError::NotFound, "{name}");
                assert_eq!(
                    session_store_set_value(s.ptr(), p.as_ptr(), key.as_ptr(), value.as_ptr()),
                    0
                );
                assert_eq!(last_error().0, SessionError::NotFound, "{name}");
                assert!(session_store_regenerate(s.ptr(), p.as_ptr()).is_null());
                assert_eq!(last_error().0, SessionError::NotFound, "{name}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Secrets, data and ids in messages and Debug output
// ---------------------------------------------------------------------------

/// What no message may contain: session data, ids (whole or any 16-character
/// piece) and secrets.
struct Forbidden(Vec<String>);

impl Forbidden {
    fn new(extra: &[&str]) -> Forbidden {
        let mut all = vec![
            DATA_MARKER.to_string(),
            OWNER_MARKER.to_string(),
            SECRET.to_string(),
            SECRET[..20].to_string(),
            OTHER_SECRET.to_string(),
            OTHER_SECRET[..20].to_string(),
        ];
        all.extend(extra.iter().map(|s| s.to_string()));
        Forbidden(all)
    }

    fn id(&mut self, id: &str) {
        self.0.push(id.to_string());
        for piece in id.as_bytes().chunks(16) {
            self.0.push(String::from_utf8(piece.to_vec()).unwrap());
        }
    }

    /// `shown` (a message, a `Debug` output) holds nothing forbidden.
    #[track_caller]
    fn check_text(&self, what: &str, shown: &str) {
        for bad in &self.0 {
            assert!(
                !shown.contains(bad.as_str()),
                "{what}: {shown:?} shows {bad:?}"
            );
        }
    }

    /// An error's message: there is one, and it holds nothing forbidden.
    #[track_caller]
    fn check_message(&self, what: &str, code: SessionError, message: &str) {
        assert_ne!(code, SessionError::Ok, "{what}: no error");
        assert!(!message.is_empty(), "{what}: no message");
        self.check_text(what, message);
    }

    /// The calling thread's last error, which must be `expected`.
    #[track_caller]
    fn check(&self, what: &str, expected: SessionError) {
        let (code, message) = last_error();
        assert_eq!(code, expected, "{what}: {message}");
        self.check_message(what, code, &message);
    }

    #[track_caller]
    fn check_err<T: std::fmt::Debug>(
        &self,
        what: &str,
        expected: SessionError,
        result: session::Result<T>,
    ) {
        let err = result.expect_err(what);
        assert_eq!(err.code, expected, "{what}: {}", err.message);
        self.check_message(what, err.code, &err.message);
        self.check_message(what, err.code, &format!("{err:?}"));
    }
}

/// Claim (secrets in logs): no error message of the C API shows session data,
/// an id or a secret, whatever fails: malformed and unknown ids, data over
/// `max_data_size`, bad JSON values, data that is not an object, a compare-and-set
/// conflict, a bad ttl, damaged, copied and wrongly-sealed records, the old id of
/// a regenerate, a missing owner index, cookies without an id, a vanished
/// directory, a held lock, a full store and NULL arguments.
#[test]
fn no_c_api_error_message_shows_data_ids_or_secrets() {
    let temp = TempDir::new("security-messages");
    let root = temp.path();
    let sealed = format!(
        r#", "secret": "{SECRET}", "max_data_size": 4096, "regenerate_grace": 60, "lock_timeout_ms": 50"#
    );
    let s = Handle::open(&file_json(root, &sealed));
    let mut no = Forbidden::new(&[]);
    let data = format!(r#"{{"user_id":42,"note":"{DATA_MARKER}"}}"#);
    let live = s.create(&data);
    no.id(&live);
    let unknown = text(session_create_id()).unwrap();
    no.id(&unknown);
    let big = format!(r#"{{"note":"{DATA_MARKER}{}"}}"#, "x".repeat(5000));
    let (key, one) = (c("note"), c("1"));
    unsafe {
        let p = s.ptr();
        // Malformed ids carrying a marker.
        for id in [
            format!("../{DATA_MARKER}"),
            format!("{DATA_MARKER}{}", "a".repeat(64 - DATA_MARKER.len())),
            format!("{live}{DATA_MARKER}"),
            live.to_uppercase(),
        ] {
            assert!(session_store_get(p, c(&id).as_ptr()).is_null());
            no.check("malformed id", SessionError::InvalidArgument);
            assert_eq!(
                session_store_update(p, c(&id).as_ptr(), c(&data).as_ptr()),
                0
            );
            no.check("malformed id", SessionError::InvalidArgument);
        }
        // An unknown id, on every call that takes one.
        let u = c(&unknown);
        assert!(session_store_get(p, u.as_ptr()).is_null());
        no.check("get unknown", SessionError::NotFound);
        assert_eq!(session_store_update(p, u.as_ptr(), c(&data).as_ptr()), 0);
        no.check("update unknown", SessionError::NotFound);
        assert_eq!(session_store_touch(p, u.as_ptr()), 0);
        no.check("touch unknown", SessionError::NotFound);
        assert_eq!(session_store_ttl(p, u.as_ptr()), -1);
        no.check("ttl unknown", SessionError::NotFound);
        assert!(session_store_regenerate(p, u.as_ptr()).is_null());
        no.check("regenerate unknown", SessionError::NotFound);
        assert_eq!(
            session_store_set_value(p, u.as_ptr(), key.as_ptr(), one.as_ptr()),
            0
        );
        no.check("set_value unknown", SessionError::NotFound);
        // Too large, on create, update and set_value.
        assert!(session_store_create(p, c(&big).as_ptr()).is_null());
        no.check("create too large", SessionError::TooLarge);
        let l = c(&live);
        assert_eq!(session_store_update(p, l.as_ptr(), c(&big).as_ptr()), 0);
        no.check("update too large", SessionError::TooLarge);
        let huge = c(&format!("\"{DATA_MARKER}{}\"", "y".repeat(5000)));
        assert_eq!(
            session_store_set_value(p, l.as_ptr(), key.as_ptr(), huge.as_ptr()),
            0
        );
        no.check("set_value too large", SessionError::TooLarge);
        // Bad JSON values and keys.
        for bad in [
            format!("{{\"{DATA_MARKER}\": "),
            format!("\"{DATA_MARKER}"),
            DATA_MARKER.to_string(),
            format!("[\"{DATA_MARKER}\"] trailing"),
        ] {
            assert_eq!(
                session_store_set_value(p, l.as_ptr(), key.as_ptr(), c(&bad).as_ptr()),
                0
            );
            no.check("set_value bad JSON", SessionError::InvalidArgument);
        }
        let bad_key = [0xffu8, 0xfe, b'D', 0];
        assert_eq!(
            session_store_set_value(p, l.as_ptr(), bad_key.as_ptr().cast(), one.as_ptr()),
            0
        );
        no.check("set_value non-UTF-8 key", SessionError::InvalidArgument);
        // Data that is not a JSON object.
        for not_object in [
            format!("{DATA_MARKER} is not JSON"),
            format!("[\"{DATA_MARKER}\"]"),
            format!("{{\"{DATA_MARKER}\" 1}}"),
            format!("{{\"a\":1}} {DATA_MARKER}"),
        ] {
            let n = s.create(&not_object);
            no.id(&n);
            assert!(session_store_get_value(p, c(&n).as_ptr(), key.as_ptr()).is_null());
            no.check("get_value of a non-object", SessionError::InvalidArgument);
            assert_eq!(
                session_store_set_value(p, c(&n).as_ptr(), key.as_ptr(), one.as_ptr()),
                0
            );
            no.check("set_value of a non-object", SessionError::InvalidArgument);
        }
        // A compare-and-set conflict.
        let mut version = 0;
        take(session_store_get_versioned(p, l.as_ptr(), &mut version)).unwrap();
        assert_eq!(session_store_update(p, l.as_ptr(), c(&data).as_ptr()), 1);
        assert_eq!(
            session_store_update_if(p, l.as_ptr(), c(&data).as_ptr(), version),
            0
        );
        no.check("update_if conflict", SessionError::Conflict);
        // A bad ttl.
        for ttl in [0, -1, c_long::MAX] {
            assert!(session_store_create_ttl(p, c(&data).as_ptr(), ttl).is_null());
            no.check("create_ttl", SessionError::InvalidArgument);
        }
        // The old id of a regenerate, during the grace.
        let old = s.create(&data);
        no.id(&old);
        let new = text(session_store_regenerate(p, c(&old).as_ptr())).unwrap();
        no.id(&new);
        assert_eq!(
            session_store_update(p, c(&old).as_ptr(), c(&data).as_ptr()),
            0
        );
        no.check("update of a regenerated id", SessionError::NotFound);
        // Damaged, copied and wrongly sealed records.
        let damaged = s.create(&data);
        no.id(&damaged);
        let path = session_file(root, &damaged);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let d = c(&damaged);
        assert!(session_store_get(p, d.as_ptr()).is_null());
        no.check("get damaged", SessionError::Corrupt);
        assert_eq!(
            session_store_set_value(p, d.as_ptr(), key.as_ptr(), one.as_ptr()),
            0
        );
        no.check("set_value damaged", SessionError::Corrupt);
        assert!(session_store_regenerate(p, d.as_ptr()).is_null());
        no.check("regenerate damaged", SessionError::Corrupt);
        let copy = text(session_create_id()).unwrap();
        no.id(&copy);
        std::fs::copy(session_file(root, &live), session_file(root, &copy)).unwrap();
        assert!(session_store_get(p, c(&copy).as_ptr()).is_null());
        no.check("get copied", SessionError::Corrupt);
        let other = Handle::open(&file_json(
            root,
            &format!(r#", "secret": "{OTHER_SECRET}""#),
        ));
        assert!(session_store_get(other.ptr(), l.as_ptr()).is_null());
        no.check("get with another secret", SessionError::Corrupt);
        let unsealed = Handle::open(&file_json(root, ""));
        let plain = unsealed.create(&data);
        no.id(&plain);
        assert!(session_store_get(p, c(&plain).as_ptr()).is_null());
        no.check(
            "get of a record stored without the secret",
            SessionError::Corrupt,
        );
        // No owner index, and no session cookie.
        assert_eq!(session_store_destroy_owner(p, c(OWNER_MARKER).as_ptr()), -1);
        no.check("destroy_owner without owner_key", SessionError::Config);
        for header in [
            format!("session_id={DATA_MARKER}; theme={live}"),
            format!("session_id={}", live.to_uppercase()),
            format!("session_id={}", &live[..63]),
            format!("Cookie: sid={live}"),
        ] {
            let h = c(&header);
            assert!(session_store_id_from_cookie_header(p, h.as_ptr()).is_null());
            no.check("id_from_cookie_header", SessionError::NotFound);
        }
        // A held lock: TIMEOUT.
        let held = std::fs::File::open(session_file(root, &live)).unwrap();
        assert_eq!(
            libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_EX),
            0
        );
        assert_eq!(session_store_update(p, l.as_ptr(), c(&data).as_ptr()), 0);
        no.check("update under a held lock", SessionError::Timeout);
        drop(held);
        // The session directory gone: STORAGE_UNAVAILABLE.
        std::fs::rename(root.join("sessions"), root.join("away")).unwrap();
        assert!(session_store_get(p, u.as_ptr()).is_null());
        no.check(
            "get without the directory",
            SessionError::StorageUnavailable,
        );
        assert!(session_store_create(p, c(&data).as_ptr()).is_null());
        no.check(
            "create without the directory",
            SessionError::StorageUnavailable,
        );
        std::fs::rename(root.join("away"), root.join("sessions")).unwrap();
        // NULL arguments.
        assert!(session_store_create(p, null()).is_null());
        no.check("create NULL", SessionError::InvalidArgument);
        assert_eq!(session_store_update(p, l.as_ptr(), null()), 0);
        no.check("update NULL data", SessionError::InvalidArgument);
        assert!(session_store_get(null(), l.as_ptr()).is_null());
        no.check("get on a NULL store", SessionError::InvalidArgument);
    }
    // A full memory store, and an owner call with a marker.
    let m = Handle::open(&memory_json(
        r#", "max_sessions": 1, "owner_key": "user_id""#,
    ));
    no.id(&m.create(&data));
    unsafe {
        assert!(session_store_create(m.ptr(), c(&data).as_ptr()).is_null());
        no.check("create in a full store", SessionError::Full);
        assert_eq!(session_store_destroy_owner(m.ptr(), c("").as_ptr()), -1);
        no.check(
            "destroy_owner of an empty owner",
            SessionError::InvalidArgument,
        );
        let bad_owner = [0xffu8, b'O', 0];
        assert_eq!(
            session_store_count_owner(m.ptr(), bad_owner.as_ptr().cast()),
            -1
        );
        no.check(
            "count_owner of a non-UTF-8 owner",
            SessionError::InvalidArgument,
        );
    }
}

/// Claim (secrets in logs): the Rust API's errors (message and `Debug`) show no
/// session data, id or secret either, for the same kinds of failure.
#[test]
fn no_rust_api_error_shows_data_ids_or_secrets() {
    let temp = TempDir::new("security-rust-messages");
    let root = temp.path();
    let s = open_rust(&file_json(
        root,
        &format!(r#", "secret": "{SECRET}", "max_data_size": 4096, "owner_key": "user_id""#),
    ));
    let mut no = Forbidden::new(&[]);
    let data = format!(r#"{{"user_id":42,"note":"{DATA_MARKER}"}}"#);
    let live = s.create(data.as_bytes()).unwrap();
    no.id(live.as_str());
    let l = live.as_bytes();
    let unknown = SessionId::generate().unwrap();
    no.id(unknown.as_str());
    let big = format!("{DATA_MARKER}{}", "z".repeat(5000));
    no.check_err(
        "get unknown",
        SessionError::NotFound,
        s.get(unknown.as_bytes()),
    );
    no.check_err(
        "malformed",
        SessionError::InvalidArgument,
        s.get(format!("{DATA_MARKER}/../x").as_bytes()),
    );
    no.check_err(
        "too large",
        SessionError::TooLarge,
        s.create(big.as_bytes()),
    );
    no.check_err(
        "update too large",
        SessionError::TooLarge,
        s.update(l, big.as_bytes()),
    );
    no.check_err(
        "bad JSON",
        SessionError::InvalidArgument,
        s.set_value(l, b"k", format!("{{\"{DATA_MARKER}\":").as_bytes()),
    );
    let (_, version) = s.get_versioned(l).unwrap();
    s.update(l, data.as_bytes()).unwrap();
    no.check_err(
        "conflict",
        SessionError::Conflict,
        s.update_if(l, data.as_bytes(), version),
    );
    no.check_err("owner", SessionError::InvalidArgument, s.count_owner(b""));
    // A damaged file (one version only, so nothing to fall back to).
    let damaged = s.create(data.as_bytes()).unwrap();
    no.id(damaged.as_str());
    let path = session_file(root, damaged.as_str());
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let d = damaged.as_bytes();
    no.check_err("damaged", SessionError::Corrupt, s.get(d));
    no.check_err("damaged", SessionError::Corrupt, s.regenerate(d));
    no.check_err("damaged", SessionError::Corrupt, s.pop_value(d, b"note"));
    no.check_err(
        "cookie",
        SessionError::NotFound,
        s.id_from_cookie_header(format!("session_id={DATA_MARKER}").as_bytes()),
    );
}

/// Claim (secrets in logs): a configuration that fails holds its secrets and
/// passwords back: a short, mistyped or repeated secret, fallbacks without a
/// secret, a malformed JSON text around a secret, a bad Redis URL or entry with a
/// password, a wrong TLS setting, other mistakes next to a valid secret; through
/// `session_store_open_json`, `Config::from_json` and `Config::from_file`.
#[test]
fn no_configuration_error_shows_a_secret_or_a_password() {
    const PASSWORD: &str = "PASSWORD-MARKER-c41d";
    let no = Forbidden::new(&[PASSWORD]);
    let temp = TempDir::new("security-config");
    let missing_root = temp.join("does-not-exist");
    let bad = [
        format!(
            r#"{{"sessions": {{"driver": "memory", "secret": "{}"}}}}"#,
            &SECRET[..25]
        ),
        format!(r#"{{"sessions": {{"driver": "memory", "secret": ["{SECRET}"]}}}}"#),
        format!(r#"{{"sessions": {{"driver": "memory", "secret": {{"v": "{SECRET}"}}}}}}"#),
        format!(r#"{{"sessions": {{"driver": "memory", "secret_fallbacks": ["{SECRET}"]}}}}"#),
        format!(
            r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", "secret_fallbacks": "{OTHER_SECRET}"}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", "secret_fallbacks": ["{SECRET}"]}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", "secret_fallbacks": ["{}"]}}}}"#,
            &OTHER_SECRET[..25]
        ),
        format!(r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", "lifetime": 0}}}}"#),
        format!(
            r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", "secrt": "{OTHER_SECRET}"}}}}"#
        ),
        format!(r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", }}}}"#),
        format!(r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}"#),
        format!("{{\"sessions\": {{\"driver\": \"memory\", \"secret\": \"{SECRET}\u{1}\"}}}}"),
        format!(r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}\q"}}}}"#),
        format!(r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}" "x"}}}}"#),
        format!(
            r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "secret": "{SECRET}"}}, "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
            missing_root.display()
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "url": "http://u:{PASSWORD}@127.0.0.1:1"}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "url": "redis://u:{PASSWORD}@127.0.0.1:notaport"}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "url": "redis://u:{PASSWORD}@127.0.0.1:1", "host_id": "r"}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "url": "redis://u:{PASSWORD}@127.0.0.1:1", "tls_ca_file": "/x"}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "url": "rediss://u:{PASSWORD}@127.0.0.1:1", "tls_ca_file": "{}"}}}}"#,
            missing_root.display()
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "url": "redis://u:{PASSWORD}@127.0.0.1:{}", "connect_timeout_ms": 200}}}}"#,
            closed_port()
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "host_id": "r"}}, "databases": {{"redis": [{{"host_id": "r", "password": ["{PASSWORD}"]}}]}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "host_id": "r"}}, "databases": {{"redis": [{{"host_id": "r", "password": "{PASSWORD}", "prot": 1}}]}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "host_id": "r"}}, "databases": {{"redis": [{{"host_id": "r", "password": "{PASSWORD}", "port": {}}}]}}}}"#,
            closed_port()
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "host_id": "r", "secret": "{SECRET}"}}, "databases": {{"redis": [{{"host_id": "r", "password": "{PASSWORD}", "port": 70000}}]}}}}"#
        ),
    ];
    let path = temp.join("config.json");
    for json in &bad {
        let store = unsafe { session_store_open_json(c(json).as_ptr(), null()) };
        assert!(store.is_null(), "{json} opened");
        let (code, message) = last_error();
        no.check_message(json, code, &message);
        let from_text = Config::from_json(json.as_bytes()).and_then(|cfg| Sessions::open(&cfg));
        no.check_message(json, code, &from_text.err().expect(json).message);
        std::fs::write(&path, json).unwrap();
        let from_file = Config::from_file(&path).and_then(|cfg| Sessions::open(&cfg));
        no.check_message(json, code, &from_file.err().expect(json).message);
    }
}

/// Claim (secrets in logs, Redis): with a password-protected Redis, no message
/// shows the password (right or wrong), the data, the id or the secret: a wrong
/// password, a missing one, a server that is down or frozen, copied and damaged
/// records, a missing session, too large data.
#[test]
fn no_redis_error_message_shows_a_password_data_ids_or_secrets() {
    const PASSWORD: &str = "REDIS-PASSWORD-9d0e";
    const WRONG: &str = "WRONG-PASSWORD-61f3";
    let mut server = RedisServer::start(&["--requirepass", PASSWORD]);
    let mut no = Forbidden::new(&[PASSWORD, WRONG]);
    let port = server.port;
    let url = |password: &str| format!("redis://:{password}@127.0.0.1:{port}");
    for (json, expected) in [
        (redis_json(&url(WRONG), ""), SessionError::Config),
        (
            redis_json(&format!("redis://127.0.0.1:{port}"), ""),
            SessionError::Config,
        ),
        (
            format!(
                r#"{{"sessions": {{"driver": "redis", "host_id": "r"}}, "databases": {{"redis": [{{"host_id": "r", "port": {port}, "user": "nobody", "password": "{WRONG}"}}]}}}}"#
            ),
            SessionError::Config,
        ),
    ] {
        assert!(unsafe { session_store_open_json(c(&json).as_ptr(), null()) }.is_null());
        no.check(&json, expected);
    }
    let s = Handle::open(&redis_json(
        &url(PASSWORD),
        &format!(r#", "secret": "{SECRET}", "max_data_size": 1024, "command_timeout_ms": 200"#),
    ));
    let data = format!(r#"{{"user_id":42,"note":"{DATA_MARKER}"}}"#);
    let live = s.create(&data);
    no.id(&live);
    let unknown = text(session_create_id()).unwrap();
    no.id(&unknown);
    let admin = |args: &[&[u8]]| {
        let mut conn = server.admin();
        let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query::<redis::Value>(&mut conn).unwrap();
    };
    let copy = text(session_create_id()).unwrap();
    no.id(&copy);
    admin(&[
        b"COPY",
        format!("session:{live}").as_bytes(),
        format!("session:{copy}").as_bytes(),
    ]);
    let damaged = s.create(&data);
    no.id(&damaged);
    admin(&[
        b"HSET",
        format!("session:{damaged}").as_bytes(),
        b"d",
        DATA_MARKER.as_bytes(),
    ]);
    unsafe {
        assert!(session_store_get(s.ptr(), c(&unknown).as_ptr()).is_null());
        no.check("get unknown", SessionError::NotFound);
        assert!(session_store_get(s.ptr(), c(&copy).as_ptr()).is_null());
        no.check("get copied", SessionError::Corrupt);
        assert!(session_store_get(s.ptr(), c(&damaged).as_ptr()).is_null());
        no.check("get damaged", SessionError::Corrupt);
        let big = format!(r#"{{"note":"{DATA_MARKER}{}"}}"#, "x".repeat(2000));
        assert_eq!(
            session_store_update(s.ptr(), c(&live).as_ptr(), c(&big).as_ptr()),
            0
        );
        no.check("update too large", SessionError::TooLarge);
        // Frozen, then down.
        server.signal(libc::SIGSTOP);
        assert!(session_store_get(s.ptr(), c(&live).as_ptr()).is_null());
        no.check("get from a frozen server", SessionError::Timeout);
        server.signal(libc::SIGCONT);
        server.kill();
        assert!(session_store_get(s.ptr(), c(&live).as_ptr()).is_null());
        no.check("get from a dead server", SessionError::StorageUnavailable);
        assert!(session_store_create(s.ptr(), c(&data).as_ptr()).is_null());
        no.check("create on a dead server", SessionError::StorageUnavailable);
    }
}

/// Claim (secrets in logs): `Debug` output of the configuration and key types
/// never shows a secret, a fallback secret, a Redis password (in an entry or in a
/// URL), and a session id's `Debug` shows only its first 8 characters.
#[test]
fn debug_output_never_shows_a_secret_a_password_or_a_whole_id() {
    const PASSWORD: &str = "PASSWORD-MARKER-0b7e";
    let no = Forbidden::new(&[PASSWORD]);
    let configs = [
        format!(
            r#"{{"sessions": {{"driver": "memory", "secret": "{SECRET}", "secret_fallbacks": ["{OTHER_SECRET}"]}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"web": {{"driver": "redis", "url": "redis://user:{PASSWORD}@127.0.0.1:1/2", "secret": "{SECRET}"}},
                               "api": {{"driver": "redis", "host_id": "r", "secret": "{OTHER_SECRET}"}}}},
                "databases": {{"redis": [{{"host_id": "r", "user": "u", "password": "{PASSWORD}"}}]}}}}"#
        ),
        format!(
            r#"{{"sessions": {{"driver": "redis", "url": "rediss://:{PASSWORD}@example.com:6380/0", "tls_ca_file": "/ca.pem"}}}}"#
        ),
    ];
    for json in &configs {
        let config = Config::from_json(json.as_bytes()).unwrap();
        for shown in [format!("{config:?}"), format!("{config:#?}")] {
            no.check_text("Debug of Config", &shown);
        }
        for store in &config.stores {
            no.check_text("Debug of a StoreConfig", &format!("{store:?}"));
            no.check_text("Debug of a DriverConfig", &format!("{:?}", store.driver));
        }
    }
    let secret = Secret::new(SECRET.as_bytes(), "secret").unwrap();
    let other = Secret::new(OTHER_SECRET.as_bytes(), "secret").unwrap();
    no.check_text("Debug of Secret", &format!("{secret:?}"));
    let sealer = Sealer::new(&secret, &[other]).unwrap();
    no.check_text("Debug of Sealer", &format!("{sealer:?}"));
    let id = SessionId::generate().unwrap();
    let shown = format!("{id:?}");
    assert!(shown.contains(&id.as_str()[..8]), "{shown}");
    assert!(!shown.contains(&id.as_str()[..9]), "{shown}");
}

// ---------------------------------------------------------------------------
// Encryption: nonces
// ---------------------------------------------------------------------------

/// Claim (nonce limits): every seal draws a fresh random 96-bit nonce: 20,000
/// seals of the same data for the same id under one secret have 20,000 distinct
/// nonces (and so distinct records). The 2^32 seals per secret after which random
/// nonces stop being safe cannot be tested; SECURITY.md says when to rotate.
#[test]
fn every_seal_draws_a_fresh_nonce() {
    let sealer = Sealer::new(&Secret::new(SECRET.as_bytes(), "secret").unwrap(), &[]).unwrap();
    let id = SessionId::generate().unwrap();
    let mut nonces = std::collections::HashSet::new();
    let mut key_ids = std::collections::HashSet::new();
    for _ in 0..20_000 {
        let record = sealer.seal(&id, b"{\"user_id\":42}").unwrap();
        // 0xA1 | key id (4) | nonce (12) | ciphertext | tag (16)
        assert_eq!(record[0], 0xA1);
        key_ids.insert(record[1..5].to_vec());
        assert!(nonces.insert(record[5..17].to_vec()), "a nonce repeated");
    }
    assert_eq!(key_ids.len(), 1);
}

// ---------------------------------------------------------------------------
// Cookies and output
// ---------------------------------------------------------------------------

/// Claim (stolen ids, cookie attributes): the default `Set-Cookie` of the session
/// is `Secure`, `HttpOnly`, `SameSite=Lax` and `Path=/`, and the cookie that
/// deletes it carries the same attributes.
#[test]
fn the_default_session_cookie_is_secure_http_only_and_same_site_lax() {
    let s = Handle::open(&memory_json(r#", "lifetime": 600"#));
    let id = s.create("{}");
    let set = text(unsafe { session_store_cookie_header(s.ptr(), c(&id).as_ptr()) }).unwrap();
    assert!(
        set.starts_with(&format!("session_id={id}; Max-Age=600; Expires=")),
        "{set}"
    );
    assert!(
        set.ends_with("; Path=/; Secure; HttpOnly; SameSite=Lax"),
        "{set}"
    );
    let clear = text(unsafe { session_store_cookie_clear_header(s.ptr()) }).unwrap();
    assert_eq!(
        clear,
        "session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Lax"
    );
}

/// Claim (secrets in logs): the library itself logs nothing: no call, failing or
/// not, writes to standard output or standard error (what reaches a log is only
/// what the server chooses to write). Checked in a child process
/// (`role_silent`), whose descriptors 1 and 2 go to a file during the calls.
#[test]
fn the_library_writes_nothing_to_stdout_or_stderr() {
    run_role("role_silent");
}

#[test]
#[ignore = "a child role of the_library_writes_nothing_to_stdout_or_stderr"]
fn role_silent() {
    if !is_role("role_silent") {
        return;
    }
    let temp = TempDir::new("security-silent");
    let out = std::fs::File::create(temp.join("out")).unwrap();
    let (saved_out, saved_err) = unsafe { (libc::dup(1), libc::dup(2)) };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&out);
    unsafe {
        libc::dup2(fd, 1);
        libc::dup2(fd, 2);
    }
    let root = temp.join("root");
    std::fs::create_dir(&root).unwrap();
    let sealed = format!(r#", "secret": "{SECRET}", "max_data_size": 64"#);
    for json in [
        file_json(&root, &sealed),
        memory_json(&sealed),
        redis_json(
            &format!("redis://:pw@127.0.0.1:{}", closed_port()),
            r#", "lazy_connect": true"#,
        ),
    ] {
        let s = unsafe { session_store_open_json(c(&json).as_ptr(), null()) };
        unsafe {
            let id = take(session_store_create(s, c("{\"a\":1}").as_ptr()));
            let id = c(std::str::from_utf8(&id.unwrap_or_default()).unwrap());
            take(session_store_get(s, id.as_ptr()));
            take(session_store_get(s, c("../x").as_ptr()));
            session_store_update(s, id.as_ptr(), c(&"x".repeat(100)).as_ptr());
            session_store_set_value(s, id.as_ptr(), c("k").as_ptr(), c("{").as_ptr());
            take(session_store_get(s, c(&"a".repeat(64)).as_ptr()));
            session_store_close(s);
        }
    }
    let bad = unsafe { session_store_open_json(c("{\"sessions\": 1}").as_ptr(), null()) };
    assert!(bad.is_null());
    unsafe {
        libc::dup2(saved_out, 1);
        libc::dup2(saved_err, 2);
    }
    let written = std::fs::read(temp.join("out")).unwrap();
    assert!(
        written.is_empty(),
        "the library wrote: {}",
        String::from_utf8_lossy(&written)
    );
    println!("ROLE DONE");
}
