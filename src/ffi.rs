//! The C API: argument checks, the panic boundary, malloc'd strings and the
//! thread's last error, over [`crate::sessions::Sessions`]. Nothing here knows how
//! sessions are stored.
//!
//! Every export runs its body through [`boundary`], which catches panics and records
//! failures; `tests/ffi_boundary.rs` checks that no export skips it.

use crate::config::Config;
use crate::error::{Error, Result, SessionError};
use crate::global;
use crate::id::{SessionId, ID_LEN};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

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

/// Creates a session holding `data` (usually JSON; any bytes up to the first NUL)
/// under a fresh id. It expires `lifetime` seconds from now.
///
/// Returns the new id, 64 lowercase hexadecimal characters, allocated with
/// `malloc`: the caller owns it and releases it with `free()`. Returns NULL on
/// failure (`data` NULL, larger than `max_data_size`, store unavailable); then
/// `session_last_error()` says why.
///
/// Thread-safe. Never scans the store: its cost does not grow with the number of
/// stored sessions.
///
/// # Safety
/// `data` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_create(data: *const c_char) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        let data = c_bytes(data, "data")?;
        let id = global::with(|s| s.create(data))?;
        malloc_string(id.as_bytes())
    })
}

/// Returns a copy of the data of session `session_id`.
///
/// The copy is allocated with `malloc`: the caller owns it and releases it with
/// `free()`. Returns NULL when the session does not exist, has expired or was
/// destroyed (`session_last_error_code()` is `SESSION_ERROR_NOT_FOUND`), when the
/// id is NULL or malformed (`SESSION_ERROR_INVALID_ARGUMENT`), or when the store
/// fails (`SESSION_ERROR_STORAGE_UNAVAILABLE`, `SESSION_ERROR_TIMEOUT`).
///
/// Thread-safe. Never returns a half-written session. With Redis it blocks for a
/// time bounded by `connect_timeout_ms` and `command_timeout_ms`, never forever.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_get(session_id: *const c_char) -> *mut c_char {
    boundary(std::ptr::null_mut(), || {
        let id = c_id(session_id)?;
        let data = global::with(|s| s.get(id))?;
        malloc_string(&data)
    })
}

/// Replaces the data of session `session_id` with `data`; the expiry stays as it was.
///
/// Returns non-zero on success. Returns 0 when the session does not exist, has
/// expired or was destroyed (it is never brought back), or on error; then
/// `session_last_error()` says why. `data` is copied; the caller keeps ownership.
///
/// Thread-safe. Concurrent updates of one session are serialised; a process killed
/// during an update leaves the old data or the new, never a mix.
///
/// # Safety
/// Each argument is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_update(session_id: *const c_char, data: *const c_char) -> c_int {
    boundary(0, || {
        let id = c_id(session_id)?;
        let data = c_bytes(data, "data")?;
        global::with(|s| s.update(id, data))?;
        Ok(1)
    })
}

/// Deletes session `session_id`.
///
/// Returns non-zero on success, also when the session was already gone. Returns 0
/// for a NULL or malformed id or a storage error; then `session_last_error()` says
/// why.
///
/// Thread-safe.
///
/// # Safety
/// `session_id` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_destroy(session_id: *const c_char) -> c_int {
    boundary(0, || {
        let id = c_id(session_id)?;
        global::with(|s| s.destroy(id))?;
        Ok(1)
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

/// Deletes every expired session of the store. Call it periodically (for example
/// once a minute from one worker); `session_create` never does this work itself.
///
/// On failure `session_last_error()` says why. The file driver's cost grows with
/// the number of files, not their size; the memory driver walks its map; with
/// Redis it returns at once (Redis expires keys itself).
///
/// Thread-safe, and safe to run while other threads and processes use the store.
#[no_mangle]
pub extern "C" fn session_remove_expired() {
    boundary((), || global::with(|s| s.remove_expired()).map(|_| ()))
}

/// Frees a string returned by libsession. Equivalent to `free()`, for callers
/// (FFI from other languages) that cannot reach the C allocator. NULL is ignored.
///
/// # Safety
/// `ptr` is NULL or a string returned by libsession and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn session_free(ptr: *mut c_void) {
    boundary((), || {
        libc::free(ptr);
        Ok(())
    })
}

/// Configures libsession from the `config.json` file at `config_path`.
///
/// Returns non-zero on success. On failure returns 0, keeps the previous
/// configuration (nothing is half-applied), and `session_last_error()` names the
/// bad key and value. Optional: without it, the first call configures from the
/// file named by the `SESSION_CONFIG` environment variable, or else uses the
/// embedded default (files in `./sessions`, lifetime 3600 s).
///
/// Thread-safe: calls in flight finish on the old store first.
///
/// # Safety
/// `config_path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_init(config_path: *const c_char) -> c_int {
    boundary(0, || {
        let path = c_bytes(config_path, "config_path")?;
        let path = std::path::Path::new(
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path),
        );
        global::init(&Config::from_file(path)?)?;
        Ok(1)
    })
}

/// Configures libsession from JSON text in the `config.json` shape, for example
/// `{"sessions": {"driver": "memory", "lifetime": 3600}}`.
///
/// Returns non-zero on success; on failure 0, the previous configuration stays, and
/// `session_last_error()` names the bad key and value. Thread-safe.
///
/// # Safety
/// `json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn session_init_json(json: *const c_char) -> c_int {
    boundary(0, || {
        let json = c_bytes(json, "json")?;
        global::init(&Config::from_json(json)?)?;
        Ok(1)
    })
}

/// Closes the store and frees everything libsession holds, including the calling
/// thread's last error. A later call initialises again. Call it once at exit, when
/// no other thread uses libsession. Thread-safe: waits for calls in flight.
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
