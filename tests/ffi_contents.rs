//! The C API of the session contents issue, called as a C caller would (C strings
//! in, `free()` on returned strings): encryption errors, the cookie helpers and
//! the owner index, through handles and through the global configuration, with
//! NULL and malformed arguments.

mod support;

use session::ffi::*;
use session::SessionError;
use std::ffi::c_char;
use std::ptr::{null, null_mut};
use support::c_api::{c, last_error as last, take};
use support::temp::TempDir;

fn text(ptr: *mut c_char) -> Option<String> {
    take(ptr).map(|b| String::from_utf8(b).unwrap())
}

#[track_caller]
fn expect(code: SessionError) -> String {
    let (got, message) = last();
    assert_eq!(got, code, "message: {message:?}");
    message
}

const SECRET: &str = "a secret for the ffi tests, more than 32 bytes long";

fn open(json: &str) -> *mut SessionStore {
    let store = unsafe { session_store_open_json(c(json).as_ptr(), null()) };
    assert!(!store.is_null(), "{json}: {:?}", last());
    store
}

#[test]
fn encrypted_file_store_reports_corrupt_records() {
    let temp = TempDir::new("ffi-contents");
    let json = format!(
        r#"{{"sessions": {{"driver": "storage", "storage_name": "s", "secret": "{SECRET}"}},
            "storages": {{"s": {{"type": "filesystem", "root": "{}"}}}}}}"#,
        temp.path().display()
    );
    let store = open(&json);
    unsafe {
        let data = c(r#"{"user_id":42,"marker":"PLAINTEXT-MARKER"}"#);
        let id = text(session_store_create(store, data.as_ptr())).unwrap();
        let path = temp.path().join("sessions").join(&id);
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(16).any(|w| w == b"PLAINTEXT-MARKER"));
        let got = text(session_store_get(store, c(&id).as_ptr())).unwrap();
        assert!(got.contains("PLAINTEXT-MARKER"));
        // The file copied under another id: the checksum holds, the seal does not.
        let other = text(session_create_id()).unwrap();
        std::fs::copy(&path, temp.path().join("sessions").join(&other)).unwrap();
        assert!(session_store_get(store, c(&other).as_ptr()).is_null());
        assert!(expect(SessionError::Corrupt).contains("another session"));
        // A flipped byte of the data: the file driver's checksum reports it.
        let mut flipped = bytes.clone();
        let last_byte = flipped.len() - 1;
        flipped[last_byte] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(session_store_get(store, c(&id).as_ptr()).is_null());
        let message = expect(SessionError::Corrupt);
        assert!(!message.contains(&id), "{message}");
        assert_eq!(
            session_store_set_value(store, c(&id).as_ptr(), c("k").as_ptr(), c("1").as_ptr()),
            0
        );
        expect(SessionError::Corrupt);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            flipped,
            "a failed write changed the file"
        );
        session_store_close(store);
    }
    // A short secret: a config error that does not show it.
    let short = r#"{"sessions": {"driver": "memory", "secret": "hunter2-hunter2"}}"#;
    assert!(unsafe { session_store_open_json(c(short).as_ptr(), null()) }.is_null());
    let message = expect(SessionError::Config);
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn cookie_helpers_follow_the_store_configuration() {
    let store = open(
        r#"{"sessions": {"driver": "memory", "lifetime": 7200,
            "cookie": {"name": "__Host-sid", "same_site": "Strict"}}}"#,
    );
    unsafe {
        let id = text(session_store_create(store, c("{}").as_ptr())).unwrap();
        let header = text(session_store_cookie_header(store, c(&id).as_ptr())).unwrap();
        assert!(
            header.starts_with(&format!("__Host-sid={id}; Max-Age=7200; Expires=")),
            "{header}"
        );
        assert!(
            header.ends_with("GMT; Path=/; Secure; HttpOnly; SameSite=Strict"),
            "{header}"
        );
        // Expires is two hours from now: this year, give or take one (the year
        // length is averaged).
        let year: u64 = header.split("Expires=").nth(1).unwrap()[12..16]
            .parse()
            .unwrap();
        let now = session::store::now_ns() / 1_000_000_000;
        let this_year = 1970 + now * 400 / (146_097 * 86_400);
        assert!((this_year - 1..=this_year + 1).contains(&year), "{header}");
        assert_eq!(
            text(session_store_cookie_clear_header(store)).unwrap(),
            "__Host-sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        let request = format!("theme=dark; session_id={id}; __Host-sid=\"{id}\"");
        assert_eq!(
            text(session_store_id_from_cookie_header(
                store,
                c(&request).as_ptr()
            ))
            .unwrap(),
            id
        );
        assert_eq!(last().0, SessionError::Ok);
        assert!(session_store_id_from_cookie_header(store, c("session_id=x").as_ptr()).is_null());
        expect(SessionError::NotFound);
        assert!(session_store_id_from_cookie_header(store, null()).is_null());
        expect(SessionError::InvalidArgument);
        assert!(session_store_cookie_header(store, c("../etc/passwd").as_ptr()).is_null());
        expect(SessionError::InvalidArgument);
        assert!(session_store_cookie_header(null(), c(&id).as_ptr()).is_null());
        expect(SessionError::InvalidArgument);
        assert!(session_store_cookie_clear_header(null()).is_null());
        expect(SessionError::InvalidArgument);
        session_store_close(store);
    }
}

#[test]
fn owner_index_through_handles() {
    let store = open(r#"{"sessions": {"driver": "memory", "owner_key": "user_id"}}"#);
    let plain = open(r#"{"sessions": {"driver": "memory"}}"#);
    unsafe {
        let mut ids = Vec::new();
        for i in 0..6 {
            let data = c(&format!("{{\"user_id\":{},\"i\":{i}}}", i % 2));
            ids.push(text(session_store_create(store, data.as_ptr())).unwrap());
        }
        assert_eq!(session_store_count_owner(store, c("0").as_ptr()), 3);
        let list = text(session_store_list_owner(store, c("1").as_ptr())).unwrap();
        let listed: Vec<String> = serde_json::from_str(&list).unwrap();
        assert_eq!(listed.len(), 3);
        for id in &listed {
            assert!(ids.contains(id));
        }
        assert_eq!(
            text(session_store_list_owner(store, c("9").as_ptr())).unwrap(),
            "[]"
        );
        assert_eq!(session_store_destroy_owner(store, c("1").as_ptr()), 3);
        assert_eq!(last().0, SessionError::Ok);
        assert_eq!(session_store_count_owner(store, c("1").as_ptr()), 0);
        assert_eq!(session_store_count(store), 3);
        assert_eq!(session_store_destroy_owner(store, null()), -1);
        expect(SessionError::InvalidArgument);
        assert!(session_store_list_owner(store, null()).is_null());
        expect(SessionError::InvalidArgument);
        assert_eq!(session_store_count_owner(null(), c("1").as_ptr()), -1);
        expect(SessionError::InvalidArgument);
        assert_eq!(session_store_destroy_owner(plain, c("1").as_ptr()), -1);
        assert!(expect(SessionError::Config).contains("owner_key"));
        session_store_close(store);
        session_store_close(plain);
    }
}

#[test]
fn global_twins_use_the_default_store() {
    let json = c(
        r#"{"sessions": {"driver": "memory", "owner_key": "user_id", "secret": "a secret for the ffi tests, more than 32 bytes long", "cookie": {"name": "sid", "secure": false, "persistent": false}}}"#,
    );
    unsafe {
        assert_eq!(session_init_json(json.as_ptr()), 1, "{:?}", last());
        let id = text(session_create(c(r#"{"user_id":"alice"}"#).as_ptr())).unwrap();
        assert_eq!(
            text(session_cookie_header(c(&id).as_ptr())).unwrap(),
            format!("sid={id}; Path=/; HttpOnly; SameSite=Lax")
        );
        assert_eq!(
            text(session_cookie_clear_header()).unwrap(),
            "sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            text(session_id_from_cookie_header(
                c(&format!("Cookie: sid={id}")).as_ptr()
            ))
            .unwrap(),
            id
        );
        assert_eq!(session_count_owner(c("alice").as_ptr()), 1);
        assert_eq!(
            text(session_list_owner(c("alice").as_ptr())).unwrap(),
            format!("[\"{id}\"]")
        );
        assert_eq!(session_destroy_owner(c("alice").as_ptr()), 1);
        assert!(session_get(c(&id).as_ptr()).is_null());
        expect(SessionError::NotFound);
        assert!(session_cookie_header(null()).is_null());
        expect(SessionError::InvalidArgument);
        assert_eq!(session_count_owner(null()), -1);
        session_shutdown();
    }
    let _ = null_mut::<c_char>();
}
