//! Calling the C API from Rust tests as a C caller would: C strings in, malloc'd
//! strings out, the thread's last error.

#![allow(dead_code)]

use session::ffi::{session_last_error, session_last_error_code};
use session::SessionError;
use std::ffi::{c_char, CStr, CString};

pub fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

/// The calling thread's last error: its code and message ("" for none).
pub fn last_error() -> (SessionError, String) {
    let code = SessionError::from_code(session_last_error_code());
    let message = session_last_error();
    let message = if message.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    };
    (code, message)
}

/// Takes a malloc'd string from the library and frees it with `free()`.
pub fn take(ptr: *mut c_char) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes().to_vec();
    unsafe { libc::free(ptr.cast()) };
    Some(bytes)
}
