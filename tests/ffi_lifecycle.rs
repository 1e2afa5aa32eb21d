//! The reshaped C API, called in process as a C caller would (CString arguments,
//! `free()` on returned strings), on real files and a real `redis-server`: store
//! handles, named configurations, the session lifecycle functions (`create_ttl`,
//! `touch`, `ttl`, `exists`, `count`, `remove_expired_count`, `regenerate`),
//! `max_sessions`, and failures that must never be silent.
//!
//! The library has one global configuration per process. Tests that use it (or
//! count the process's file descriptors) take `TURN` for writing; tests that only
//! use handles from `session_store_open*` take it for reading and run in parallel.

mod support;

use session::ffi::*;
use session::SessionError;
use std::ffi::{c_char, c_long};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};
use support::c_api::{c, last_error as last, take};
use support::redis_server::RedisServer;
use support::temp::TempDir;

static TURN: parking_lot::RwLock<()> = parking_lot::RwLock::new(());

// ---------------------------------------------------------------------------------
// Helpers: C strings in, malloc'd strings out, the thread's last error.

/// Asserts that the last call failed with `code`; returns its message.
#[track_caller]
fn expect_err(code: SessionError, what: &str) -> String {
    let (got, message) = last();
    assert_eq!(got, code, "{what}: wrong error code; message: {message:?}");
    assert!(!message.is_empty(), "{what}: failed without a message");
    message
}

/// Asserts that the last call succeeded.
#[track_caller]
fn expect_ok(what: &str) {
    let (code, message) = last();
    assert_eq!(code, SessionError::Ok, "{what}: {message}");
    assert!(
        session_last_error().is_null(),
        "{what}: a message after a success"
    );
}

fn take_string(ptr: *mut c_char) -> Option<String> {
    take(ptr).map(|b| String::from_utf8(b).unwrap())
}

#[track_caller]
fn assert_id(id: &str) {
    assert_eq!(id.len(), 64, "{id}");
    assert!(
        id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{id}"
    );
}

/// A fresh id that names no session.
fn unused_id() -> String {
    take_string(session_create_id()).unwrap()
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[track_caller]
fn init_ok(json: &str) {
    let done = unsafe { session_init_json(c(json).as_ptr()) };
    assert_eq!(done, 1, "init of {json}: {:?}", last());
    expect_ok("session_init_json");
}

#[track_caller]
fn open_ok(json: &str, name: Option<&str>) -> *mut SessionStore {
    let name = name.map(c);
    let handle = unsafe {
        session_store_open_json(
            c(json).as_ptr(),
            name.as_ref().map_or(null(), |n| n.as_ptr()),
        )
    };
    assert!(!handle.is_null(), "open {name:?} of {json}: {:?}", last());
    expect_ok("session_store_open_json");
    handle
}

// ---------------------------------------------------------------------------------
// Configurations.

/// A store driver under test.
enum Driver<'a> {
    File(&'a Path),
    Memory,
    Redis { port: u16, prefix: &'a str },
}

/// A whole config with one store in `sessions`; `keys` are more members of
/// `sessions` (a non-empty JSON fragment without a leading comma).
fn config(driver: &Driver, keys: &str) -> String {
    match driver {
        Driver::File(root) => format!(
            r#"{{"sessions": {{"driver": "storage", "storage_name": "s", {keys}}},
                "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
            root.display()
        ),
        Driver::Memory => format!(r#"{{"sessions": {{"driver": "memory", {keys}}}}}"#),
        Driver::Redis { port, prefix } => format!(
            r#"{{"sessions": {{"driver": "redis", "storage_name": "r1", "key_prefix": "{prefix}", {keys}}},
                "databases": {{"redis": [{{"host_id": "r1", "ip": "127.0.0.1", "port": {port}, "dbindex": 0}}]}}}}"#
        ),
    }
}

fn file_config(root: &Path, keys: &str) -> String {
    config(&Driver::File(root), keys)
}

// ---------------------------------------------------------------------------------
// One API over the global default store or a handle, so that every check runs on
// both.

#[derive(Clone, Copy)]
enum Target {
    Global,
    Handle(*mut SessionStore),
}

impl Target {
    fn create(self, data: &str) -> Option<String> {
        let data = c(data);
        take_string(unsafe {
            match self {
                Target::Global => session_create(data.as_ptr()),
                Target::Handle(h) => session_store_create(h, data.as_ptr()),
            }
        })
    }

    fn create_ttl(self, data: &str, ttl: c_long) -> Option<String> {
        let data = c(data);
        take_string(unsafe {
            match self {
                Target::Global => session_create_ttl(data.as_ptr(), ttl),
                Target::Handle(h) => session_store_create_ttl(h, data.as_ptr(), ttl),
            }
        })
    }

    fn get(self, id: &str) -> Option<Vec<u8>> {
        let id = c(id);
        take(unsafe {
            match self {
                Target::Global => session_get(id.as_ptr()),
                Target::Handle(h) => session_store_get(h, id.as_ptr()),
            }
        })
    }

    fn update(self, id: &str, data: &str) -> i32 {
        let (id, data) = (c(id), c(data));
        unsafe {
            match self {
                Target::Global => session_update(id.as_ptr(), data.as_ptr()),
                Target::Handle(h) => session_store_update(h, id.as_ptr(), data.as_ptr()),
            }
        }
    }

    fn destroy(self, id: &str) -> i32 {
        let id = c(id);
        unsafe {
            match self {
                Target::Global => session_destroy(id.as_ptr()),
                Target::Handle(h) => session_store_destroy(h, id.as_ptr()),
            }
        }
    }

    fn touch(self, id: &str) -> i32 {
        let id = c(id);
        unsafe {
            match self {
                Target::Global => session_touch(id.as_ptr()),
                Target::Handle(h) => session_store_touch(h, id.as_ptr()),
            }
        }
    }

    fn ttl(self, id: &str) -> c_long {
        let id = c(id);
        unsafe {
            match self {
                Target::Global => session_ttl(id.as_ptr()),
                Target::Handle(h) => session_store_ttl(h, id.as_ptr()),
            }
        }
    }

    fn exists(self, id: &str) -> i32 {
        let id = c(id);
        unsafe {
            match self {
                Target::Global => session_exists(id.as_ptr()),
                Target::Handle(h) => session_store_exists(h, id.as_ptr()),
            }
        }
    }

    fn count(self) -> c_long {
        match self {
            Target::Global => session_count(),
            Target::Handle(h) => unsafe { session_store_count(h) },
        }
    }

    fn remove_expired(self) -> c_long {
        match self {
            Target::Global => session_remove_expired_count(),
            Target::Handle(h) => unsafe { session_store_remove_expired(h) },
        }
    }

    fn regenerate(self, id: &str) -> Option<String> {
        let id = c(id);
        take_string(unsafe {
            match self {
                Target::Global => session_regenerate(id.as_ptr()),
                Target::Handle(h) => session_store_regenerate(h, id.as_ptr()),
            }
        })
    }

    #[track_caller]
    fn must_create(self, data: &str) -> String {
        let id = self
            .create(data)
            .unwrap_or_else(|| panic!("create failed: {:?}", last()));
        expect_ok("create");
        assert_id(&id);
        id
    }

    #[track_caller]
    fn must_get(self, id: &str) -> Vec<u8> {
        self.get(id)
            .unwrap_or_else(|| panic!("get failed: {:?}", last()))
    }

    fn close(self) {
        if let Target::Handle(h) = self {
            let before = session_last_error_code();
            unsafe { session_store_close(h) };
            // It leaves the last error alone, like session_free.
            assert_eq!(session_last_error_code(), before);
        }
    }
}

// ---------------------------------------------------------------------------------
// 2. The lifecycle functions, on every driver, on the global store and on handles.

/// The store of phase A: lifetime 60 s, `session_create_ttl` up to 120 s, no idle
/// timeout, no regenerate grace.
const PHASE_A: &str = r#""lifetime": 60, "max_lifetime": 120"#;
/// The store of phase B: an idle timeout of 3 s and a regenerate grace of 1 s.
const PHASE_B: &str = r#""lifetime": 60, "idle_timeout": 3, "regenerate_grace": 1"#;

/// Every new function with a plain store. `removes`: `remove_expired_count` counts
/// what it deletes (files, memory); Redis deletes expired keys itself and reports 0.
fn phase_a(t: Target, removes: bool) {
    let removed = |n: c_long| if removes { n } else { 0 };
    assert_eq!(t.count(), 0, "a fresh store: {:?}", last());
    expect_ok("count");

    // create, ttl (rounded up), exists, touch.
    let a = t.must_create("alpha");
    assert_eq!(t.ttl(&a), 60, "ttl of a fresh session: {:?}", last());
    expect_ok("ttl");
    assert_eq!(t.exists(&a), 1);
    expect_ok("exists");
    assert_eq!(t.touch(&a), 1, "touch of a live session: {:?}", last());
    expect_ok("touch");
    assert_eq!(t.ttl(&a), 60, "touch without idle_timeout changes nothing");

    // create_ttl: 1 to max_lifetime, else an invalid argument.
    let b = t
        .create_ttl("beta", 120)
        .unwrap_or_else(|| panic!("create_ttl 120: {:?}", last()));
    expect_ok("create_ttl");
    assert_eq!(t.ttl(&b), 120, "create_ttl(120) then ttl");
    for bad in [121, 0, -1, c_long::MAX, c_long::MIN] {
        assert!(
            t.create_ttl("x", bad).is_none(),
            "create_ttl({bad}) succeeded"
        );
        expect_err(SessionError::InvalidArgument, &format!("create_ttl({bad})"));
    }
    let short = t
        .create_ttl("short", 1)
        .unwrap_or_else(|| panic!("create_ttl 1: {:?}", last()));
    assert_eq!(t.ttl(&short), 1);
    assert_eq!(t.count(), 3, "count after three creates: {:?}", last());

    // A session that never existed.
    let missing = unused_id();
    assert_eq!(t.touch(&missing), 0);
    expect_err(SessionError::NotFound, "touch of a missing session");
    assert_eq!(t.ttl(&missing), -1);
    expect_err(SessionError::NotFound, "ttl of a missing session");
    assert_eq!(t.exists(&missing), 0);
    expect_err(SessionError::NotFound, "exists of a missing session");
    assert!(t.regenerate(&missing).is_none());
    expect_err(SessionError::NotFound, "regenerate of a missing session");

    // Malformed and over-long ids.
    let long = "a".repeat(65);
    let very_long = "b".repeat(5000);
    for bad in ["xyz", "../../etc/passwd", &long, &very_long] {
        let shown = &bad[..bad.len().min(20)];
        assert_eq!(t.ttl(bad), -1);
        let m = expect_err(SessionError::InvalidArgument, &format!("ttl({shown})"));
        assert!(m.contains("malformed session id"), "{m}");
        assert_eq!(t.exists(bad), 0);
        expect_err(SessionError::InvalidArgument, &format!("exists({shown})"));
        assert_eq!(t.touch(bad), 0);
        expect_err(SessionError::InvalidArgument, &format!("touch({shown})"));
        assert!(t.regenerate(bad).is_none());
        expect_err(
            SessionError::InvalidArgument,
            &format!("regenerate({shown})"),
        );
        assert!(t.get(bad).is_none());
        expect_err(SessionError::InvalidArgument, &format!("get({shown})"));
        assert_eq!(t.update(bad, "x"), 0);
        expect_err(SessionError::InvalidArgument, &format!("update({shown})"));
        assert_eq!(t.destroy(bad), 0);
        let m = expect_err(SessionError::InvalidArgument, &format!("destroy({shown})"));
        if bad.len() > 64 {
            assert!(m.contains("longer than 64 characters"), "{m}");
        }
    }

    // regenerate: a new id with the same data and absolute end; the old id is gone.
    let nb = t
        .regenerate(&b)
        .unwrap_or_else(|| panic!("regenerate: {:?}", last()));
    expect_ok("regenerate");
    assert_id(&nb);
    assert_ne!(nb, b);
    assert_eq!(t.must_get(&nb), b"beta");
    assert!(
        (119..=120).contains(&t.ttl(&nb)),
        "regenerate keeps the absolute end (120 s, not the 60 s lifetime): {}",
        t.ttl(&nb)
    );
    assert!(t.get(&b).is_none());
    expect_err(SessionError::NotFound, "get of the old id after regenerate");
    assert_eq!(t.exists(&b), 0);
    expect_err(SessionError::NotFound, "exists of the old id");
    assert_eq!(t.update(&b, "back?"), 0);
    expect_err(SessionError::NotFound, "update of the old id");
    assert!(t.regenerate(&b).is_none());
    expect_err(SessionError::NotFound, "regenerate of the old id");
    assert_eq!(t.count(), 3, "regenerate moves a session, it adds none");

    // destroy, then touch finds nothing.
    assert_eq!(t.destroy(&a), 1);
    assert_eq!(t.touch(&a), 0);
    expect_err(SessionError::NotFound, "touch of a destroyed session");
    assert_eq!(t.count(), 2);

    // The 1 s session ends: every function reports it missing.
    sleep_ms(1100);
    assert!(t.get(&short).is_none());
    expect_err(SessionError::NotFound, "get of an expired session");
    assert_eq!(t.exists(&short), 0);
    expect_err(SessionError::NotFound, "exists of an expired session");
    assert_eq!(t.ttl(&short), -1);
    expect_err(SessionError::NotFound, "ttl of an expired session");
    assert_eq!(t.touch(&short), 0);
    expect_err(SessionError::NotFound, "touch of an expired session");
    assert_eq!(t.update(&short, "revive"), 0);
    expect_err(SessionError::NotFound, "update of an expired session");
    assert!(t.regenerate(&short).is_none());
    expect_err(SessionError::NotFound, "regenerate of an expired session");
    assert_eq!(t.count(), 1, "count skips ended sessions: {:?}", last());
    assert_eq!(
        t.remove_expired(),
        removed(1),
        "remove_expired_count: {:?}",
        last()
    );
    expect_ok("remove_expired_count");
    assert_eq!(t.remove_expired(), 0, "nothing left to remove");
    assert_eq!(t.count(), 1);
    assert_eq!(t.must_get(&nb), b"beta");
    assert_eq!(t.destroy(&nb), 1);
    assert_eq!(t.count(), 0);
}

/// `idle_timeout` and `regenerate_grace`.
fn phase_b(t: Target, removes: bool) {
    let removed = |n: c_long| if removes { n } else { 0 };
    let o = t.must_create("gamma");
    let p = t.must_create("pi");
    let q = t.must_create("quiet");
    assert_eq!(t.ttl(&o), 3, "ttl is the earlier end: the idle end");

    // With a grace the old id reads for ~1 s, read-only.
    let n = t
        .regenerate(&o)
        .unwrap_or_else(|| panic!("regenerate: {:?}", last()));
    assert_id(&n);
    assert_ne!(n, o);
    assert_eq!(
        t.get(&o).as_deref(),
        Some(&b"gamma"[..]),
        "old id within its grace: {:?}",
        last()
    );
    assert_eq!(
        t.update(&o, "via old id"),
        0,
        "update on the old id within its grace"
    );
    let m = expect_err(
        SessionError::NotFound,
        "update on the old id within its grace",
    );
    assert!(m.contains("regenerate"), "{m}");
    assert_eq!(t.must_get(&n), b"gamma");
    assert_eq!(
        t.update(&n, "delta"),
        1,
        "update on the new id: {:?}",
        last()
    );
    assert_eq!(t.must_get(&n), b"delta");
    assert_eq!(t.count(), 4, "the old id within its grace counts too");

    sleep_ms(1100);
    assert!(
        t.get(&o).is_none(),
        "the old id still reads after its grace"
    );
    expect_err(SessionError::NotFound, "get of the old id after its grace");
    assert_eq!(t.update(&o, "x"), 0);
    expect_err(
        SessionError::NotFound,
        "update of the old id after its grace",
    );
    // exists and ttl do not move the idle end; touch and get do.
    assert_eq!(t.exists(&n), 1);
    let left = t.ttl(&n);
    assert!(
        (1..=2).contains(&left),
        "idle end moved by exists/ttl? ttl {left}"
    );
    assert_eq!(t.touch(&n), 1, "touch: {:?}", last());
    assert_eq!(
        t.ttl(&n),
        3,
        "touch moves the idle end to now + idle_timeout"
    );
    assert_eq!(t.must_get(&p), b"pi");
    assert_eq!(t.ttl(&p), 3, "get moves the idle end");
    let left = t.ttl(&q);
    assert!(
        (1..=2).contains(&left),
        "an untouched session's idle end stays: {left}"
    );
    assert_eq!(t.count(), 3, "the old id is gone after its grace");
    assert_eq!(
        t.remove_expired(),
        removed(1),
        "remove_expired_count: {:?}",
        last()
    );

    // The untouched session ends at its idle end, long before its lifetime.
    sleep_ms(2400);
    assert!(
        t.get(&q).is_none(),
        "a session idle for longer than idle_timeout still reads"
    );
    expect_err(SessionError::NotFound, "get of an idle-expired session");
    assert_eq!(t.touch(&q), 0);
    expect_err(SessionError::NotFound, "touch of an idle-expired session");
    assert_eq!(t.must_get(&n), b"delta");
    assert_eq!(t.must_get(&p), b"pi");
    assert_eq!(t.count(), 2);
    assert_eq!(t.remove_expired(), removed(1));
}

/// Runs phase A on `a` and phase B on `b` (one driver, separate storage), through
/// the global configuration or through handles.
fn lifecycle(global: bool, a: &Driver, b: &Driver, removes: bool) {
    for (driver, keys, phase) in [
        (a, PHASE_A, phase_a as fn(Target, bool)),
        (b, PHASE_B, phase_b as fn(Target, bool)),
    ] {
        let json = config(driver, keys);
        let target = if global {
            init_ok(&json);
            Target::Global
        } else {
            Target::Handle(open_ok(&json, None))
        };
        phase(target, removes);
        target.close();
    }
    if global {
        session_shutdown();
    }
}

fn lifecycle_file(global: bool) {
    let (ra, rb) = (TempDir::new("lc-file-a"), TempDir::new("lc-file-b"));
    lifecycle(
        global,
        &Driver::File(ra.path()),
        &Driver::File(rb.path()),
        true,
    );
}

fn lifecycle_redis(global: bool) {
    let server = RedisServer::start(&[]);
    let a = Driver::Redis {
        port: server.port,
        prefix: "a:",
    };
    let b = Driver::Redis {
        port: server.port,
        prefix: "b:",
    };
    lifecycle(global, &a, &b, false);
}

#[test]
fn lifecycle_functions_file_global() {
    let _turn = TURN.write();
    lifecycle_file(true);
}

#[test]
fn lifecycle_functions_file_handle() {
    let _turn = TURN.read();
    lifecycle_file(false);
}

#[test]
fn lifecycle_functions_memory_global() {
    let _turn = TURN.write();
    lifecycle(true, &Driver::Memory, &Driver::Memory, true);
}

#[test]
fn lifecycle_functions_memory_handle() {
    let _turn = TURN.read();
    lifecycle(false, &Driver::Memory, &Driver::Memory, true);
}

#[test]
fn lifecycle_functions_redis_global() {
    let _turn = TURN.write();
    lifecycle_redis(true);
}

#[test]
fn lifecycle_functions_redis_handle() {
    let _turn = TURN.read();
    lifecycle_redis(false);
}

// ---------------------------------------------------------------------------------
// 1. Handles.

/// `sessions` as a map of two stores, "web" (files in `root`) and "api" (memory),
/// plus `more` map entries (a fragment ending in a comma, or empty).
fn web_api_map(root: &Path, more: &str) -> String {
    format!(
        r#"{{"sessions": {{{more}
                "web": {{"driver": "storage", "storage_name": "w", "lifetime": 600}},
                "api": {{"driver": "memory", "lifetime": 60}}}},
            "storages": {{"w": {{"type": "filesystem", "root": "{}"}}}},
            "server": {{"port": 8080}}}}"#,
        root.display()
    )
}

/// Handles on "web" and "api" of `json` are separate stores.
fn web_and_api_are_isolated(json: &str, root: &Path) {
    let web = Target::Handle(open_ok(json, Some("web")));
    let api = Target::Handle(open_ok(json, Some("api")));
    let w = web.must_create("on the web");
    let a = api.must_create("in the api");
    assert!(
        root.join("sessions").join(&w).is_file(),
        "web is the file store"
    );
    assert!(
        !root.join("sessions").join(&a).exists(),
        "api is not the file store"
    );
    assert!(web.get(&a).is_none());
    expect_err(SessionError::NotFound, "web reading an api session");
    assert!(api.get(&w).is_none());
    expect_err(SessionError::NotFound, "api reading a web session");
    assert_eq!(web.count(), 1);
    assert_eq!(api.count(), 1);
    // Destroying an id of the other store there deletes nothing here.
    assert_eq!(web.destroy(&a), 1);
    assert_eq!(api.must_get(&a), b"in the api");
    assert_eq!(web.ttl(&w), 600);
    assert_eq!(api.ttl(&a), 60);

    // Another handle on the same files sees the same sessions, also one opened
    // from a config file with session_store_open.
    let path = root.join("config.json");
    std::fs::write(&path, json).unwrap();
    let again =
        unsafe { session_store_open(c(path.to_str().unwrap()).as_ptr(), c("web").as_ptr()) };
    assert!(!again.is_null(), "session_store_open: {:?}", last());
    let again = Target::Handle(again);
    assert_eq!(again.must_get(&w), b"on the web");
    again.close();
    web.close();
    api.close();
}

#[test]
fn handles_on_named_stores_of_a_map() {
    let _turn = TURN.read();
    let root = TempDir::new("lc-map");
    // A map of two stores with none named "default" opens by name; only a NULL
    // name (or an init) needs a default.
    web_and_api_are_isolated(&web_api_map(root.path(), ""), root.path());
}

#[test]
fn handles_on_named_stores_of_a_map_with_a_default() {
    let _turn = TURN.read();
    let root = TempDir::new("lc-map-default");
    let json = web_api_map(root.path(), r#""default": {"driver": "memory"},"#);
    web_and_api_are_isolated(&json, root.path());
    // NULL names the "default" entry: a third, separate store.
    let def = Target::Handle(open_ok(&json, None));
    let d = def.must_create("default");
    assert_eq!(def.count(), 1);
    assert!(!root.join("sessions").join(&d).exists());
    def.close();
}

#[test]
fn handles_on_memory_and_files() {
    let _turn = TURN.read();
    let root = TempDir::new("lc-handles");
    let mem = Target::Handle(open_ok(r#"{"sessions": {"driver": "memory"}}"#, None));
    let file = Target::Handle(open_ok(
        &file_config(root.path(), r#""lifetime": 60"#),
        None,
    ));
    let m = mem.must_create("m");
    let f = file.must_create("f");
    assert!(root.join("sessions").join(&f).is_file());
    assert_eq!(mem.must_get(&m), b"m");
    assert_eq!(file.must_get(&f), b"f");
    assert!(mem.get(&f).is_none());
    expect_err(SessionError::NotFound, "memory reading a file session");
    assert!(file.get(&m).is_none());
    expect_err(SessionError::NotFound, "files reading a memory session");
    // Each open of a memory config is its own memory.
    let mem2 = Target::Handle(open_ok(r#"{"sessions": {"driver": "memory"}}"#, None));
    assert!(mem2.get(&m).is_none());
    expect_err(SessionError::NotFound, "a second memory store");
    mem2.close();
    mem.close();
    file.close();
}

#[test]
fn null_handles_and_bad_open_arguments() {
    let _turn = TURN.read();
    unsafe {
        let before = session_last_error_code();
        session_store_close(null_mut());
        assert_eq!(
            session_last_error_code(),
            before,
            "session_store_close(NULL)"
        );

        // The other arguments valid, then NULL too: the handle is named either way.
        let (valid_id, valid_data) = (c(&unused_id()), c("x"));
        for (id, data) in [(valid_id.as_ptr(), valid_data.as_ptr()), (null(), null())] {
            let h: *const SessionStore = null();
            type Call<'a> = (&'a str, Box<dyn Fn() -> bool + 'a>);
            let calls: Vec<Call> = vec![
                (
                    "create",
                    Box::new(|| session_store_create(h, data).is_null()),
                ),
                (
                    "create_ttl",
                    Box::new(|| session_store_create_ttl(h, data, 10).is_null()),
                ),
                ("get", Box::new(|| session_store_get(h, id).is_null())),
                (
                    "update",
                    Box::new(|| session_store_update(h, id, data) == 0),
                ),
                ("destroy", Box::new(|| session_store_destroy(h, id) == 0)),
                (
                    "remove_expired",
                    Box::new(|| session_store_remove_expired(h) == -1),
                ),
                ("touch", Box::new(|| session_store_touch(h, id) == 0)),
                ("ttl", Box::new(|| session_store_ttl(h, id) == -1)),
                ("exists", Box::new(|| session_store_exists(h, id) == 0)),
                ("count", Box::new(|| session_store_count(h) == -1)),
                (
                    "regenerate",
                    Box::new(|| session_store_regenerate(h, id).is_null()),
                ),
            ];
            for (name, failed) in calls {
                let what = format!(
                    "session_store_{name}(NULL, {})",
                    if id.is_null() { "NULL" } else { "valid" }
                );
                assert!(failed(), "{what} did not return NULL/0/-1");
                let m = expect_err(SessionError::InvalidArgument, &what);
                assert!(m.contains("store"), "{what}: {m}");
            }
        }

        // Bad arguments of the openers.
        assert!(session_store_open_json(null(), null()).is_null());
        expect_err(
            SessionError::InvalidArgument,
            "session_store_open_json(NULL)",
        );
        assert!(session_store_open(null(), null()).is_null());
        expect_err(SessionError::InvalidArgument, "session_store_open(NULL)");
        let memory = c(r#"{"sessions": {"driver": "memory"}}"#);
        assert!(session_store_open_json(memory.as_ptr(), c("nope").as_ptr()).is_null());
        let m = expect_err(
            SessionError::Config,
            "session_store_open_json(.., \"nope\")",
        );
        assert!(m.contains("nope"), "{m}");
        assert!(session_store_open(c("/nonexistent/libsession.json").as_ptr(), null()).is_null());
        let m = expect_err(SessionError::Config, "session_store_open of a missing file");
        assert!(m.contains("/nonexistent/libsession.json"), "{m}");
        assert!(session_store_open_json(c("{nope").as_ptr(), null()).is_null());
        let m = expect_err(SessionError::Config, "session_store_open_json of bad JSON");
        assert!(m.contains("not valid JSON"), "{m}");
    }
}

#[test]
fn global_handles_outlive_shutdown_and_reinit() {
    let _turn = TURN.write();
    let root = TempDir::new("lc-global-handles");
    init_ok(&web_api_map(
        root.path(),
        r#""default": {"driver": "memory", "lifetime": 300},"#,
    ));
    unsafe {
        let def = session_store(null());
        assert!(!def.is_null(), "session_store(NULL): {:?}", last());
        expect_ok("session_store(NULL)");
        let web = session_store(c("web").as_ptr());
        assert!(!web.is_null(), "session_store(\"web\"): {:?}", last());
        let named_default = session_store(c("default").as_ptr());
        assert!(
            !named_default.is_null(),
            "session_store(\"default\"): {:?}",
            last()
        );

        assert!(session_store(c("nope").as_ptr()).is_null());
        let m = expect_err(SessionError::Config, "session_store(\"nope\")");
        assert!(m.contains("nope"), "{m}");

        let (def, web, named_default) = (
            Target::Handle(def),
            Target::Handle(web),
            Target::Handle(named_default),
        );
        // The functions without a handle use the default store.
        let g = Target::Global.must_create("global");
        assert_eq!(def.must_get(&g), b"global");
        assert_eq!(named_default.must_get(&g), b"global");
        assert_eq!(def.ttl(&g), 300);
        assert!(web.get(&g).is_none());
        expect_err(
            SessionError::NotFound,
            "web reading the default store's session",
        );
        let w = web.must_create("web");
        assert!(root.join("sessions").join(&w).is_file());
        assert!(Target::Global.get(&w).is_none());
        expect_err(
            SessionError::NotFound,
            "the default store reading a web session",
        );

        // The handles keep their stores after shutdown...
        session_shutdown();
        assert_eq!(
            def.must_get(&g),
            b"global",
            "the memory store died with shutdown"
        );
        assert_eq!(web.must_get(&w), b"web");
        let w2 = web.must_create("after shutdown");
        assert!(root.join("sessions").join(&w2).is_file());
        let d2 = def.must_create("after shutdown");

        // ...and after a new configuration.
        init_ok(r#"{"sessions": {"driver": "memory", "lifetime": 60}}"#);
        assert!(Target::Global.get(&g).is_none());
        expect_err(SessionError::NotFound, "the new configuration's store");
        assert_eq!(def.must_get(&g), b"global");
        assert_eq!(def.must_get(&d2), b"after shutdown");
        assert_eq!(def.count(), 2);
        assert_eq!(web.must_get(&w2), b"after shutdown");
        let fresh = Target::Handle(session_store(null()));
        assert!(
            fresh.get(&g).is_none(),
            "session_store(NULL) names the new default store"
        );
        expect_err(SessionError::NotFound, "the new default store");
        assert!(session_store(c("web").as_ptr()).is_null());
        let m = expect_err(SessionError::Config, "\"web\" of the new configuration");
        assert!(m.contains("web"), "{m}");
        fresh.close();
        def.close();
        web.close();
        named_default.close();
        session_shutdown();
    }
}

#[test]
fn a_map_without_a_default_fails_init() {
    let _turn = TURN.write();
    let root = TempDir::new("lc-no-default");
    init_ok(r#"{"sessions": {"driver": "memory"}}"#);
    let kept = Target::Global.must_create("kept");
    let json = web_api_map(root.path(), "");
    assert_eq!(unsafe { session_init_json(c(&json).as_ptr()) }, 0);
    let m = expect_err(
        SessionError::Config,
        "a map of two stores without \"default\"",
    );
    assert!(m.contains("default"), "{m}");
    assert!(
        m.contains("web") && m.contains("api"),
        "the message lists the stores: {m}"
    );
    assert_eq!(
        Target::Global.must_get(&kept),
        b"kept",
        "a failed init changed the store"
    );
    // NULL (the default store) cannot be opened from it either.
    assert!(unsafe { session_store_open_json(c(&json).as_ptr(), null()) }.is_null());
    let m = expect_err(
        SessionError::Config,
        "open of the default store of such a map",
    );
    assert!(m.contains("default"), "{m}");
    // One entry is the default whatever its name.
    init_ok(r#"{"sessions": {"only": {"driver": "memory"}}}"#);
    let only = Target::Handle(unsafe { session_store(c("only").as_ptr()) });
    let id = Target::Global.must_create("x");
    assert_eq!(only.must_get(&id), b"x");
    only.close();
    session_shutdown();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_thousand_handles_open_and_close() {
    let _turn = TURN.write();
    let root = TempDir::new("lc-thousand");
    let json = file_config(root.path(), r#""lifetime": 60"#);
    let memory = r#"{"sessions": {"driver": "memory"}}"#;
    init_ok(&json);
    let before = open_fds();
    for i in 0..1000 {
        let handle = match i % 3 {
            0 => open_ok(&json, None),
            1 => open_ok(memory, None),
            _ => {
                let h = unsafe { session_store(null()) };
                assert!(!h.is_null(), "session_store(NULL): {:?}", last());
                h
            }
        };
        let t = Target::Handle(handle);
        let id = t.must_create("one");
        assert_eq!(t.must_get(&id), b"one");
        assert_eq!(t.destroy(&id), 1);
        t.close();
    }
    let after = open_fds();
    assert!(
        after <= before + 5,
        "1000 opened and closed handles leaked descriptors: {before} before, {after} after"
    );
    assert_eq!(listing(&root.join("sessions")).len(), 0);
    session_shutdown();
}

// ---------------------------------------------------------------------------------
// 3. max_sessions.

fn max_sessions(t: Target) {
    let first = t.must_create("1");
    let _second = t.must_create("2");
    let brief = t
        .create_ttl("3", 1)
        .unwrap_or_else(|| panic!("create_ttl: {:?}", last()));
    assert!(
        t.create("4").is_none(),
        "a 4th session in a store of max_sessions 3"
    );
    assert_eq!(session_last_error_code(), 8, "SESSION_ERROR_FULL is 8");
    let m = expect_err(SessionError::Full, "4th create");
    assert!(m.contains("full"), "{m}");
    assert!(t.create_ttl("4", 10).is_none());
    expect_err(SessionError::Full, "4th create_ttl");
    // Full is not read-only: the live sessions still work.
    assert_eq!(t.update(&first, "one"), 1);
    assert_eq!(t.must_get(&first), b"one");
    sleep_ms(1100);
    // The expired one makes room (evicted first).
    let fourth = t
        .create("4")
        .unwrap_or_else(|| panic!("create after one expired: {:?}", last()));
    expect_ok("create after one expired");
    assert!(t.get(&brief).is_none());
    expect_err(SessionError::NotFound, "the expired session");
    assert_eq!(t.must_get(&fourth), b"4");
    assert_eq!(t.count(), 3);
    assert!(t.create("5").is_none());
    expect_err(SessionError::Full, "full again");
    // A destroyed session frees its place at once.
    assert_eq!(t.destroy(&first), 1);
    t.must_create("5");
    assert!(t.create("6").is_none());
    expect_err(SessionError::Full, "full once more");
}

#[test]
fn memory_max_sessions() {
    let _turn = TURN.write();
    let json = r#"{"sessions": {"driver": "memory", "max_sessions": 3}}"#;
    init_ok(json);
    max_sessions(Target::Global);
    session_shutdown();
    let handle = Target::Handle(open_ok(json, None));
    max_sessions(handle);
    handle.close();
}

// ---------------------------------------------------------------------------------
// 4. No silent failures.

#[test]
fn unknown_and_foreign_keys_are_rejected_by_name() {
    let _turn = TURN.write();
    let root = TempDir::new("lc-keys");
    let r = root.path().display();
    let redis_entry = |entry: &str| {
        format!(
            r#"{{"sessions": {{"driver": "redis", "storage_name": "r1"}},
                "databases": {{"redis": [{{"host_id": "r1", "ip": "127.0.0.1", "port": 6379, {entry}}}]}}}}"#
        )
    };
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"sessions": {"driver": "memory", "lifetme": 60}}"#.into(),
            "sessions.lifetme",
        ),
        (
            r#"{"sessions": {"default": {"driver": "memory", "lifetme": 60}}}"#.into(),
            "sessions.default.lifetme",
        ),
        (
            format!(
                r#"{{"sessions": {{"driver": "storage", "storage_name": "s"}},
                    "storages": {{"s": {{"type": "filesystem", "root": "{r}", "rooot": "/x"}}}}}}"#
            ),
            "storages.s.rooot",
        ),
        (redis_entry(r#""dbindx": 1"#), "dbindx"),
        (redis_entry(r#""prot": 6380"#), "prot"),
        (file_config(root.path(), r#""pool_size": 4"#), "pool_size"),
        (
            file_config(root.path(), r#""max_sessions": 10"#),
            "max_sessions",
        ),
        (
            file_config(root.path(), r#""lazy_connect": true"#),
            "lazy_connect",
        ),
        (
            config(
                &Driver::Redis {
                    port: 6379,
                    prefix: "p:",
                },
                r#""fsync": true"#,
            ),
            "fsync",
        ),
        (
            config(
                &Driver::Redis {
                    port: 6379,
                    prefix: "p:",
                },
                r#""lock_timeout_ms": 100"#,
            ),
            "lock_timeout_ms",
        ),
        (
            config(&Driver::Memory, r#""lock_timeout_ms": 100"#),
            "lock_timeout_ms",
        ),
        (config(&Driver::Memory, r#""pool_size": 4"#), "pool_size"),
    ];
    init_ok(r#"{"sessions": {"driver": "memory"}}"#);
    let kept = Target::Global.must_create("kept");
    for (json, key) in &cases {
        assert_eq!(
            unsafe { session_init_json(c(json).as_ptr()) },
            0,
            "accepted: {json}"
        );
        let m = expect_err(SessionError::Config, json);
        assert!(m.contains(key), "the message does not name {key}: {m}");
        assert_eq!(
            Target::Global.must_get(&kept),
            b"kept",
            "a failed init replaced the working configuration"
        );
        assert!(unsafe { session_store_open_json(c(json).as_ptr(), null()) }.is_null());
        let m = expect_err(SessionError::Config, json);
        assert!(
            m.contains(key),
            "open: the message does not name {key}: {m}"
        );
    }
    // A config file says which file it was.
    let path = root.join("config.json");
    std::fs::write(&path, &cases[0].0).unwrap();
    assert_eq!(
        unsafe { session_init(c(path.to_str().unwrap()).as_ptr()) },
        0
    );
    let m = expect_err(SessionError::Config, "session_init of a file");
    assert!(m.contains("lifetme") && m.contains("config.json"), "{m}");
    assert_eq!(Target::Global.must_get(&kept), b"kept");
    session_shutdown();
}

#[test]
fn a_failed_reinit_keeps_the_previous_configuration() {
    let _turn = TURN.write();
    let root = TempDir::new("lc-reinit");
    init_ok(&file_config(root.path(), r#""lifetime": 60"#));
    let id = Target::Global.must_create("kept");
    for bad in [
        "{not json",
        r#"{"sessions": {"driver": "memory", "lifetime": 0}}"#,
        r#"{"sessions": {"driver": "memory", "lifetme": 5}}"#,
    ] {
        assert_eq!(unsafe { session_init_json(c(bad).as_ptr()) }, 0);
        expect_err(SessionError::Config, bad);
        assert_eq!(Target::Global.must_get(&id), b"kept");
        let another = Target::Global.must_create("still files");
        assert!(root.join("sessions").join(&another).is_file(), "{bad}");
    }
    session_shutdown();
}

#[test]
fn a_missing_storage_root_is_an_init_error() {
    let _turn = TURN.write();
    let t = TempDir::new("lc-root");
    init_ok(r#"{"sessions": {"driver": "memory"}}"#);
    let kept = Target::Global.must_create("kept");

    let missing = t.join("missing").join("root");
    let json = file_config(&missing, r#""lifetime": 60"#);
    assert_eq!(
        unsafe { session_init_json(c(&json).as_ptr()) },
        0,
        "a missing root was accepted"
    );
    let (code, m) = last();
    assert!(
        code == SessionError::Config || code == SessionError::StorageUnavailable,
        "{code:?}: {m}"
    );
    assert!(
        m.contains(missing.to_str().unwrap()),
        "the message does not name the root: {m}"
    );
    assert!(
        listing(t.path()).is_empty(),
        "init created {:?}",
        listing(t.path())
    );
    assert_eq!(Target::Global.must_get(&kept), b"kept");
    assert!(unsafe { session_store_open_json(c(&json).as_ptr(), null()) }.is_null());
    let (_, m) = last();
    assert!(m.contains(missing.to_str().unwrap()), "open: {m}");
    assert!(listing(t.path()).is_empty());

    // An existing root: only ROOT/sessions appears, 0700.
    let parent = t.join("parent");
    let root = parent.join("root");
    std::fs::create_dir_all(&root).unwrap();
    init_ok(&file_config(&root, r#""lifetime": 60"#));
    assert_eq!(listing(&parent), ["root"]);
    assert_eq!(listing(&root), ["sessions"]);
    let mode = std::fs::metadata(root.join("sessions"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    let id = Target::Global.must_create("on disk");
    assert!(root.join("sessions").join(id).is_file());
    session_shutdown();
}

/// The session directory as the library names it (it canonicalises the root).
fn session_dir(root: &Path) -> PathBuf {
    std::fs::canonicalize(root).unwrap().join("sessions")
}

fn mkdir_0700(path: &Path) {
    std::fs::DirBuilder::new().mode(0o700).create(path).unwrap();
}

#[test]
fn a_deleted_session_directory_is_unavailable_until_it_is_back() {
    let _turn = TURN.write();
    let root = TempDir::new("lc-deleted");
    let dir = session_dir(root.path());
    init_ok(&file_config(root.path(), r#""lifetime": 60"#));
    let t = Target::Global;
    let id = t.must_create("before");
    std::fs::remove_dir_all(&dir).unwrap();

    let unavailable = |what: &str| {
        let m = expect_err(SessionError::StorageUnavailable, what);
        assert!(
            m.contains(dir.to_str().unwrap()),
            "{what}: the message does not name the directory: {m}"
        );
    };
    assert!(t.get(&id).is_none());
    unavailable("get");
    assert!(t.get(&unused_id()).is_none());
    unavailable("get of another id");
    assert!(t.create("x").is_none());
    unavailable("create");
    assert!(t.create_ttl("x", 10).is_none());
    unavailable("create_ttl");
    assert_eq!(t.update(&id, "x"), 0);
    unavailable("update");
    assert_eq!(t.count(), -1);
    unavailable("count");
    assert_eq!(t.remove_expired(), -1);
    unavailable("remove_expired_count");
    assert_eq!(t.touch(&id), 0);
    unavailable("touch");
    assert_eq!(t.ttl(&id), -1);
    unavailable("ttl");
    assert_eq!(t.exists(&id), 0);
    unavailable("exists");
    assert!(t.regenerate(&id).is_none());
    unavailable("regenerate");
    assert_eq!(t.destroy(&id), 0);
    unavailable("destroy");
    assert!(
        !dir.exists(),
        "the library re-created the directory by itself"
    );

    // Back, without re-init.
    mkdir_0700(&dir);
    let new = t
        .create("after")
        .unwrap_or_else(|| panic!("create once the directory is back: {:?}", last()));
    expect_ok("create once the directory is back");
    assert!(dir.join(&new).is_file());
    assert_eq!(t.must_get(&new), b"after");
    assert!(t.get(&id).is_none());
    expect_err(
        SessionError::NotFound,
        "the session deleted with the directory",
    );
    assert_eq!(t.count(), 1);
    assert_eq!(t.remove_expired(), 0);
    expect_ok("remove_expired_count");
    session_shutdown();
}

#[test]
fn a_replaced_session_directory_is_picked_up() {
    let _turn = TURN.write();
    let root = TempDir::new("lc-replaced");
    let dir = session_dir(root.path());
    let away = root.join("sessions.old");
    init_ok(&file_config(root.path(), r#""lifetime": 60"#));
    let t = Target::Global;
    let old = t.must_create("old");
    std::fs::rename(&dir, &away).unwrap();
    mkdir_0700(&dir);
    // The driver re-checks its directory against the path at most once a second
    // (session::store::file::DIR_CHECK_INTERVAL): a replaced directory is picked
    // up within that time.
    std::thread::sleep(session::store::file::DIR_CHECK_INTERVAL + Duration::from_millis(100));

    // The first call after that is a create: its file must be in the directory now
    // at the path, where every other process looks.
    let new = t.must_create("new");
    assert!(
        dir.join(&new).is_file(),
        "the new session went to {:?}, not to the new directory",
        if away.join(&new).exists() {
            &away
        } else {
            &dir
        }
    );
    assert!(!away.join(&new).exists());
    assert_eq!(t.must_get(&new), b"new");
    assert_eq!(t.count(), 1, "count lists the new directory");
    assert!(
        t.get(&old).is_none(),
        "the old directory's session still reads"
    );
    expect_err(
        SessionError::NotFound,
        "a session of the replaced directory",
    );
    session_shutdown();
}

#[test]
fn a_held_lock_times_out_after_lock_timeout_ms() {
    let _turn = TURN.write();
    let root = TempDir::new("lc-lock");
    let dir = session_dir(root.path());
    init_ok(&file_config(
        root.path(),
        r#""lifetime": 60, "lock_timeout_ms": 200"#,
    ));
    let t = Target::Global;
    let id = t.must_create("locked");
    let file = std::fs::File::open(dir.join(&id)).unwrap();
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);

    let start = Instant::now();
    assert_eq!(
        t.update(&id, "blocked"),
        0,
        "update under another's lock succeeded"
    );
    let took = start.elapsed();
    let m = expect_err(SessionError::Timeout, "update under a held lock");
    assert!(took < Duration::from_secs(1), "update took {took:?}");
    assert!(
        took >= Duration::from_millis(150),
        "update gave up after {took:?}"
    );
    assert!(m.contains("no answer within 200 ms"), "{m}");
    assert!(!m.contains("os error"), "raw errno text: {m}");
    assert!(
        m.contains(dir.to_str().unwrap()),
        "the message does not name the directory: {m}"
    );
    // Readers take no lock.
    assert_eq!(t.must_get(&id), b"locked");

    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) }, 0);
    assert_eq!(
        t.update(&id, "free"),
        1,
        "update after the lock was released: {:?}",
        last()
    );
    assert_eq!(t.must_get(&id), b"free");
    drop(file);
    session_shutdown();
}

#[test]
fn redis_connection_failures_fail_the_init() {
    let _turn = TURN.write();
    let server = RedisServer::start(&["--requirepass", "right-pass-7731"]);
    init_ok(r#"{"sessions": {"driver": "memory"}}"#);
    let kept = Target::Global.must_create("kept");
    let entry = |port: u16, password: Option<&str>, lazy: bool| {
        let password = password.map_or(String::new(), |p| format!(r#", "password": "{p}""#));
        format!(
            r#"{{"sessions": {{"driver": "redis", "storage_name": "r1", "lazy_connect": {lazy},
                              "connect_timeout_ms": 500}},
                "databases": {{"redis": [{{"host_id": "r1", "ip": "127.0.0.1", "port": {port}{password}}}]}}}}"#
        )
    };
    let secrets = ["wrong-pass-4242", "right-pass-7731", "url-secret-99"];
    let no_secret = |m: &str| {
        for s in secrets {
            assert!(!m.contains(s), "a password in the message: {m}");
        }
    };

    // A wrong password, a missing one, and one in a URL: init fails at once.
    let unreachable = free_port();
    let cases = [
        (
            entry(server.port, Some("wrong-pass-4242"), false),
            SessionError::Config,
        ),
        (entry(server.port, None, false), SessionError::Config),
        (
            format!(
                r#"{{"sessions": {{"driver": "redis", "url": "redis://:url-secret-99@127.0.0.1:{}/0"}}}}"#,
                server.port
            ),
            SessionError::Config,
        ),
        (
            entry(unreachable, None, false),
            SessionError::StorageUnavailable,
        ),
    ];
    for (json, code) in &cases {
        let start = Instant::now();
        assert_eq!(
            unsafe { session_init_json(c(json).as_ptr()) },
            0,
            "init succeeded: {json}"
        );
        assert!(start.elapsed() < Duration::from_secs(3));
        let m = expect_err(*code, json);
        no_secret(&m);
        assert!(m.contains("127.0.0.1"), "which server? {m}");
        if *code == SessionError::Config {
            assert!(m.to_lowercase().contains("password"), "not clear: {m}");
        } else {
            assert!(
                m.contains(&unreachable.to_string()) && m.contains("cannot connect"),
                "{m}"
            );
        }
        assert_eq!(Target::Global.must_get(&kept), b"kept");
        // An explicit open fails the same way.
        assert!(unsafe { session_store_open_json(c(json).as_ptr(), null()) }.is_null());
        let m = expect_err(*code, json);
        no_secret(&m);
    }

    // The right password works.
    init_ok(&entry(server.port, Some("right-pass-7731"), false));
    let id = Target::Global.must_create("on redis");
    assert_eq!(Target::Global.must_get(&id), b"on redis");

    // lazy_connect: the init succeeds, the first call fails.
    init_ok(&entry(unreachable, None, true));
    assert!(Target::Global.create("x").is_none());
    let m = expect_err(
        SessionError::StorageUnavailable,
        "first call, lazy, unreachable",
    );
    assert!(m.contains("cannot connect"), "{m}");
    init_ok(&entry(server.port, Some("wrong-pass-4242"), true));
    assert!(Target::Global.get(&id).is_none());
    let m = expect_err(SessionError::Config, "first call, lazy, wrong password");
    no_secret(&m);
    session_shutdown();
}

#[test]
fn over_long_ids_are_named_as_such() {
    let _turn = TURN.write();
    init_ok(r#"{"sessions": {"driver": "memory"}}"#);
    for len in [65, 100, 100_000] {
        let id = "a".repeat(len);
        assert!(Target::Global.get(&id).is_none());
        let m = expect_err(SessionError::InvalidArgument, "over-long id");
        assert!(m.contains("longer than 64 characters"), "{m}");
        assert_eq!(Target::Global.update(&id, "x"), 0);
        let m = expect_err(SessionError::InvalidArgument, "over-long id");
        assert!(m.contains("longer than 64 characters"), "{m}");
    }
    // 64 characters of the wrong alphabet, and 63: not "longer".
    assert!(Target::Global.get(&"A".repeat(64)).is_none());
    let m = expect_err(SessionError::InvalidArgument, "upper case");
    assert!(!m.contains("longer"), "{m}");
    assert!(Target::Global.get(&"a".repeat(63)).is_none());
    let m = expect_err(SessionError::InvalidArgument, "63 characters");
    assert!(m.contains("63"), "{m}");
    session_shutdown();
}
