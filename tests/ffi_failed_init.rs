//! A failed init before any successful one: later calls fail with
//! `SESSION_ERROR_CONFIG` and the init's message, and never fall back to the
//! embedded default (which would create `./sessions`). This binary holds one test
//! because it depends on the process never having been configured, and it changes
//! the process's working directory and environment.

mod support;

use session::ffi::*;
use session::SessionError;
use std::ffi::CString;
use std::ptr::null;
use support::c_api::{c, last_error as last, take};
use support::temp::TempDir;

fn listing(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every call on the global configuration fails with a config error quoting
/// `init_message`.
fn calls_fail_with(init_message: &str) {
    let id = c(&String::from_utf8(take(session_create_id()).unwrap()).unwrap());
    let data = c("x");
    type Call<'a> = (&'a str, Box<dyn Fn() -> bool + 'a>);
    let calls: Vec<Call> = unsafe {
        vec![
            (
                "session_create",
                Box::new(|| take(session_create(data.as_ptr())).is_none()),
            ),
            (
                "session_create_ttl",
                Box::new(|| take(session_create_ttl(data.as_ptr(), 5)).is_none()),
            ),
            (
                "session_get",
                Box::new(|| take(session_get(id.as_ptr())).is_none()),
            ),
            (
                "session_update",
                Box::new(|| session_update(id.as_ptr(), data.as_ptr()) == 0),
            ),
            (
                "session_destroy",
                Box::new(|| session_destroy(id.as_ptr()) == 0),
            ),
            (
                "session_touch",
                Box::new(|| session_touch(id.as_ptr()) == 0),
            ),
            ("session_ttl", Box::new(|| session_ttl(id.as_ptr()) == -1)),
            (
                "session_exists",
                Box::new(|| session_exists(id.as_ptr()) == 0),
            ),
            ("session_count", Box::new(|| session_count() == -1)),
            (
                "session_remove_expired_count",
                Box::new(|| session_remove_expired_count() == -1),
            ),
            (
                "session_regenerate",
                Box::new(|| take(session_regenerate(id.as_ptr())).is_none()),
            ),
            (
                "session_store(NULL)",
                Box::new(|| session_store(null()).is_null()),
            ),
            (
                "session_remove_expired",
                Box::new(|| {
                    session_remove_expired();
                    true
                }),
            ),
        ]
    };
    for (name, failed) in calls {
        assert!(failed(), "{name} succeeded without a configuration");
        let (code, message) = last();
        assert_eq!(code, SessionError::Config, "{name}: {message}");
        assert!(
            message.contains(init_message),
            "{name}: the message does not quote the failed init ({init_message:?}): {message}"
        );
    }
}

#[test]
fn a_failed_first_init_is_reported_by_every_later_call() {
    let cwd = TempDir::new("failed-init");
    std::env::set_current_dir(cwd.path()).unwrap();
    std::env::remove_var("SESSION_CONFIG");

    assert_eq!(
        unsafe { session_init_json(c("{\"sessions\": ").as_ptr()) },
        0
    );
    let (code, first) = last();
    assert_eq!(code, SessionError::Config, "{first}");
    assert!(first.contains("not valid JSON"), "{first}");
    calls_fail_with(&first);
    assert!(
        listing(cwd.path()).is_empty(),
        "a failed init fell back to the embedded default: {:?}",
        listing(cwd.path())
    );

    // A second failed init: calls now quote that one.
    let missing = cwd.path().join("no-such-config.json");
    assert_eq!(
        unsafe { session_init(c(missing.to_str().unwrap()).as_ptr()) },
        0
    );
    let (code, second) = last();
    assert_eq!(code, SessionError::Config, "{second}");
    assert!(second.contains("no-such-config.json"), "{second}");
    calls_fail_with(&second);
    assert!(listing(cwd.path()).is_empty(), "{:?}", listing(cwd.path()));

    // Handles opened explicitly do not depend on the global configuration.
    let store = unsafe {
        session_store_open_json(c(r#"{"sessions": {"driver": "memory"}}"#).as_ptr(), null())
    };
    assert!(!store.is_null(), "{:?}", last());
    let id = take(unsafe { session_store_create(store, c("handle").as_ptr()) }).unwrap();
    let id = CString::new(id).unwrap();
    assert_eq!(
        take(unsafe { session_store_get(store, id.as_ptr()) }).unwrap(),
        b"handle"
    );
    unsafe { session_store_close(store) };

    // A successful init ends it; a failed one after that keeps the working store.
    assert_eq!(
        unsafe { session_init_json(c(r#"{"sessions": {"driver": "memory"}}"#).as_ptr()) },
        1,
        "{:?}",
        last()
    );
    let id =
        take(unsafe { session_create(c("works").as_ptr()) }).expect("create after a good init");
    let id = CString::new(id).unwrap();
    assert_eq!(unsafe { session_init_json(c("[]").as_ptr()) }, 0);
    assert_eq!(last().0, SessionError::Config);
    assert_eq!(take(unsafe { session_get(id.as_ptr()) }).unwrap(), b"works");
    assert_eq!(session_count(), 1);
    assert!(listing(cwd.path()).is_empty(), "{:?}", listing(cwd.path()));
    session_shutdown();
    std::env::set_current_dir(std::env::temp_dir()).unwrap();
}
