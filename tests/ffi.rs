//! The C API called through its `extern "C"` functions, in process. The library has
//! one global configuration, so these tests take turns.

mod support;

use session::ffi::*;
use session::SessionError;
use std::ffi::CString;
use std::path::PathBuf;
use std::ptr::null;
use support::c_api::{c, last_error, take};

static TURN: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn temp_dir(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("libsession-ffi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path).unwrap();
    path
}

fn init_file(dir: &std::path::Path, lifetime: u64) {
    let json = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "lifetime": {lifetime}}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        dir.display()
    );
    assert_eq!(
        unsafe { session_init_json(c(&json).as_ptr()) },
        1,
        "{:?}",
        last_error()
    );
}

#[test]
fn null_arguments_give_null_or_zero_and_a_message() {
    let _turn = TURN.lock();
    let dir = temp_dir("null");
    init_file(&dir, 3600);
    let id = c(&"a".repeat(64));
    let data = c("x");
    type Call<'a> = (&'a str, Box<dyn Fn() -> bool + 'a>);
    let calls: Vec<Call> = unsafe {
        vec![
            (
                "session_create(NULL)",
                Box::new(|| session_create(null()).is_null()),
            ),
            (
                "session_get(NULL)",
                Box::new(|| session_get(null()).is_null()),
            ),
            (
                "session_update(NULL, data)",
                Box::new(|| session_update(null(), data.as_ptr()) == 0),
            ),
            (
                "session_update(id, NULL)",
                Box::new(|| session_update(id.as_ptr(), null()) == 0),
            ),
            (
                "session_destroy(NULL)",
                Box::new(|| session_destroy(null()) == 0),
            ),
            (
                "session_get_value(id, NULL)",
                Box::new(|| session_get_value(id.as_ptr(), null()).is_null()),
            ),
            (
                "session_set_value(id, key, NULL)",
                Box::new(|| session_set_value(id.as_ptr(), data.as_ptr(), null()) == 0),
            ),
            (
                "session_set_value(id, NULL, value)",
                Box::new(|| session_set_value(id.as_ptr(), null(), data.as_ptr()) == 0),
            ),
            (
                "session_delete_value(NULL, key)",
                Box::new(|| session_delete_value(null(), data.as_ptr()) == 0),
            ),
            (
                "session_pop_value(id, NULL)",
                Box::new(|| session_pop_value(id.as_ptr(), null()).is_null()),
            ),
            (
                "session_get_versioned(id, NULL)",
                Box::new(|| session_get_versioned(id.as_ptr(), std::ptr::null_mut()).is_null()),
            ),
            (
                "session_update_if(id, NULL, 1)",
                Box::new(|| session_update_if(id.as_ptr(), null(), 1) == 0),
            ),
            ("session_init(NULL)", Box::new(|| session_init(null()) == 0)),
            (
                "session_init_json(NULL)",
                Box::new(|| session_init_json(null()) == 0),
            ),
        ]
    };
    for (call, failed) in calls {
        assert!(failed(), "{call} did not fail");
        let (code, message) = last_error();
        assert_eq!(code, SessionError::InvalidArgument, "{call}");
        assert!(message.contains("is NULL"), "{call}: {message}");
    }
    // session_free and session_store_close leave the last error alone (as free()
    // leaves errno): the error of the last failed call above is still there.
    unsafe {
        session_free(std::ptr::null_mut());
        session_store_close(std::ptr::null_mut());
        assert_eq!(last_error().0, SessionError::InvalidArgument);
    }
}

#[test]
fn the_documented_api_round_trip_and_error_codes() {
    let _turn = TURN.lock();
    let dir = temp_dir("crud");
    init_file(&dir, 3600);
    unsafe {
        let id = take(session_create(c("{\"user_id\":42}").as_ptr())).unwrap();
        assert_eq!(session_last_error_code(), 0);
        assert!(session_last_error().is_null());
        let id = CString::new(id).unwrap();
        assert_eq!(take(session_get(id.as_ptr())).unwrap(), b"{\"user_id\":42}");
        assert_ne!(
            session_update(id.as_ptr(), c("{\"user_id\":7}").as_ptr()),
            0
        );
        assert_eq!(take(session_get(id.as_ptr())).unwrap(), b"{\"user_id\":7}");
        assert_ne!(session_destroy(id.as_ptr()), 0);
        assert_ne!(session_destroy(id.as_ptr()), 0, "destroying twice succeeds");
        assert!(session_get(id.as_ptr()).is_null());
        assert_eq!(last_error().0, SessionError::NotFound);
        assert_eq!(session_update(id.as_ptr(), c("back?").as_ptr()), 0);
        assert_eq!(last_error().0, SessionError::NotFound);
        assert!(std::fs::read_dir(dir.join("sessions"))
            .unwrap()
            .next()
            .is_none());

        assert!(session_get(c("../../etc/passwd").as_ptr()).is_null());
        let (code, message) = last_error();
        assert_eq!(code, SessionError::InvalidArgument);
        assert!(message.contains("malformed session id"), "{message}");

        let fresh = take(session_create_id()).unwrap();
        assert_eq!(fresh.len(), 64);
        assert!(fresh
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
        assert_ne!(Some(fresh), take(session_create_id()));

        // Over-size data is refused with its own code.
        let big = c(&"x".repeat((1 << 20) + 1));
        assert!(session_create(big.as_ptr()).is_null());
        assert_eq!(last_error().0, SessionError::TooLarge);

        // The store disappearing is "unavailable", not "not found": a server can
        // answer 503 instead of 401.
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(session_create(c("x").as_ptr()).is_null());
        let (code, message) = last_error();
        assert_eq!(code, SessionError::StorageUnavailable, "{message}");
        session_shutdown();
    }
}

#[test]
fn config_errors_name_the_key_and_keep_the_previous_configuration() {
    let _turn = TURN.lock();
    unsafe {
        assert_eq!(
            session_init_json(c(r#"{"sessions": {"driver": "memory", "lifetime": 60}}"#).as_ptr()),
            1
        );
        let id = CString::new(take(session_create(c("kept").as_ptr())).unwrap()).unwrap();
        let bad = [
            (
                r#"{"sessions": {"driver": "memory", "lifetime": 0}}"#,
                "sessions.lifetime",
            ),
            (
                r#"{"sessions": {"driver": "memory", "lifetime": -1}}"#,
                "got -1",
            ),
            (
                r#"{"sessions": {"driver": "memory", "lifetime": "1h"}}"#,
                "\"1h\"",
            ),
            (r#"{"sessions": {"driver": "mongo"}}"#, "\"mongo\""),
            (
                r#"{"sessions": {"driver": "storage", "storage_name": "nope"}}"#,
                "\"nope\"",
            ),
            (
                r#"{"sessions": {"driver": "storage", "storage_name": "s"}, "storages": {"s": {"type": "filesystem", "root": "/proc/libsession-cannot-exist"}}}"#,
                "/proc/libsession-cannot-exist",
            ),
            (
                r#"{"sessions": {"driver": "redis", "url": "http://cache:6379"}}"#,
                "sessions.url",
            ),
            (
                r#"{"sessions": {"driver": "redis", "storage_name": "r1"}, "databases": {"redis": [{"host_id": "r1", "port": 70000}]}}"#,
                "databases.redis[r1].port",
            ),
            ("{not json", "not valid JSON"),
        ];
        for (json, named) in bad {
            assert_eq!(session_init_json(c(json).as_ptr()), 0, "{json}");
            let (code, message) = last_error();
            assert!(message.contains(named), "{json}: {message}");
            assert!(
                code == SessionError::Config || code == SessionError::StorageUnavailable,
                "{json}: {code:?}"
            );
            assert_eq!(
                take(session_get(id.as_ptr())).unwrap(),
                b"kept",
                "a failed init changed the store"
            );
        }
        assert_eq!(session_init(c("/nonexistent/config.json").as_ptr()), 0);
        let (code, message) = last_error();
        assert_eq!(code, SessionError::Config);
        assert!(message.contains("/nonexistent/config.json"), "{message}");

        // A config file in the documented shape.
        let dir = temp_dir("config-file");
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            format!(
                r#"{{"sessions": {{"driver": "storage", "storage_name": "sessions", "lifetime": 3600}},
                    "storages": {{"sessions": {{"type": "filesystem", "root": "{}"}}}}}}"#,
                dir.display()
            ),
        )
        .unwrap();
        assert_eq!(
            session_init(c(path.to_str().unwrap()).as_ptr()),
            1,
            "{:?}",
            last_error()
        );
        let id = take(session_create(c("on disk").as_ptr())).unwrap();
        assert!(dir
            .join("sessions")
            .join(String::from_utf8(id).unwrap())
            .is_file());
        session_shutdown();
    }
}

#[test]
fn the_last_error_belongs_to_its_thread() {
    let _turn = TURN.lock();
    unsafe {
        assert_eq!(
            session_init_json(c(r#"{"sessions": {"driver": "memory"}}"#).as_ptr()),
            1
        );
        assert!(session_get(c("bad").as_ptr()).is_null());
        assert_eq!(last_error().0, SessionError::InvalidArgument);
        std::thread::spawn(|| {
            assert_eq!(session_last_error_code(), 0);
            assert!(session_last_error().is_null());
        })
        .join()
        .unwrap();
        assert_eq!(last_error().0, SessionError::InvalidArgument);
        session_shutdown();
        assert_eq!(
            session_last_error_code(),
            0,
            "shutdown clears the thread's error"
        );
    }
}

#[test]
fn expired_sessions_are_gone_and_remove_expired_deletes_them() {
    let _turn = TURN.lock();
    let dir = temp_dir("expiry");
    init_file(&dir, 1);
    unsafe {
        let id = CString::new(take(session_create(c("brief").as_ptr())).unwrap()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1200));
        assert!(session_get(id.as_ptr()).is_null());
        assert_eq!(last_error().0, SessionError::NotFound);
        assert_eq!(session_update(id.as_ptr(), c("revive").as_ptr()), 0);
        assert!(dir.join("sessions").join(id.to_str().unwrap()).exists());
        session_remove_expired();
        assert_eq!(session_last_error_code(), 0);
        assert!(!dir.join("sessions").join(id.to_str().unwrap()).exists());
        session_shutdown();
    }
}
