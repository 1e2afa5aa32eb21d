//! The C API: argument checks, the panic boundary, malloc'd strings, the thread's
//! last error and store handles, over [`crate::sessions::Sessions`]. Nothing here
//! knows how sessions are stored.
//!
//! Each operation is written once (`op_*`) and exported twice: `session_X` on the
//! default store of the global configuration, `session_store_X` on a handle.
//!
//! Every export runs its body through [`boundary`], which catches panics and records
//! failures; `tests/ffi_boundary.rs` checks that no export skips it.

use crate::config::Config;
use crate::error::{Error, Result, SessionError};
use crate::global;
use crate::id::{SessionId, ID_LEN};
use crate::sessions::Sessions;
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_long, c_ulonglong, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

thread_local! {
    static LAST_ERROR: RefCell<Option<(SessionError, CString)>> = const { RefCell::new(None) };
}

fn set_last_error(err: Option<&Error>) {
    let value = err.map(|err| {
        let message = err.message.replace('\0', " ");
        (err.code, CString::new(message).unwrap_or_default())
    });
    // try_with: during thread teardown the slot may be gone; then there is nobody
    // left to read the error anyway.
    let _ = LAST_ERROR.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = value;
        }
    });
}

/// Runs an export's body: clears the thread's last error, catches any panic, and
/// turns a failure into `fail` plus a last error.
fn boundary<T>(fail: T, body: impl FnOnce() -> Result<T>) -> T {
    set_last_error(None);
    let err = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => return value,
        Ok(Err(err)) => err,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Error::new(
                SessionError::Internal,
                format!("internal error in libsession (a bug, please report it): {what}"),
            )
        }
    };
    set_last_error(Some(&err));
    fail
}

/// The boundary of the exports that only read the thread's state and must not
/// clear the last error: a panic gives `fail`.
fn no_panic<T>(fail: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fail)
}

/// The bytes of a NUL-terminated argument; NULL is an invalid-argument error.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives the call.
unsafe fn c_bytes<'a>(ptr: *const c_char, name: &str) -> Result<&'a [u8]> {
    if ptr.is_null() {
        return Err(Error::invalid(format!("{name} is NULL")));
    }
    Ok(CStr::from_ptr(ptr).to_bytes())
}

/// A session id argument. Reads at most 65 bytes, so a hostile over-long string is
/// rejected without being scanned to its end.
///
/// # Safety
/// As for [`c_bytes`].
unsafe fn c_id<'a>(ptr: *const c_char) -> Result<&'a [u8]> {
    if ptr.is_null() {
        return Err(Error::invalid("session_id is NULL"));
    }
    let len = libc::strnlen(ptr, ID_LEN + 1);
    Ok(std::slice::from_raw_parts(ptr.cast::<u8>(), len))
}

/// Copies bytes into a new NUL-terminated string from `malloc`, for `free()`.
fn malloc_string(bytes: &[u8]) -> Result<*mut c_char> {
    // SAFETY: malloc with a non-zero size; the result is checked before use.
    let ptr = unsafe { libc::malloc(bytes.len() + 1) }.cast::<u8>();
    if ptr.is_null() {
        return Err(Error::new(
            SessionError::Internal,
            format!("out of memory copying {} bytes", bytes.len() + 1),
        ));
    }
    // SAFETY: ptr has room for len + 1 bytes and does not overlap bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len());
        *ptr.add(bytes.len()) = 0;
    }
    Ok(ptr.cast())
}

/// An opaque handle on one session store, `session_store_t` in C.
///
/// Made by `session_store_open`, `session_store_open_json` or `session_store`, and
/// released with `session_store_close`. A handle keeps its store alive, also after
/// `session_init` or `session_shutdown` replaced the global configuration. One
/// handle may be used by many threads at once; close it after they are done.
pub struct SessionStore {
    sessions: Arc<Sessions>,
}

/// The store behind a handle argument; NULL is an invalid-argument error.
///
/// # Safety
/// `store` is NULL or a handle that has not been closed.
unsafe fn store_ref<'a>(store: *const SessionStore) -> Result<&'a Sessions> {
    store
        .as_ref()
        .map(|s| s.sessions.as_ref())
        .ok_or_else(|| Error::invalid("store is NULL"))
}

/// A new handle on `sessions`, owned by the caller.
fn new_handle(sessions: Arc<Sessions>) -> *mut SessionStore {
    Box::into_raw(Box::new(SessionStore { sessions }))
}

/// An optional store name: NULL means the default store.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
unsafe fn c_name<'a>(name: *const c_char) -> Result<Option<&'a str>> {
    if name.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(name)
        .to_str()
        .map(Some)
        .map_err(|_| Error::invalid("name is not UTF-8"))
}

/// A path argument.
///
/// # Safety
/// As for [`c_bytes`].
unsafe fn c_path<'a>(path: *const c_char, name: &str) -> Result<&'a std::path::Path> {
    let bytes = c_bytes(path, name)?;
    Ok(std::path::Path::new(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes),
    ))
}

/// A count for C: a `long`, saturating.
fn c_long_of(n: u64) -> c_long {
    c_long::try_from(n).unwrap_or(c_long::MAX)
}

// The operations, each written once and shared by the global function and its
// `session_store_*` twin.

unsafe fn op_create(s: &Sessions, data: *const c_char) -> Result<*mut c_char> {
    let id = s.create(c_bytes(data, "data")?)?;
    malloc_string(id.as_bytes())
}

unsafe fn op_create_ttl(s: &Sessions, data: *const c_char, ttl: c_long) -> Result<*mut c_char> {
    #[allow(clippy::useless_conversion)] // c_long is 32 bits on some targets
    let id = s.create_ttl(c_bytes(data, "data")?, i64::from(ttl))?;
    malloc_string(id.as_bytes())
}

unsafe fn op_get(s: &Sessions, id: *const c_char) -> Result<*mut c_char> {
    malloc_string(&s.get(c_id(id)?)?)
}

unsafe fn op_update(s: &Sessions, id: *const c_char, data: *const c_char) -> Result<c_int> {
    s.update(c_id(id)?, c_bytes(data, "data")?).map(|()| 1)
}

unsafe fn op_destroy(s: &Sessions, id: *const c_char) -> Result<c_int> {
    s.destroy(c_id(id)?).map(|()| 1)
}

unsafe fn op_touch(s: &Sessions, id: *const c_char) -> Result<c_int> {
    s.touch(c_id(id)?).map(|()| 1)
}

unsafe fn op_ttl(s: &Sessions, id: *const c_char) -> Result<c_long> {
    s.ttl_secs(c_id(id)?).map(c_long_of)
}

unsafe fn op_exists(s: &Sessions, id: *const c_char) -> Result<c_int> {
    s.exists(c_id(id)?).map(|()| 1)
}

unsafe fn op_regenerate(s: &Sessions, id: *const c_char) -> Result<*mut c_char> {
    let new = s.regenerate(c_id(id)?)?;
    malloc_string(new.as_bytes())
}

unsafe fn op_get_versioned(
    s: &Sessions,
    id: *const c_char,
    version: *mut c_ulonglong,
) -> Result<*mut c_char> {
    if version.is_null() {
        return Err(Error::invalid("version is NULL"));
    }
    let (data, v) = s.get_versioned(c_id(id)?)?;
    let data = malloc_string(&data)?;
    *version = v;
    Ok(data)
}

unsafe fn op_update_if(
    s: &Sessions,
    id: *const c_char,
    data: *const c_char,
    version: c_ulonglong,
) -> Result<c_int> {
    s.update_if(c_id(id)?, c_bytes(data, "data")?, version)
        .map(|()| 1)
}

/// A member's value, or NULL with no error when the member is absent.
unsafe fn op_get_value(s: &Sessions, id: *const c_char, key: *const c_char) -> Result<*mut c_char> {
    malloc_optional(s.get_value(c_id(id)?, c_bytes(key, "key")?)?)
}

unsafe fn op_set_value(
    s: &Sessions,
    id: *const c_char,
    key: *const c_char,
    value: *const c_char,
) -> Result<c_int> {
    let (id, key) = (c_id(id)?, c_bytes(key, "key")?);
    s.set_value(id, key, c_bytes(value, "json_value")?)
        .map(|()| 1)
}

unsafe fn op_delete_value(s: &Sessions, id: *const c_char, key: *const c_char) -> Result<c_int> {
    s.delete_value(c_id(id)?, c_bytes(key, "key")?).map(|()| 1)
}

unsafe fn op_pop_value(s: &Sessions, id: *const c_char, key: *const c_char) -> Result<*mut c_char> {
    malloc_optional(s.pop_value(c_id(id)?, c_bytes(key, "key")?)?)
}

/// A malloc'd copy of a value that may be absent: NULL (and no error) for `None`.
fn malloc_optional(value: Option<Vec<u8>>) -> Result<*mut c_char> {
    value.map_or(Ok(std::ptr::null_mut()), |v| malloc_string(&v))
}

fn op_count(s: &Sessions) -> Result<c_long> {
    s.count().map(c_long_of)
}

fn op_remove_expired(s: &Sessions) -> Result<c_long> {
    s.remove_expired().map(|n| c_long_of(n as u64))
}

unsafe fn op_destroy_owner(s: &Sessions, owner: *const c_char) -> Result<c_long> {
    s.destroy_owner(c_bytes(owner, "owner")?).map(c_long_of)
}

unsafe fn op_list_owner(s: &Sessions, owner: *const c_char) -> Result<*mut c_char> {
    let ids = s.list_owner(c_bytes(owner, "owner")?)?;
    let list: Vec<&str> = ids.iter().map(SessionId::as_str).collect();
    let json = serde_json::to_vec(&list)
        .map_err(|e| Error::new(SessionError::Internal, format!("cannot write JSON: {e}")))?;
    malloc_string(&json)
}

fn op_cache_stats(s: &Sessions) -> Result<*mut c_char> {
    let stats = s.store().cache_stats().ok_or_else(|| {
        Error::new(
            SessionError::InvalidArgument,
            format!(
                "store {:?} has no local cache (local_cache of the redis driver)",
                s.name()
            ),
        )
    })?;
    let json = serde_json::json!({
        "hits": stats.hits,
        "misses": stats.misses,
        "invalidations": stats.invalidations,
        "flushes": stats.flushes,
        "entries": stats.entries,
        "bytes": stats.bytes,
        "channel_up": stats.channel_up,
    });
    malloc_string(json.to_string().as_bytes())
}

unsafe fn op_count_owner(s: &Sessions, owner: *const c_char) -> Result<c_long> {
    s.count_owner(c_bytes(owner, "owner")?).map(c_long_of)
}

unsafe fn op_cookie_header(s: &Sessions, id: *const c_char) -> Result<*mut c_char> {
    malloc_string(s.cookie_header(c_id(id)?)?.as_bytes())
}

fn op_cookie_clear_header(s: &Sessions) -> Result<*mut c_char> {
    malloc_string(s.clear_cookie_header().as_bytes())
}

unsafe fn op_id_from_cookie_header(s: &Sessions, header: *const c_char) -> Result<*mut c_char> {
    let id = s.id_from_cookie_header(c_bytes(header, "cookie_header")?)?;
    malloc_string(id.as_bytes())
}

/// Creates a session holding `data` (usually JSON; any bytes up to the first NUL)
/// under a fresh id, in the default store. It ends `lifetime` seconds from now (or
/// earlier, after `idle_timeout` seconds without use).
///
/// Returns the new id, 64 lowercase hexadecimal characters, allocated with
/// `malloc`: the caller owns it and releases it with `free()`. Returns NULL on
/// failure (`data` NULL, larger than `max_data_size`, store full, store
/// unavailable); then `session_last_error()` says why.
///
/// Thread-safe. Never scans the store: its cost does not grow with the number of
/// stored sessions.
///
/// # Safety
/// `data` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_create(data: *const c_char) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_create(&*global::default_store()?, data)
    })
}

/// Like `session_create`, but the session's absolute lifetime is `ttl_seconds`,
/// from 1 to the store's `max_lifetime` (default: `lifetime`); anything else is
/// `SESSION_ERROR_INVALID_ARGUMENT`. Use it for "remember me" sessions.
///
/// # Safety
/// `data` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_create_ttl(
    data: *const c_char,
    ttl_seconds: c_long,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_create_ttl(&*global::default_store()?, data, ttl_seconds)
    })
}

/// Returns a copy of the data of session `session_id`.
///
/// The copy is allocated with `malloc`: the caller owns it and releases it with
/// `free()`. Returns NULL when the session does not exist, has ended or was
/// destroyed (`session_last_error_code()` is `SESSION_ERROR_NOT_FOUND`), when the
/// id is NULL or malformed (`SESSION_ERROR_INVALID_ARGUMENT`), when the store
/// fails (`SESSION_ERROR_STORAGE_UNAVAILABLE`, `SESSION_ERROR_TIMEOUT`), or, in a
/// store with a `secret`, when the stored data does not decrypt: changed,
/// truncated, copied from another id or sealed with a secret no longer configured
/// (`SESSION_ERROR_CORRUPT`; answer 401 as for a forged cookie).
///
/// With `idle_timeout`, a get moves the session's idle end to now + `idle_timeout`,
/// but writes only once more than 1% of `idle_timeout` has passed since the last
/// move: the idle end is exact to 1%.
///
/// Thread-safe. Never returns a half-written session. With Redis it blocks for a
/// time bounded by `connect_timeout_ms` and `command_timeout_ms`, never forever.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_get(session_id: *const c_char) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_get(&*global::default_store()?, session_id)
    })
}

/// Replaces the data of session `session_id` with `data`. The absolute end stays as
/// it was; the idle end moves to now + `idle_timeout`.
///
/// Returns non-zero on success. Returns 0 when the session does not exist, has
/// ended or was destroyed (it is never brought back), when `session_id` is the old
/// id of a regenerated session (read-only during `regenerate_grace`), or on error;
/// then `session_last_error()` says why. `data` is copied; the caller keeps
/// ownership.
///
/// Thread-safe. Concurrent updates of one session are serialised; a process killed
/// during an update leaves the old data or the new, never a mix.
///
/// # Safety
/// Each argument is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_update(session_id: *const c_char, data: *const c_char) -> c_int {
    boundary(0, || {
        op_update(&*global::default_store()?, session_id, data)
    })
}

/// Deletes session `session_id`.
///
/// Returns non-zero on success, also when the session was already gone. Returns 0
/// for a NULL or malformed id or a storage error; then `session_last_error()` says
/// why. Thread-safe.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_destroy(session_id: *const c_char) -> c_int {
    boundary(0, || op_destroy(&*global::default_store()?, session_id))
}

/// Moves the idle end of session `session_id` to now + `idle_timeout` (never past
/// its absolute end), always writing, unlike a get.
///
/// Returns non-zero for a live session, also when the store has no idle timeout
/// (nothing to move). Returns 0 when the session does not exist or has ended
/// (`SESSION_ERROR_NOT_FOUND`: it is never brought back), or on error.
/// Thread-safe.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_touch(session_id: *const c_char) -> c_int {
    boundary(0, || op_touch(&*global::default_store()?, session_id))
}

/// Seconds until session `session_id` ends: the earlier of its absolute end and
/// its idle end, rounded up (a live session reports at least 1). Reading it does
/// not move the idle end.
///
/// Returns -1 when the session does not exist or has ended
/// (`SESSION_ERROR_NOT_FOUND`), for a NULL or malformed id
/// (`SESSION_ERROR_INVALID_ARGUMENT`), or on a storage error. Thread-safe.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_ttl(session_id: *const c_char) -> c_long {
    boundary(-1, || op_ttl(&*global::default_store()?, session_id))
}

/// Returns 1 when session `session_id` is live, 0 otherwise:
/// `session_last_error_code()` then tells a missing session
/// (`SESSION_ERROR_NOT_FOUND`) from a malformed id or a store failure. Does not move
/// the idle end. Thread-safe.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_exists(session_id: *const c_char) -> c_int {
    boundary(0, || op_exists(&*global::default_store()?, session_id))
}

/// The number of live sessions in the default store, -1 on error.
///
/// Its cost grows with the store: the file driver lists the directory (one
/// `fstatat` per file), Redis `SCAN`s the key prefix 1,000 keys per round trip
/// (O(N) in the keys of the database), the memory driver walks its shards. Old ids
/// within their `regenerate_grace` count too. For dashboards, not per request.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn session_count() -> c_long {
    boundary(-1, || op_count(&*global::default_store()?))
}

/// Gives session `session_id` a fresh id, against session fixation: call it at
/// login and privilege changes, and send the new id in the cookie.
///
/// The new session holds the same data and the same absolute end, its idle window
/// restarted. The switch is atomic: no reader ever finds both ids live, nor
/// neither. The old id is gone at once, or with `regenerate_grace` stays readable
/// (read-only: an update on it returns 0) for that many seconds, so requests already
/// in flight with the old cookie still read the session.
///
/// Returns the new id, allocated with `malloc` (release it with `free()`), or NULL
/// when the session is missing or has ended (`SESSION_ERROR_NOT_FOUND`), the id is
/// NULL or malformed (`SESSION_ERROR_INVALID_ARGUMENT`), or on error. Thread-safe.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_regenerate(session_id: *const c_char) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_regenerate(&*global::default_store()?, session_id)
    })
}

/// Returns a copy of the data of session `session_id`, like `session_get`, and
/// stores its version in `*version`. Versions only grow: every change of the data
/// (update, update_if, set_value, delete_value, pop_value, regenerate) makes a
/// greater one; touch and reads do not. Pass the version to `session_update_if`.
///
/// The copy is allocated with `malloc`; release it with `free()`. Returns NULL as
/// `session_get` does, and for a NULL `version` (`SESSION_ERROR_INVALID_ARGUMENT`);
/// `*version` is written only on success. Thread-safe.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string; `version` is NULL or points to
/// writable memory.
#[no_mangle]
pub unsafe extern "C" fn session_get_versioned(
    session_id: *const c_char,
    version: *mut c_ulonglong,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_get_versioned(&*global::default_store()?, session_id, version)
    })
}

/// Compare-and-set: replaces the data of session `session_id` with `data` only
/// while its version is still `version` (from `session_get_versioned`), so that
/// concurrent requests never overwrite each other's changes without knowing.
///
/// Returns non-zero when it wrote. Returns 0 with `SESSION_ERROR_CONFLICT` when the
/// session changed since that read: read it again, apply the change again, retry.
/// Otherwise 0 as `session_update` does (missing, read-only, too large, store
/// error). Thread-safe.
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_update_if(
    session_id: *const c_char,
    data: *const c_char,
    version: c_ulonglong,
) -> c_int {
    boundary(0, || {
        op_update_if(&*global::default_store()?, session_id, data, version)
    })
}

/// The value of top-level member `key` of session `session_id`, whose data must be
/// a JSON object, as JSON text (`42`, `"alice"`, `[1,2]`, ...).
///
/// Returns a `malloc`'d string (release it with `free()`). Returns NULL with
/// `session_last_error_code()` == `SESSION_ERROR_OK` when the session has no such
/// member; NULL with an error code when the session is missing
/// (`SESSION_ERROR_NOT_FOUND`), its data is not a JSON object or the key is NULL
/// (`SESSION_ERROR_INVALID_ARGUMENT`), or the store fails. Moves the idle end like a
/// get. Thread-safe.
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_get_value(
    session_id: *const c_char,
    key: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_get_value(&*global::default_store()?, session_id, key)
    })
}

/// Sets top-level member `key` of session `session_id` to `json_value` (JSON text:
/// `"42"`, `""alice""`, `"[1,2]"`), adding it after the last member when it is
/// not there. One atomic read-modify-write in the store (files: under the session's
/// lock; memory: under its shard's lock; Redis: compare-and-set, retried), so
/// concurrent changes of other members are never lost. Members it does not touch
/// keep their bytes and their order.
///
/// Returns non-zero on success. Returns 0, leaving the data untouched, when
/// `json_value` is not valid JSON or the data is not a JSON object
/// (`SESSION_ERROR_INVALID_ARGUMENT`), the result is larger than `max_data_size`
/// (`SESSION_ERROR_TOO_LARGE`), the session is missing or read-only
/// (`SESSION_ERROR_NOT_FOUND`), or on a store error. Thread-safe.
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_set_value(
    session_id: *const c_char,
    key: *const c_char,
    json_value: *const c_char,
) -> c_int {
    boundary(0, || {
        op_set_value(&*global::default_store()?, session_id, key, json_value)
    })
}

/// Removes top-level member `key` of session `session_id`, atomically as
/// `session_set_value`. Returns non-zero on success, also when there was no such
/// member (nothing is written then); 0 on the errors of `session_set_value`.
/// Thread-safe.
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_delete_value(
    session_id: *const c_char,
    key: *const c_char,
) -> c_int {
    boundary(0, || {
        op_delete_value(&*global::default_store()?, session_id, key)
    })
}

/// Reads and removes top-level member `key` of session `session_id` in one atomic
/// step: a flash message is shown once, even when two requests race for it.
///
/// Returns the value as JSON text, `malloc`'d (release it with `free()`). Returns
/// NULL with `SESSION_ERROR_OK` when there was no such member, NULL with an error
/// code on the errors of `session_get_value`. Thread-safe.
///
/// # Safety
/// Each string is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_pop_value(
    session_id: *const c_char,
    key: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_pop_value(&*global::default_store()?, session_id, key)
    })
}

/// Ends every live session of `owner` in the default store ("log out
/// everywhere", after a password change): the sessions whose data has the store's
/// `owner_key` member equal to `owner` (a string as it is, a number as its JSON
/// text: owner "42" for `"user_id": 42`).
///
/// Returns how many sessions it ended (0 when the owner has none), -1 on error:
/// `SESSION_ERROR_CONFIG` when the store has no `owner_key`. Its cost grows with
/// the owner's sessions, not with the store's. Thread-safe.
///
/// # Safety
/// `owner` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_destroy_owner(owner: *const c_char) -> c_long {
    boundary(-1, || op_destroy_owner(&*global::default_store()?, owner))
}

/// The ids of the live sessions of `owner` (see `session_destroy_owner`) as a
/// JSON array of strings, the session that ends first first: `[]` when there are
/// none.
///
/// Returns a string from `malloc` (release it with `free()`), NULL on error.
/// Reading the list does not count as a use of the sessions: their idle ends stay.
///
/// # Safety
/// `owner` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_list_owner(owner: *const c_char) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_list_owner(&*global::default_store()?, owner)
    })
}

/// What the local read cache of the default store (the Redis driver's
/// `local_cache`) holds and did since the store opened (in this process), as a
/// JSON object: `{"hits": N, "misses": N, "invalidations": N, "flushes": N,
/// "entries": N, "bytes": N, "channel_up": true}`. `hits` and `misses` count the
/// gets answered from the cache and those that went to Redis; `invalidations` the
/// sessions dropped because Redis reported a change; `flushes` the times the
/// whole cache was emptied (a lost invalidation channel, FLUSHALL); `entries` and
/// `bytes` what it holds now; `channel_up` whether it is in use.
///
/// Returns a string from `malloc` (release it with `free()`), or NULL when the
/// store has no local cache (`SESSION_ERROR_INVALID_ARGUMENT`) or on error.
#[no_mangle]
pub extern "C" fn session_cache_stats() -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_cache_stats(&*global::default_store()?)
    })
}

/// How many live sessions `owner` has (see `session_destroy_owner`); -1 on error.
///
/// # Safety
/// `owner` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_count_owner(owner: *const c_char) -> c_long {
    boundary(-1, || op_count_owner(&*global::default_store()?, owner))
}

/// The value of a `Set-Cookie` header that gives the browser session
/// `session_id`, from the store's `"cookie"` configuration: for example
/// `session_id=ID; Max-Age=3600; Expires=...; Path=/; Secure; HttpOnly; SameSite=Lax`.
/// `Max-Age` and `Expires` come from `lifetime`; without them (`"persistent":
/// false`) it is a session cookie.
///
/// Returns a string from `malloc` (release it with `free()`); NULL with
/// `SESSION_ERROR_INVALID_ARGUMENT` when `session_id` is not well-formed. It does
/// not look the session up.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_cookie_header(session_id: *const c_char) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_cookie_header(&*global::default_store()?, session_id)
    })
}

/// The value of a `Set-Cookie` header that deletes the session cookie (send it
/// on logout): the cookie's name, `Path` and `Domain` with `Max-Age=0`.
///
/// Returns a string from `malloc` (release it with `free()`), NULL on error.
#[no_mangle]
pub extern "C" fn session_cookie_clear_header() -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_cookie_clear_header(&*global::default_store()?)
    })
}

/// Finds the session id in the value of a request's `Cookie:` header (a leading
/// `Cookie:` is skipped), per RFC 6265: pairs split at `;`, white space ignored,
/// a value in double quotes unquoted. With several cookies of the session
/// cookie's name, the first whose value is a well-formed id wins.
///
/// Returns the id (64 lowercase hex characters) from `malloc` (release it with
/// `free()`), or NULL with `SESSION_ERROR_NOT_FOUND` when the header holds no
/// well-formed session cookie: answer 401. It does not look the session up; pass
/// the id to `session_get`.
///
/// # Safety
/// `cookie_header` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_id_from_cookie_header(
    cookie_header: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_id_from_cookie_header(&*global::default_store()?, cookie_header)
    })
}

/// Generates a session id: 32 bytes from the operating system's CSPRNG as 64
/// lowercase hexadecimal characters. It stores nothing.
///
/// The id is allocated with `malloc`: the caller owns it and releases it with
/// `free()`. Returns NULL only if the OS random source fails.
///
/// Thread-safe; safe in forked children (no user-space random state).
#[no_mangle]
pub extern "C" fn session_create_id() -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        malloc_string(SessionId::generate()?.as_bytes())
    })
}

/// Deletes every ended session of the default store. Call it periodically (for
/// example once a minute from one worker); `session_create` never does this work
/// itself. Use `session_remove_expired_count` to learn how many went.
///
/// On failure `session_last_error()` says why. The file driver's cost grows with
/// the number of files, not their size (one `fstatat` per file, one `unlink` per
/// ended one); the memory driver walks its map. Redis expires sessions itself:
/// there it only drops owner-index entries past their bound (a `SCAN` of the
/// database, so its cost grows with the number of keys) and returns 0. Every
/// driver also drops the owner-index entries past their bound.
///
/// Thread-safe, and safe to run while other threads and processes use the store.
#[no_mangle]
pub extern "C" fn session_remove_expired() {
    boundary((), || {
        op_remove_expired(&*global::default_store()?).map(|_| ())
    })
}

/// Like `session_remove_expired`, and returns how many sessions it deleted, -1 on
/// error.
#[no_mangle]
pub extern "C" fn session_remove_expired_count() -> c_long {
    boundary(-1, || op_remove_expired(&*global::default_store()?))
}

/// Opens store `name` of the `config.json` file at `config_path` (NULL `name`: the
/// default store, the entry named "default" or the only one; a map of several
/// stores without a "default" entry opens only by name), independent of the global
/// configuration. The store is opened completely (with Redis: connected and
/// authenticated, unless `lazy_connect`).
///
/// Returns a new handle: release it with `session_store_close`. Returns NULL on
/// failure; `session_last_error()` names the bad key, the missing store or the
/// unreachable server. Thread-safe.
///
/// # Safety
/// `config_path` is NULL or a NUL-terminated string; `name` is NULL or a
/// NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_store_open(
    config_path: *const c_char,
    name: *const c_char,
) -> *mut SessionStore {
    boundary(std::ptr::null_mut(), || {
        let config = Config::from_file(c_path(config_path, "config_path")?)?;
        let sessions = Sessions::open_store(config.store(c_name(name)?)?)?;
        Ok(new_handle(Arc::new(sessions)))
    })
}

/// Like `session_store_open`, from JSON text in the `config.json` shape, for
/// example `{"sessions": {"driver": "memory"}}`.
///
/// # Safety
/// `json` is NULL or a NUL-terminated string; `name` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn session_store_open_json(
    json: *const c_char,
    name: *const c_char,
) -> *mut SessionStore {
    boundary(std::ptr::null_mut(), || {
        let config = Config::from_json(c_bytes(json, "json")?)?;
        let sessions = Sessions::open_store(config.store(c_name(name)?)?)?;
        Ok(new_handle(Arc::new(sessions)))
    })
}

/// A handle on store `name` of the global configuration (NULL: its default store),
/// configuring it first like any call if nothing was. The handle keeps that store
/// alive even after `session_init` or `session_shutdown` replaced the global
/// configuration.
///
/// Returns a new handle: release it with `session_store_close`. Returns NULL when
/// the configuration has no such store or cannot be loaded. Thread-safe.
///
/// # Safety
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_store(name: *const c_char) -> *mut SessionStore {
    boundary(std::ptr::null_mut(), || {
        Ok(new_handle(global::store(c_name(name)?)?))
    })
}

/// Releases a handle. The store closes (files and connections) when no handle and
/// no global configuration holds it any more. NULL is ignored. Call it once, after
/// every thread using the handle is done with it. It leaves the thread's last error
/// as it was.
///
/// # Safety
/// `store` is NULL or a handle not yet closed.
#[no_mangle]
pub unsafe extern "C" fn session_store_close(store: *mut SessionStore) {
    // Leaves the thread's last error alone, like session_free.
    no_panic((), || {
        if !store.is_null() {
            drop(Box::from_raw(store));
        }
    })
}

/// `session_create` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `data` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_store_create(
    store: *const SessionStore,
    data: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || op_create(store_ref(store)?, data))
}

/// `session_create_ttl` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `data` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_store_create_ttl(
    store: *const SessionStore,
    data: *const c_char,
    ttl_seconds: c_long,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_create_ttl(store_ref(store)?, data, ttl_seconds)
    })
}

/// `session_get` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `session_id` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn session_store_get(
    store: *const SessionStore,
    session_id: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_get(store_ref(store)?, session_id)
    })
}

/// `session_update` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_update(
    store: *const SessionStore,
    session_id: *const c_char,
    data: *const c_char,
) -> c_int {
    boundary(0, || op_update(store_ref(store)?, session_id, data))
}

/// `session_destroy` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `session_id` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn session_store_destroy(
    store: *const SessionStore,
    session_id: *const c_char,
) -> c_int {
    boundary(0, || op_destroy(store_ref(store)?, session_id))
}

/// `session_remove_expired_count` on `store`: how many sessions it deleted, -1 on
/// error.
///
/// # Safety
/// `store` is NULL or an open handle.
#[no_mangle]
pub unsafe extern "C" fn session_store_remove_expired(store: *const SessionStore) -> c_long {
    boundary(-1, || op_remove_expired(store_ref(store)?))
}

/// `session_touch` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `session_id` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn session_store_touch(
    store: *const SessionStore,
    session_id: *const c_char,
) -> c_int {
    boundary(0, || op_touch(store_ref(store)?, session_id))
}

/// `session_ttl` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `session_id` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn session_store_ttl(
    store: *const SessionStore,
    session_id: *const c_char,
) -> c_long {
    boundary(-1, || op_ttl(store_ref(store)?, session_id))
}

/// `session_exists` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `session_id` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn session_store_exists(
    store: *const SessionStore,
    session_id: *const c_char,
) -> c_int {
    boundary(0, || op_exists(store_ref(store)?, session_id))
}

/// `session_count` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle.
#[no_mangle]
pub unsafe extern "C" fn session_store_count(store: *const SessionStore) -> c_long {
    boundary(-1, || op_count(store_ref(store)?))
}

/// `session_regenerate` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `session_id` is NULL or a NUL-terminated
/// string.
#[no_mangle]
pub unsafe extern "C" fn session_store_regenerate(
    store: *const SessionStore,
    session_id: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_regenerate(store_ref(store)?, session_id)
    })
}

/// `session_get_versioned` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `session_id` is NULL or a NUL-terminated
/// string; `version` is NULL or points to writable memory.
#[no_mangle]
pub unsafe extern "C" fn session_store_get_versioned(
    store: *const SessionStore,
    session_id: *const c_char,
    version: *mut c_ulonglong,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_get_versioned(store_ref(store)?, session_id, version)
    })
}

/// `session_update_if` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_update_if(
    store: *const SessionStore,
    session_id: *const c_char,
    data: *const c_char,
    version: c_ulonglong,
) -> c_int {
    boundary(0, || {
        op_update_if(store_ref(store)?, session_id, data, version)
    })
}

/// `session_get_value` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_get_value(
    store: *const SessionStore,
    session_id: *const c_char,
    key: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_get_value(store_ref(store)?, session_id, key)
    })
}

/// `session_set_value` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_set_value(
    store: *const SessionStore,
    session_id: *const c_char,
    key: *const c_char,
    json_value: *const c_char,
) -> c_int {
    boundary(0, || {
        op_set_value(store_ref(store)?, session_id, key, json_value)
    })
}

/// `session_delete_value` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_delete_value(
    store: *const SessionStore,
    session_id: *const c_char,
    key: *const c_char,
) -> c_int {
    boundary(0, || op_delete_value(store_ref(store)?, session_id, key))
}

/// `session_pop_value` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; the strings are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_pop_value(
    store: *const SessionStore,
    session_id: *const c_char,
    key: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_pop_value(store_ref(store)?, session_id, key)
    })
}

/// `session_destroy_owner` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `owner` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_destroy_owner(
    store: *const SessionStore,
    owner: *const c_char,
) -> c_long {
    boundary(-1, || op_destroy_owner(store_ref(store)?, owner))
}

/// `session_list_owner` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `owner` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_list_owner(
    store: *const SessionStore,
    owner: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_list_owner(store_ref(store)?, owner)
    })
}

/// `session_cache_stats` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle.
#[no_mangle]
pub unsafe extern "C" fn session_store_cache_stats(store: *const SessionStore) -> *mut c_char {
    boundary(std::ptr::null_mut(), || op_cache_stats(store_ref(store)?))
}

/// `session_count_owner` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle; `owner` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_count_owner(
    store: *const SessionStore,
    owner: *const c_char,
) -> c_long {
    boundary(-1, || op_count_owner(store_ref(store)?, owner))
}

/// `session_cookie_header` on `store` (its `"cookie"` configuration).
///
/// # Safety
/// `store` is NULL or an open handle; `session_id` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_cookie_header(
    store: *const SessionStore,
    session_id: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_cookie_header(store_ref(store)?, session_id)
    })
}

/// `session_cookie_clear_header` on `store`.
///
/// # Safety
/// `store` is NULL or an open handle.
#[no_mangle]
pub unsafe extern "C" fn session_store_cookie_clear_header(
    store: *const SessionStore,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_cookie_clear_header(store_ref(store)?)
    })
}

/// `session_id_from_cookie_header` on `store` (its cookie name).
///
/// # Safety
/// `store` is NULL or an open handle; `cookie_header` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn session_store_id_from_cookie_header(
    store: *const SessionStore,
    cookie_header: *const c_char,
) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        op_id_from_cookie_header(store_ref(store)?, cookie_header)
    })
}

/// Frees a string returned by libsession. Equivalent to `free()`, for callers
/// (FFI from other languages) that cannot reach the C allocator. NULL is ignored.
/// It leaves the thread's last error as it was.
///
/// # Safety
/// `ptr` is NULL or a string returned by libsession and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn session_free(ptr: *mut c_void) {
    // Leaves the thread's last error alone: freeing a result before reading the
    // error of the call that failed must not lose it.
    no_panic((), || libc::free(ptr))
}

/// Configures libsession (the global configuration behind the functions without a
/// handle) from the `config.json` file at `config_path`. Every store it names is
/// opened (with Redis: connected and authenticated, unless `lazy_connect`). With a
/// map of several stores, one must be named "default": it serves the functions
/// without a handle.
///
/// Returns non-zero on success. On failure returns 0, keeps the previous working
/// configuration (nothing is half-applied), and `session_last_error()` names the
/// bad key and value. When no configuration was ever applied, calls then fail with
/// `SESSION_ERROR_CONFIG` and this message until an init succeeds: a failed init
/// never falls back to the embedded default. Optional: without any init, the first
/// call configures from the file named by the `SESSION_CONFIG` environment
/// variable, or else uses the embedded default (files in `./sessions`, lifetime
/// 3600 s).
///
/// Thread-safe: calls in flight finish on the store they started with, which lives
/// until they and every handle on it are done.
///
/// # Safety
/// `config_path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_init(config_path: *const c_char) -> c_int {
    boundary(0, || {
        let path = c_path(config_path, "config_path")?;
        global::init(Config::from_file(path))?;
        Ok(1)
    })
}

/// Configures libsession from JSON text in the `config.json` shape, for example
/// `{"sessions": {"driver": "memory", "lifetime": 3600}}`.
///
/// Returns non-zero on success; on failure 0, as `session_init`. Thread-safe.
///
/// # Safety
/// `json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_init_json(json: *const c_char) -> c_int {
    boundary(0, || {
        let json = c_bytes(json, "json")?;
        global::init(Config::from_json(json))?;
        Ok(1)
    })
}

/// Lets go of the global configuration's stores and the calling thread's last
/// error. Each store closes once no handle holds it. A later call initialises
/// again. Call it once at exit. Thread-safe.
#[no_mangle]
pub extern "C" fn session_shutdown() {
    boundary((), || {
        global::shutdown();
        Ok(())
    })
}

/// Describes the last failure of a libsession call on the calling thread, or NULL
/// when the last call succeeded.
///
/// The string belongs to libsession: do not free it. It stays valid until the next
/// libsession call on the same thread. Messages never contain session data.
#[no_mangle]
pub extern "C" fn session_last_error() -> *const c_char {
    no_panic(std::ptr::null(), || {
        LAST_ERROR
            .try_with(|slot| match slot.try_borrow() {
                Ok(slot) => slot.as_ref().map_or(std::ptr::null(), |(_, m)| m.as_ptr()),
                Err(_) => std::ptr::null(),
            })
            .unwrap_or(std::ptr::null())
    })
}

/// The code of the last failure on the calling thread, a `session_error` value:
/// `SESSION_ERROR_OK` (0) when the last call succeeded. Use it after NULL or 0 to
/// tell "no such session" (`SESSION_ERROR_NOT_FOUND`: answer 401) from "the store
/// is down" (`SESSION_ERROR_STORAGE_UNAVAILABLE`, `SESSION_ERROR_TIMEOUT`: 503).
#[no_mangle]
pub extern "C" fn session_last_error_code() -> c_int {
    let internal = SessionError::Internal as c_int;
    no_panic(internal, || {
        LAST_ERROR
            .try_with(|slot| match slot.try_borrow() {
                Ok(slot) => slot.as_ref().map_or(0, |(code, _)| *code as c_int),
                Err(_) => internal,
            })
            .unwrap_or(internal)
    })
}

/// The library version, `"MAJOR.MINOR.PATCH"`, equal to `LIBSESSION_VERSION` in
/// this header when header and library match. Static: do not free it.
#[no_mangle]
pub extern "C" fn session_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    no_panic(std::ptr::null(), || VERSION.as_ptr().cast())
}
