"""The error codes of session.h and one exception class per code."""

import enum


class ErrorCode(enum.IntEnum):
    """`session_error` of session.h. The numbers are stable."""

    OK = 0
    NOT_FOUND = 1
    INVALID_ARGUMENT = 2
    TOO_LARGE = 3
    STORAGE_UNAVAILABLE = 4
    TIMEOUT = 5
    CONFIG = 6
    INTERNAL = 7
    FULL = 8
    CONFLICT = 9
    CORRUPT = 10


class SessionError(Exception):
    """A libsession call failed.

    `code` is the C error code (an ErrorCode, or a plain int for a code newer than
    these bindings) and `message` the library's message (also `str(error)`).
    """

    code = ErrorCode.INTERNAL

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __repr__(self):
        return f"{type(self).__name__}({self.message!r}, code={int(self.code)})"


class NotFound(SessionError):
    """SESSION_ERROR_NOT_FOUND: no such session (never created, ended, destroyed,
    regenerated away, or the read-only old id of a regenerate). Answer 401."""

    code = ErrorCode.NOT_FOUND


class InvalidArgument(SessionError):
    """SESSION_ERROR_INVALID_ARGUMENT: a malformed id (a forged cookie: answer 401),
    invalid JSON, data that is not a JSON object for a per-key call, a value out of
    range, a NUL byte inside a string, or a closed Store."""

    code = ErrorCode.INVALID_ARGUMENT


class TooLarge(SessionError):
    """SESSION_ERROR_TOO_LARGE: the data is larger than max_data_size."""

    code = ErrorCode.TOO_LARGE


class Unavailable(SessionError):
    """SESSION_ERROR_STORAGE_UNAVAILABLE: I/O error, disk full, Redis down. 503."""

    code = ErrorCode.STORAGE_UNAVAILABLE


class Timeout(SessionError):
    """SESSION_ERROR_TIMEOUT: the store did not answer in time. 503."""

    code = ErrorCode.TIMEOUT


class ConfigError(SessionError):
    """SESSION_ERROR_CONFIG: bad configuration (the message names the key), no
    successful init, or an owner call on a store without owner_key."""

    code = ErrorCode.CONFIG


class Internal(SessionError):
    """SESSION_ERROR_INTERNAL: a bug in libsession."""

    code = ErrorCode.INTERNAL


class Full(SessionError):
    """SESSION_ERROR_FULL: the memory store holds max_sessions live sessions."""

    code = ErrorCode.FULL


class Conflict(SessionError):
    """SESSION_ERROR_CONFLICT: update_if lost the race; read again and retry."""

    code = ErrorCode.CONFLICT


class Corrupt(SessionError):
    """SESSION_ERROR_CORRUPT: the stored session was tampered with or damaged (or
    sealed with a secret no longer configured). Answer 401, and log it."""

    code = ErrorCode.CORRUPT


_BY_CODE = {
    cls.code: cls
    for cls in (
        NotFound,
        InvalidArgument,
        TooLarge,
        Unavailable,
        Timeout,
        ConfigError,
        Internal,
        Full,
        Conflict,
        Corrupt,
    )
}


def error_for(code, message):
    """The exception for a C error code (SessionError itself for an unknown one)."""
    try:
        code = ErrorCode(code)
    except ValueError:
        return SessionError(message, code)
    cls = _BY_CODE.get(code)
    if cls is None:  # OK: a failure the library did not explain
        return Internal(message or "libsession failed without an error code")
    return cls(message)
