//! Errors of the core, and the stable codes the C API reports for them.

use std::fmt;
use std::io;

/// Why a call failed. The numbers are part of the ABI: never change or reuse one.
///
/// Read it with `session_last_error_code()` after a call returned NULL or 0: a server
/// answers 401 for `SESSION_ERROR_NOT_FOUND` but 503 for
/// `SESSION_ERROR_STORAGE_UNAVAILABLE` or `SESSION_ERROR_TIMEOUT`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionError {
    /// The last call on this thread succeeded.
    Ok = 0,
    /// No such session, or it has expired or been destroyed.
    NotFound = 1,
    /// A NULL pointer or a malformed argument (for example a session id that is not
    /// 64 lowercase hexadecimal characters).
    InvalidArgument = 2,
    /// The data is larger than the configured `max_data_size`.
    TooLarge = 3,
    /// The store could not be reached or written (I/O error, disk full, server down).
    StorageUnavailable = 4,
    /// The store did not answer in time.
    Timeout = 5,
    /// The configuration is invalid; the message names the key and the value.
    Config = 6,
    /// A bug in libsession (a caught panic, for example).
    Internal = 7,
    /// The store holds its `max_sessions` live sessions: no session was created.
    Full = 8,
    /// `session_update_if`: the session changed since it was read (its version is
    /// newer). Read it again and retry.
    Conflict = 9,
    /// The stored session does not decrypt: changed, truncated, copied from another
    /// id, or sealed with a secret that is no longer configured. Treat it as a
    /// forged session (401), not as an outage.
    Corrupt = 10,
}

impl SessionError {
    /// The code for an integer, `Internal` for numbers no version has used.
    pub fn from_code(code: i32) -> SessionError {
        match code {
            0 => SessionError::Ok,
            1 => SessionError::NotFound,
            2 => SessionError::InvalidArgument,
            3 => SessionError::TooLarge,
            4 => SessionError::StorageUnavailable,
            5 => SessionError::Timeout,
            6 => SessionError::Config,
            8 => SessionError::Full,
            9 => SessionError::Conflict,
            10 => SessionError::Corrupt,
            _ => SessionError::Internal,
        }
    }
}

/// An error of the core: a code and a message for humans (never session data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: SessionError,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: SessionError, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
        }
    }

    pub fn not_found() -> Error {
        Error::new(
            SessionError::NotFound,
            "session not found (never created, expired or destroyed)",
        )
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(SessionError::InvalidArgument, message)
    }

    pub fn config(message: impl Into<String>) -> Error {
        Error::new(SessionError::Config, message)
    }

    /// An I/O error of a store, with what was being done.
    pub fn io(what: &str, err: io::Error) -> Error {
        let code = match err.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => SessionError::Timeout,
            _ => SessionError::StorageUnavailable,
        };
        Error::new(code, format!("{what}: {err}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    /// An I/O error of a store that timed out (`ETIMEDOUT`, such as a storage root
    /// on a network file system that stops answering, or `EAGAIN`) is
    /// `SESSION_ERROR_TIMEOUT`, "the store did not answer in time"; every other
    /// I/O error is `SESSION_ERROR_STORAGE_UNAVAILABLE`. The message says what was
    /// being done.
    #[test]
    fn io_errors_that_timed_out_are_timeouts() {
        for (kind, code) in [
            (io::ErrorKind::TimedOut, SessionError::Timeout),
            (io::ErrorKind::WouldBlock, SessionError::Timeout),
            (
                io::ErrorKind::PermissionDenied,
                SessionError::StorageUnavailable,
            ),
            (io::ErrorKind::NotFound, SessionError::StorageUnavailable),
        ] {
            let err = Error::io("session directory /x: write", io::Error::from(kind));
            assert_eq!(err.code, code, "{kind:?}");
            assert!(
                err.message.starts_with("session directory /x: write: "),
                "{}",
                err.message
            );
        }
    }
}
