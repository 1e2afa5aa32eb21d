"""Server-side HTTP sessions: Python bindings (ctypes) for the libsession C library.

Loading: the library named by $LIBSESSION_LIBRARY (a path) if set, else
libsession.so.0 through the dynamic loader (rpath, LD_LIBRARY_PATH, ldconfig).
Importing fails with ImportError naming both when neither loads.

    import libsession

    with libsession.Store.from_json('{"sessions": {"driver": "memory"}}') as store:
        sid = store.create('{"user_id": 42}')
        store.set_value(sid, "cart", "[1, 2]")
        store.get(sid)                   # '{"user_id": 42,"cart":[1, 2]}'
        store.get_value(sid, "user_id")  # '42' (JSON text)

Types. Arguments are str (sent as UTF-8) or bytes. Results are str: ids, data,
JSON values, cookie headers; data that is not UTF-8 comes back with
surrogateescape characters, so passing that str back stores the same bytes;
get_bytes / get_versioned_bytes return the data as bytes. Counts and ttl are int,
exists is bool, list_owner a list of str ids, get_versioned (data, version),
cache_stats a dict (the Redis local_cache's counters; InvalidArgument without one).

Errors. A missing session is None from get, get_bytes, get_value, pop_value,
get_versioned(_bytes), ttl and id_from_cookie_header (get_value and pop_value also
give None for an absent member); exists gives False. Every other failure raises a
subclass of SessionError carrying .code (ErrorCode) and .message: NotFound,
InvalidArgument, TooLarge, Unavailable, Timeout, ConfigError, Internal, Full,
Conflict, Corrupt. The code is read right after the failing call, on the calling
thread. update, touch, regenerate, update_if and the per-key writes of a missing
session raise NotFound; a malformed id raises InvalidArgument everywhere.

Stores. Store.from_json(text, name=None), Store.from_file(path, name=None) and
Store.named(name=None) return a Store (a context manager; close() is idempotent,
and calls on a closed Store raise InvalidArgument). `libsession.default` has the
same methods on the global configuration's default store (session_create, ...),
which init(path) / init_json(text) configure and shutdown() releases.
"""

from ._errors import (
    ConfigError,
    Conflict,
    Corrupt,
    ErrorCode,
    Full,
    Internal,
    InvalidArgument,
    NotFound,
    SessionError,
    Timeout,
    TooLarge,
    Unavailable,
)
from ._ffi import ENV, FUNCTIONS, SONAME, lib, library_path
from ._api import (
    DefaultStore,
    Store,
    create_id,
    default,
    init,
    init_json,
    last_error,
    last_error_code,
    remove_expired,
    shutdown,
    version,
)

__version__ = "0.2.0"

#: Length of a session id: 64 lowercase hexadecimal characters.
ID_LEN = 64

__all__ = [
    "ConfigError",
    "Conflict",
    "Corrupt",
    "DefaultStore",
    "ENV",
    "ErrorCode",
    "FUNCTIONS",
    "Full",
    "ID_LEN",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "SONAME",
    "SessionError",
    "Store",
    "Timeout",
    "TooLarge",
    "Unavailable",
    "create_id",
    "default",
    "init",
    "init_json",
    "last_error",
    "last_error_code",
    "lib",
    "library_path",
    "remove_expired",
    "shutdown",
    "version",
]
