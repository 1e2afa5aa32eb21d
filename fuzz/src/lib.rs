//! The fuzz targets' bodies: one function per parser that sees outside bytes. Each
//! panics when a property of the library does not hold, so libFuzzer reports the
//! input. They are plain functions: `fuzz_targets/*.rs` hand them libFuzzer's
//! inputs, and the library's `tests/fuzz_replay.rs` includes this file to replay
//! the seed corpus and every saved crash (`fuzz/regressions/`) in `cargo test`.
//!
//! Targets:
//! - `config`: `config.json` text (`Config::from_json`).
//! - `id`: a session id from outside (`SessionId::parse`).
//! - `cookie`: a request's `Cookie:` header (`CookieConfig::find_id`).
//! - `file_format`: a session file, descriptors and data: the pure decoder, then the
//!   same bytes planted in a real file store and read, changed and destroyed.
//! - `sealed_record`: an encrypted record (`Sealer::open`), and seal/open round trips.
//! - `json_ops`: the per-key operations on a session's JSON object.
//! - `c_api`: a program of C calls with arbitrary string arguments, against the
//!   exported functions of the header.

use session::config::Config;
use session::cookie::{CookieConfig, SameSite};
use session::error::SessionError;
use session::ffi;
use session::id::{SessionId, ID_LEN};
use session::json_object;
use session::seal::{Sealer, Secret};
use session::store::file::format;
use session::store::DriverConfig;
use session::Sessions;
use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

const SECRET_A: &[u8] = b"fuzzing-secret-A-0123456789abcdef";
const SECRET_B: &[u8] = b"fuzzing-secret-B-0123456789abcdef";

/// A valid id derived from the input, so that every target can name sessions.
fn id_from(data: &[u8]) -> SessionId {
    let mut hex = [b'0'; ID_LEN];
    let crc = crc32fast::hash(data);
    for (i, c) in hex.iter_mut().enumerate() {
        let nibble = (crc.rotate_left(4 * i as u32) & 0xf) as u8;
        *c = b"0123456789abcdef"[usize::from(nibble)];
    }
    SessionId::parse(&hex).expect("hex digits")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A per-process directory for the file stores of the targets (under `TMPDIR`).
fn scratch_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("session-fuzz-{}-{label}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

// ---------------------------------------------------------------------------------
// config

/// `Config::from_json`: never panics; an error has a code and a message, and never
/// quotes a secret; a memory store opens from every accepted configuration.
pub fn config(data: &[u8]) {
    match Config::from_json(data) {
        Ok(config) => {
            assert!(!config.stores.is_empty(), "a configuration without a store");
            if let Some(i) = config.default {
                assert!(i < config.stores.len());
            }
            for store in &config.stores {
                assert!(store.lifetime > Duration::ZERO);
                assert!(store.max_lifetime >= store.lifetime);
                assert!(store.max_data_size > 0);
                if matches!(store.driver, DriverConfig::Memory(_)) {
                    let opened = Sessions::open_store(store);
                    if let Err(err) = &opened {
                        assert_ne!(err.code, SessionError::Internal, "{}", err.message);
                    }
                }
            }
        }
        Err(err) => {
            assert!(!err.message.is_empty());
            assert!(
                matches!(
                    err.code,
                    SessionError::Config | SessionError::InvalidArgument
                ),
                "config error with code {:?}: {}",
                err.code,
                err.message
            );
        }
    }
    secrets_stay_unsaid(data);
}

/// The outcome of a configuration does not depend on what its secrets say, only on
/// their length: the same JSON with every character of every `secret` and
/// `secret_fallbacks` string changed (same length, still distinct) gives the same
/// error message, so no message can quote a secret.
fn secrets_stay_unsaid(data: &[u8]) {
    fn walk(value: &mut serde_json::Value, under_secret: bool, changed: &mut bool) {
        match value {
            serde_json::Value::String(s) if under_secret => {
                // A bijection on printable ASCII (rotate by 47), other characters kept.
                *s = s
                    .chars()
                    .map(|c| match c {
                        ' '..='~' => char::from(((c as u8 - b' ' + 47) % 95) + b' '),
                        other => other,
                    })
                    .collect();
                *changed = true;
            }
            serde_json::Value::Array(items) => {
                items
                    .iter_mut()
                    .for_each(|v| walk(v, under_secret, changed));
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    walk(v, k == "secret" || k == "secret_fallbacks", changed);
                }
            }
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let plain = serde_json::to_vec(&value).expect("JSON");
    let mut changed = false;
    walk(&mut value, false, &mut changed);
    if !changed {
        return;
    }
    let other = serde_json::to_vec(&value).expect("JSON");
    let message = |json: &[u8]| Config::from_json(json).err().map(|e| e.message);
    assert_eq!(
        message(&plain),
        message(&other),
        "an outcome depends on a secret's content"
    );
}

// ---------------------------------------------------------------------------------
// id

/// `SessionId::parse` accepts exactly 64 lowercase hex digits and gives them back.
pub fn id(data: &[u8]) {
    let well_formed =
        data.len() == ID_LEN && data.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    match SessionId::parse(data) {
        Ok(id) => {
            assert!(well_formed, "accepted a malformed id");
            assert_eq!(id.as_str().as_bytes(), data);
        }
        Err(err) => {
            assert!(!well_formed, "rejected a well-formed id");
            assert_eq!(err.code, SessionError::InvalidArgument);
            // Input with a non-ASCII byte cannot be mistaken for the message's words.
            if data.len() >= 8 && data.iter().any(|&b| b >= 0x80) {
                assert!(
                    !contains(err.message.as_bytes(), data),
                    "the message quotes the id"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// cookie

/// `find_id` on any header: a found id is in the header; a cookie of ours appended
/// to any header is always found; our own `Set-Cookie` value reads back.
pub fn cookie(data: &[u8]) {
    let (selector, header) = data.split_first().map_or((0, data), |(s, rest)| (*s, rest));
    let mut config = CookieConfig::default();
    match selector % 4 {
        0 => {}
        1 => config.name = "__Host-sid".to_string(),
        2 => {
            config.name = "s".to_string();
            config.same_site = SameSite::Strict;
            config.persistent = false;
        }
        _ => {
            config.name = "id".to_string();
            config.domain = Some("example.com".to_string());
            config.same_site = SameSite::None;
        }
    }
    match config.find_id(header) {
        Ok(id) => assert!(
            contains(header, id.as_bytes()),
            "found an id that is not there"
        ),
        Err(err) => assert_eq!(err.code, SessionError::NotFound, "{}", err.message),
    }
    let ours = id_from(header);
    let mut appended = header.to_vec();
    appended.extend_from_slice(b"; ");
    appended.extend_from_slice(config.name.as_bytes());
    appended.push(b'=');
    appended.extend_from_slice(ours.as_bytes());
    let found = config
        .find_id(&appended)
        .expect("our cookie, appended, is found");
    assert!(found == ours || contains(header, found.as_bytes()));

    let now = u64::from(crc32fast::hash(header)) * 16;
    let set = config.set_header(&ours, Duration::from_secs(3600), now);
    assert_eq!(
        config
            .find_id(set.as_bytes())
            .expect("Set-Cookie reads back"),
        ours
    );
    assert!(!set.contains(['\r', '\n', '\0']));
}

// ---------------------------------------------------------------------------------
// file_format

/// Makes the descriptors of `data` valid where the input asks, so that the fuzzer
/// reaches past the checksums: byte 0 bit 0 fixes each slot's header checksum and
/// magic, bit 1 its data checksum, bit 2 its id tag; bit 3 makes the file longer
/// than the driver's first read.
fn fix_up(data: &[u8], id: &SessionId) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut file = rest.to_vec();
    // Bit 3: zeros up to past the driver's first read (16 KiB), so that a read
    // takes its second, bounded step.
    if mode & 8 != 0 {
        file.resize(file.len().max(16 * 1024 + 512), 0);
    }
    if mode & 1 == 0 {
        return file;
    }
    for slot in 0..2 {
        let at = slot * format::DESC_LEN;
        if file.len() < at + format::DESC_LEN {
            break;
        }
        file[at..at + 4].copy_from_slice(&format::MAGIC.to_le_bytes());
        if mode & 4 != 0 {
            file[at + 48..at + 56].copy_from_slice(&format::tag(id).to_le_bytes());
        }
        if mode & 2 != 0 {
            let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
            let off = u64::from_le_bytes(file[at + 40..at + 48].try_into().unwrap());
            if let Some(crc) = usize::try_from(off)
                .ok()
                .and_then(|off| file.get(off..off.checked_add(len)?))
                .map(crc32fast::hash)
            {
                file[at + 60..at + 64].copy_from_slice(&crc.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&file[at..at + 68]);
        file[at + 68..at + 72].copy_from_slice(&crc.to_le_bytes());
    }
    file
}

struct FileTarget {
    sessions: Sessions,
    dir: PathBuf,
}

fn file_target() -> &'static FileTarget {
    static TARGET: OnceLock<FileTarget> = OnceLock::new();
    TARGET.get_or_init(|| {
        let root = scratch_dir("files");
        let json = serde_json::json!({
            "storages": {"fuzz": {"type": "filesystem", "root": root}},
            "sessions": {
                "driver": "file", "storage_name": "fuzz", "lifetime": 3600, "idle_timeout": 600,
                "lock_timeout_ms": 100, "max_data_size": 65536, "fsync": false
            }
        });
        let config = Config::from_json(json.to_string().as_bytes()).expect("file config");
        let sessions = Sessions::open(&config).expect("file store");
        FileTarget {
            sessions,
            dir: root.join("sessions"),
        }
    })
}

/// The pure decoder keeps its promises on any bytes, and the file driver handles a
/// planted file of these bytes: it reads as a session, as missing or as damaged,
/// never an internal error, and a successful write makes it whole again.
pub fn file_format(data: &[u8]) {
    let target = file_target();
    let id = id_from(data);
    let file = fix_up(data, &id);

    for (slot, desc) in format::descriptors(&file) {
        let at = slot * format::DESC_LEN;
        assert!(desc.off >= format::HEADER_LEN as u64);
        let bytes: [u8; format::DESC_LEN] = file[at..at + format::DESC_LEN].try_into().unwrap();
        assert_eq!(format::Descriptor::decode(&desc.encode()), Some(desc));
        // Bytes 64..68 are reserved: written as zero, covered by the checksum.
        assert_eq!(desc.encode()[..64], bytes[..64], "decode/encode differ");
    }
    for fallback in [false, true] {
        if let Some((desc, bytes)) = format::newest_version(&file, fallback) {
            assert_eq!(crc32fast::hash(bytes), desc.data_crc);
            assert_eq!(bytes.len(), desc.len as usize);
            let off = desc.off as usize;
            assert_eq!(&file[off..off + bytes.len()], bytes);
            let free = format::free_offset(&desc, desc.len);
            assert!(
                free + u64::from(desc.len) <= desc.off || free >= desc.end(),
                "new data would overlap the live version"
            );
        }
    }

    let path = target.dir.join(id.as_str());
    std::fs::write(&path, &file).expect("plant the file");
    let s = &target.sessions;
    let allowed = |what: &str, err: &session::Error| {
        assert!(
            matches!(
                err.code,
                SessionError::NotFound | SessionError::Corrupt | SessionError::InvalidArgument
            ),
            "{what} on a planted file: {:?} {}",
            err.code,
            err.message
        );
    };
    let id_bytes = id.as_bytes();
    let got = s.get(id_bytes);
    if let Err(err) = &got {
        allowed("get", err);
    }
    // A session that reads has a whole version: no write may call it damaged,
    // unless its counters are near their end (2^61 writes: never written by the
    // driver; a write near the limit may be refused rather than overflow).
    let exhausted = format::descriptors(&file)
        .iter()
        .any(|(_, d)| d.seq >= format::MAX_COUNTER / 2 || d.version >= format::MAX_COUNTER / 2);
    let allowed = |what: &str, err: &session::Error| {
        allowed(what, err);
        if got.is_ok() && !exhausted {
            assert_ne!(
                err.code,
                SessionError::Corrupt,
                "{what} on a readable session: {}",
                err.message
            );
        }
    };
    let ops = file.last().copied().unwrap_or(0);
    if ops & 1 != 0 {
        if let Err(err) = s.get_value(id_bytes, b"k") {
            allowed("get_value", &err);
        }
        if let Err(err) = s.ttl(id_bytes) {
            allowed("ttl", &err);
        }
        if let Err(err) = s.touch(id_bytes) {
            allowed("touch", &err);
        }
        // Reads and a touch change no data: what a get served, it serves again.
        if let Ok(before) = &got {
            assert_eq!(
                s.get(id_bytes).as_ref().ok(),
                Some(before),
                "a touch lost the data"
            );
        }
    }
    if ops & 2 != 0 {
        match s.set_value(id_bytes, b"k", b"1") {
            Ok(()) => assert_eq!(
                s.get_value(id_bytes, b"k").expect("read back"),
                Some(b"1".to_vec())
            ),
            Err(err) => allowed("set_value", &err),
        }
    }
    if ops & 4 != 0 {
        match s.update(id_bytes, b"{\"new\":true}") {
            Ok(()) => assert_eq!(s.get(id_bytes).expect("read back"), b"{\"new\":true}"),
            Err(err) => allowed("update", &err),
        }
    }
    if ops & 8 != 0 {
        match s.regenerate(id_bytes) {
            Ok(new) => {
                let _ = s.destroy(new.as_bytes());
            }
            Err(err) => allowed("regenerate", &err),
        }
    }
    if ops & 16 != 0 {
        let _ = s.count().expect("count");
    }
    if let Err(err) = s.destroy(id_bytes) {
        allowed("destroy", &err);
    }
    let _ = std::fs::remove_file(&path);
}

// ---------------------------------------------------------------------------------
// sealed_record

fn sealers() -> &'static (Sealer, Sealer, Sealer) {
    static SEALERS: OnceLock<(Sealer, Sealer, Sealer)> = OnceLock::new();
    SEALERS.get_or_init(|| {
        let a = Secret::new(SECRET_A, "secret").expect("secret A");
        let b = Secret::new(SECRET_B, "secret").expect("secret B");
        (
            Sealer::new(&a, &[]).expect("sealer A"),
            Sealer::new(&b, std::slice::from_ref(&a)).expect("sealer B with A as fallback"),
            Sealer::new(&b, &[]).expect("sealer B"),
        )
    })
}

/// No input opens as a record (forgery); what is sealed opens under its id and
/// under a rotation that keeps the secret as a fallback, and under nothing else; any
/// changed byte, a cut, or another id makes it `CORRUPT`.
pub fn sealed_record(data: &[u8]) {
    let (a, b_with_a, b) = sealers();
    let id = id_from(data);
    for sealer in [a, b_with_a, b] {
        match sealer.open(&id, data) {
            Ok(_) => panic!("an arbitrary input opened as a sealed record"),
            Err(err) => assert_eq!(err.code, SessionError::Corrupt, "{}", err.message),
        }
    }
    let record = a.seal(&id, data).expect("seal");
    assert_eq!(record.len(), data.len() + session::seal::OVERHEAD);
    assert_eq!(a.open(&id, &record).expect("open"), data);
    assert_eq!(
        b_with_a.open(&id, &record).expect("open with the fallback"),
        data
    );
    assert_eq!(
        b.open(&id, &record).unwrap_err().code,
        SessionError::Corrupt
    );
    let other = id_from(&record);
    if other != id {
        assert_eq!(
            a.open(&other, &record).unwrap_err().code,
            SessionError::Corrupt
        );
    }
    let pick = usize::from(data.first().copied().unwrap_or(0));
    let mut flipped = record.clone();
    let at = pick % flipped.len();
    flipped[at] ^= 1 << (pick % 8);
    assert_eq!(
        a.open(&id, &flipped).unwrap_err().code,
        SessionError::Corrupt
    );
    let cut = &record[..pick % record.len()];
    assert_eq!(a.open(&id, cut).unwrap_err().code, SessionError::Corrupt);
}

// ---------------------------------------------------------------------------------
// json_ops

/// Per-key operations agree with serde_json: a document is accepted exactly when it
/// is a JSON object; `get` gives the last duplicate; `set` and `remove` change that
/// member only and leave a JSON object. The same through a store with a secret.
pub fn json_ops(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0);
    let doc = parts.next().unwrap_or_default();
    let key_bytes = parts.next().unwrap_or(b"k");
    let value = parts.next().unwrap_or(b"1");

    type Object = serde_json::Map<String, serde_json::Value>;
    // The scanner leaves the bytes of members it does not touch alone, invalid
    // UTF-8 in their strings included (only a new value must be UTF-8): such a
    // document is compared through a lossy copy.
    let utf8 = std::str::from_utf8(doc).is_ok();
    let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned().into_bytes();
    let parse_value = |bytes: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(&lossy(bytes)).expect("a member value")
    };
    let reference: Option<Object> = serde_json::from_slice(&lossy(doc)).ok();
    let value_ok = serde_json::from_slice::<serde_json::Value>(value).is_ok();
    if !beyond_serde_limits(value) {
        assert_eq!(
            json_object::check_value(value).is_ok(),
            value_ok,
            "check_value disagrees with serde_json"
        );
    }

    if let Ok(key) = std::str::from_utf8(key_bytes) {
        let got = json_object::get(doc, key);
        match (&reference, &got) {
            (Some(map), Ok(found)) => {
                let found = found.map(parse_value);
                assert_eq!(
                    found.as_ref(),
                    map.get(key),
                    "get disagrees with serde_json"
                );
            }
            (None, Err(_)) => {}
            (None, Ok(_)) if beyond_serde_limits(&lossy(doc)) => {}
            // Invalid UTF-8 in a member name.
            (Some(_), Err(_)) if !utf8 => {}
            _ => panic!("get accepts a document serde_json rejects, or the reverse"),
        }
        if let (Some(map), true) = (&reference, value_ok) {
            match json_object::set(doc, key, value) {
                Ok(out) => {
                    let mut expected = map.clone();
                    expected.insert(key.to_string(), serde_json::from_slice(value).unwrap());
                    let out: Object =
                        serde_json::from_slice(&lossy(&out)).expect("set leaves an object");
                    assert_eq!(out, expected, "set changed more than its member");
                }
                Err(_) => assert!(!utf8, "set refused an object"),
            }
        }
        if let Some(map) = &reference {
            match json_object::remove(doc, key) {
                Ok(Some((out, removed))) => {
                    let mut expected = map.clone();
                    let old = expected
                        .remove(key)
                        .expect("removed a member that was there");
                    assert_eq!(parse_value(&removed), old);
                    let out: Object =
                        serde_json::from_slice(&lossy(&out)).expect("remove leaves an object");
                    assert_eq!(out, expected, "remove changed more than its member");
                }
                Ok(None) => assert!(!map.contains_key(key)),
                Err(_) => assert!(!utf8, "remove refused an object"),
            }
        }
    }

    // The same operations through a store that seals its records.
    let store = json_store();
    let Ok(id) = store.create(doc) else { return };
    let id = id.as_bytes();
    match store.set_value(id, key_bytes, value) {
        Ok(()) => {
            let key = std::str::from_utf8(key_bytes).expect("set_value accepted the key");
            let stored = store.get(id).expect("get");
            let want = json_object::set(doc, key, value).expect("set");
            assert_eq!(
                stored, want,
                "the store's set_value differs from json_object::set"
            );
        }
        Err(err) => assert!(
            matches!(
                err.code,
                SessionError::InvalidArgument | SessionError::TooLarge
            ),
            "{:?} {}",
            err.code,
            err.message
        ),
    }
    if let Err(err) = store.pop_value(id, key_bytes) {
        assert!(
            matches!(err.code, SessionError::InvalidArgument),
            "{}",
            err.message
        );
    }
    store.destroy(id).expect("destroy");
}

/// serde_json, the reference, refuses valid JSON beyond its own limits, which the
/// library's scanner does not have: 128 levels of nesting, and numbers beyond the
/// range of an f64 (`1e400`).
fn beyond_serde_limits(text: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(text).is_err_and(|err| {
        let err = err.to_string();
        err.contains("recursion limit exceeded") || err.contains("number out of range")
    })
}

fn json_store() -> &'static Sessions {
    static STORE: OnceLock<Sessions> = OnceLock::new();
    STORE.get_or_init(|| {
        let json = format!(
            r#"{{"sessions": {{"driver": "memory", "max_data_size": 8192, "secret": "{}", "owner_key": "user"}}}}"#,
            std::str::from_utf8(SECRET_A).unwrap()
        );
        Sessions::open(&Config::from_json(json.as_bytes()).expect("config")).expect("store")
    })
}

// ---------------------------------------------------------------------------------
// c_api

const INTERNAL: i32 = SessionError::Internal as i32;
const STORE_JSON: &CStr = c"{\"sessions\": {\"driver\": \"memory\", \"max_sessions\": 64, \"max_data_size\": 4096, \"idle_timeout\": 60, \"secret\": \"fuzzing-secret-A-0123456789abcdef\", \"owner_key\": \"user\", \"max_sessions_per_owner\": 3, \"regenerate_grace\": 0}}";
const GLOBAL_JSON: &CStr = c"{\"sessions\": {\"main\": {\"driver\": \"memory\", \"max_sessions\": 64}, \"default\": {\"driver\": \"memory\", \"max_sessions\": 64, \"max_data_size\": 4096}}}";

/// An argument of a call: NULL, one of the ids seen so far, or the input's bytes.
enum Arg {
    Null,
    Text(CString),
}

impl Arg {
    fn ptr(&self) -> *const c_char {
        match self {
            Arg::Null => std::ptr::null(),
            Arg::Text(text) => text.as_ptr(),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Arg::Null => b"",
            Arg::Text(text) => text.as_bytes(),
        }
    }
}

/// After a call that failed: a code other than OK and INTERNAL, a message that does
/// not quote `data`. After any call: never INTERNAL (a caught panic).
fn check_call(failed: bool, data: &[u8]) {
    let code = ffi::session_last_error_code();
    assert_ne!(code, INTERNAL, "internal error: {:?}", last_error());
    if failed {
        assert_ne!(code, 0, "a failure without an error code");
        let ptr = ffi::session_last_error();
        assert!(!ptr.is_null(), "a failure without a message");
        // SAFETY: the library's own NUL-terminated string.
        let message = unsafe { CStr::from_ptr(ptr) }.to_bytes();
        assert!(!message.is_empty());
        // Data with a non-ASCII byte cannot be mistaken for the library's own
        // words (the fuzzer finds "session not found" as data quickly).
        if data.len() >= 8 && data.iter().any(|&b| b >= 0x80) {
            assert!(!contains(message, data), "the message quotes the data");
        }
    }
}

fn last_error() -> Option<String> {
    let ptr = ffi::session_last_error();
    // SAFETY: the library's own NUL-terminated string, valid until the next call.
    (!ptr.is_null()).then(|| {
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    })
}

/// Takes a returned string: its bytes, after releasing it with `free()`.
fn take(ptr: *mut c_char) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a malloc'd NUL-terminated string that the caller owns.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec();
    unsafe { libc::free(ptr.cast()) };
    Some(bytes)
}

fn is_memory_only(json: &[u8]) -> bool {
    Config::from_json(json).is_ok_and(|c| {
        c.stores
            .iter()
            .all(|s| matches!(s.driver, DriverConfig::Memory(_)))
    })
}

/// Runs the input as a program of calls: NUL separates calls; in each, the first
/// byte picks the function and 0x01 separates its arguments; an argument `@`…
/// names an id seen so far, `~` is NULL, anything else is passed as it is.
pub fn c_api(data: &[u8]) {
    // SAFETY (whole function): every pointer passed is NULL or a live CString, and
    // every string returned is taken by `take` exactly once.
    unsafe {
        assert_eq!(
            ffi::session_init_json(GLOBAL_JSON.as_ptr()),
            1,
            "{:?}",
            last_error()
        );
        let store = ffi::session_store_open_json(STORE_JSON.as_ptr(), std::ptr::null());
        assert!(!store.is_null(), "{:?}", last_error());
        let mut ids: Vec<CString> = Vec::new();

        for call in data.split(|&b| b == 0).take(64) {
            let Some((&op, rest)) = call.split_first() else {
                continue;
            };
            let mut raw = rest.split(|&b| b == 1);
            let mut next = || -> Arg {
                match raw.next() {
                    None | Some(b"~") => Arg::Null,
                    Some([b'@', pick @ ..]) if !ids.is_empty() => {
                        Arg::Text(ids[pick.len() % ids.len()].clone())
                    }
                    Some(bytes) => Arg::Text(CString::new(bytes).expect("no NUL inside")),
                }
            };
            let (a, b, c) = (next(), next(), next());
            let number = a
                .bytes()
                .iter()
                .fold(0i64, |n, &d| n.wrapping_mul(31).wrapping_add(i64::from(d)));
            let id_result = |ptr: *mut c_char, data: &[u8], ids: &mut Vec<CString>| {
                let got = take(ptr);
                check_call(got.is_none(), data);
                if let Some(id) = got {
                    assert!(SessionId::parse(&id).is_ok(), "a returned id is malformed");
                    ids.push(CString::new(id).unwrap());
                }
            };
            match op % 28 {
                0 => id_result(
                    ffi::session_store_create(store, a.ptr()),
                    a.bytes(),
                    &mut ids,
                ),
                1 => id_result(
                    ffi::session_store_create_ttl(store, b.ptr(), number as _),
                    b.bytes(),
                    &mut ids,
                ),
                2 => {
                    let got = take(ffi::session_store_get(store, a.ptr()));
                    check_call(got.is_none(), b"");
                }
                3 => check_call(
                    ffi::session_store_update(store, a.ptr(), b.ptr()) == 0,
                    b.bytes(),
                ),
                4 => check_call(ffi::session_store_destroy(store, a.ptr()) == 0, b""),
                5 => check_call(ffi::session_store_touch(store, a.ptr()) == 0, b""),
                6 => check_call(ffi::session_store_ttl(store, a.ptr()) < 0, b""),
                7 => check_call(false, &[ffi::session_store_exists(store, a.ptr()) as u8]),
                8 => check_call(ffi::session_store_count(store) < 0, b""),
                9 => id_result(ffi::session_store_regenerate(store, a.ptr()), b"", &mut ids),
                10 => {
                    let mut version = 0;
                    let got = take(ffi::session_store_get_versioned(
                        store,
                        a.ptr(),
                        &mut version,
                    ));
                    check_call(got.is_none(), b"");
                    let version = if c.bytes().is_empty() {
                        version
                    } else {
                        number as u64
                    };
                    let wrote = ffi::session_store_update_if(store, a.ptr(), b.ptr(), version);
                    check_call(wrote == 0, b.bytes());
                }
                11 => {
                    let got = take(ffi::session_store_get_value(store, a.ptr(), b.ptr()));
                    check_call(got.is_none() && ffi::session_last_error_code() != 0, b"");
                }
                12 => check_call(
                    ffi::session_store_set_value(store, a.ptr(), b.ptr(), c.ptr()) == 0,
                    c.bytes(),
                ),
                13 => check_call(
                    ffi::session_store_delete_value(store, a.ptr(), b.ptr()) == 0,
                    b"",
                ),
                14 => {
                    let got = take(ffi::session_store_pop_value(store, a.ptr(), b.ptr()));
                    check_call(got.is_none() && ffi::session_last_error_code() != 0, b"");
                }
                15 => check_call(ffi::session_store_destroy_owner(store, a.ptr()) < 0, b""),
                16 => match take(ffi::session_store_list_owner(store, a.ptr())) {
                    Some(list) => {
                        check_call(false, b"");
                        let list: Vec<String> =
                            serde_json::from_slice(&list).expect("a JSON array of ids");
                        assert!(list
                            .iter()
                            .all(|id| SessionId::parse(id.as_bytes()).is_ok()));
                    }
                    None => check_call(true, b""),
                },
                17 => check_call(ffi::session_store_count_owner(store, a.ptr()) < 0, b""),
                18 => {
                    let got = take(ffi::session_store_cookie_header(store, a.ptr()));
                    check_call(got.is_none(), b"");
                }
                19 => assert!(take(ffi::session_store_cookie_clear_header(store)).is_some()),
                20 => {
                    let got = take(ffi::session_store_id_from_cookie_header(store, a.ptr()));
                    check_call(got.is_none(), b"");
                }
                21 => check_call(ffi::session_store_remove_expired(store) < 0, b""),
                // The global API, on the default store of GLOBAL_JSON (or of a
                // configuration from the input, when it names only memory stores).
                22 => id_result(ffi::session_create(a.ptr()), a.bytes(), &mut ids),
                23 => {
                    let got = take(ffi::session_get(a.ptr()));
                    check_call(got.is_none(), b"");
                    check_call(ffi::session_touch(a.ptr()) == 0, b"");
                    check_call(ffi::session_ttl(a.ptr()) < 0, b"");
                    check_call(false, &[ffi::session_exists(a.ptr()) as u8]);
                    let mut version = 0;
                    let got = take(ffi::session_get_versioned(a.ptr(), &mut version));
                    check_call(got.is_none(), b"");
                    let wrote = ffi::session_update_if(a.ptr(), b.ptr(), version);
                    check_call(wrote == 0, b.bytes());
                    check_call(ffi::session_delete_value(a.ptr(), c.ptr()) == 0, b"");
                    let got = take(ffi::session_pop_value(a.ptr(), c.ptr()));
                    check_call(got.is_none() && ffi::session_last_error_code() != 0, b"");
                    check_call(ffi::session_update(a.ptr(), b.ptr()) == 0, b.bytes());
                    check_call(
                        ffi::session_set_value(a.ptr(), b.ptr(), c.ptr()) == 0,
                        c.bytes(),
                    );
                }
                24 => {
                    if is_memory_only(a.bytes()) {
                        let ok = ffi::session_init_json(a.ptr());
                        check_call(ok == 0, b"");
                    }
                }
                25 => {
                    if is_memory_only(a.bytes()) {
                        let other = ffi::session_store_open_json(a.ptr(), b.ptr());
                        check_call(other.is_null(), b"");
                        ffi::session_store_close(other);
                    }
                    let named = ffi::session_store(b.ptr());
                    check_call(named.is_null(), b"");
                    ffi::session_store_close(named);
                }
                26 => {
                    let got = take(ffi::session_id_from_cookie_header(a.ptr()));
                    check_call(got.is_none(), b"");
                    let _ = take(ffi::session_create_id()).expect("an id");
                    ffi::session_free(std::ptr::null_mut());
                }
                _ => {
                    id_result(ffi::session_regenerate(b.ptr()), b"", &mut ids);
                    check_call(ffi::session_destroy(a.ptr()) == 0, b"");
                    let _ = ffi::session_remove_expired_count();
                }
            }
        }
        ffi::session_store_close(store);
        ffi::session_shutdown();
    }
}
