"""The Python API over the C functions: Store, the default store, module functions."""

import ctypes
import json
import operator
import os
import threading
import weakref

from . import _errors
from ._errors import ErrorCode, InvalidArgument
from ._ffi import FUNCTIONS, lib

_LONG_BITS = ctypes.sizeof(ctypes.c_long) * 8
_LONG_MIN, _LONG_MAX = -(1 << (_LONG_BITS - 1)), (1 << (_LONG_BITS - 1)) - 1
_U64_MAX = (1 << 64) - 1

# How a C function reports failure.
_PTR = 0  # NULL
_ZERO = 1  # 0
_NEG = 2  # -1 (any negative)
_VOID = 3  # only through session_last_error_code()

_free = lib.session_free
_last_code = lib.session_last_error_code
_last_message = lib.session_last_error


def _outcome(result, fail):
    """(result, code, message): code 0 and message None when the call succeeded.

    Reads the thread's last error at once, before any other libsession call on
    this thread could replace it (session_free and session_store_close keep it)."""
    if fail == _PTR:
        failed = not result
    elif fail == _ZERO:
        failed = result == 0
    elif fail == _NEG:
        failed = result < 0
    else:
        failed = True
    if not failed:
        return result, 0, None
    code = _last_code()
    if code == 0:
        return result, 0, None
    ptr = _last_message()
    message = ctypes.string_at(ptr).decode("utf-8", "replace") if ptr else ""
    return result, code, message


# The C functions by name, looked up once.
_FN = {name: getattr(lib, name) for name in FUNCTIONS}


def _global(name, fail, *args):
    return _outcome(_FN[name](*args), fail)


def _take(ptr):
    """The bytes of a string the library returned, which it then frees."""
    try:
        return ctypes.string_at(ptr)
    finally:
        _free(ptr)


def _text(data):
    """Library bytes as str: UTF-8, with undecodable bytes kept by surrogateescape
    (so that str passed back in round-trips byte for byte)."""
    return data.decode("utf-8", "surrogateescape")


def _arg(value, what):
    """A str or bytes argument as the bytes C gets (UTF-8 for str)."""
    if isinstance(value, str):
        data = value.encode("utf-8", "surrogateescape")
    elif isinstance(value, bytes):
        data = value
    elif isinstance(value, (bytearray, memoryview)):
        data = bytes(value)
    else:
        raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")
    if b"\0" in data:
        raise InvalidArgument(f"{what} contains a NUL byte (C strings end at the first NUL)")
    return data


def _opt_arg(value, what):
    return None if value is None else _arg(value, what)


def _path(value, what="path"):
    data = os.fsencode(os.fspath(value))
    if b"\0" in data:
        raise InvalidArgument(f"{what} contains a NUL byte")
    return data


def _fail(code, message):
    return _errors.error_for(code, message)


class _Api:
    """The session calls, shared by Store (a handle) and `default` (the global
    configuration's default store). Subclasses define _call(name, fail, *args)."""

    __slots__ = ()

    def _call(self, name, fail, *args):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- results --------------------------------------------------------------

    def _string(self, name, *args, none_for=()):
        ptr, code, message = self._call(name, _PTR, *args)
        if ptr:
            return _take(ptr)
        if code in none_for:
            return None
        raise _fail(code, message)

    def _ok(self, name, *args):
        result, code, message = self._call(name, _ZERO, *args)
        if result == 0:
            raise _fail(code, message)

    def _count(self, name, *args, none_for=()):
        result, code, message = self._call(name, _NEG, *args)
        if result >= 0:
            return result
        if code in none_for:
            return None
        raise _fail(code, message)

    # -- the calls ---------------------------------------------------------------

    def create(self, data, ttl=None):
        """A new session holding `data` (str or bytes); returns its id (str).

        ttl=None: the store's `lifetime`; else the session's lifetime in seconds,
        1 to the store's `max_lifetime` (session_create_ttl)."""
        data = _arg(data, "data")
        if ttl is None:
            return _text(self._string("create", data))
        ttl = operator.index(ttl)
        if not _LONG_MIN <= ttl <= _LONG_MAX:
            raise InvalidArgument(f"ttl {ttl} does not fit in a C long")
        return _text(self._string("create_ttl", data, ttl))

    def get(self, session_id):
        """The session's data as str, or None when there is no such session.

        Bytes that are not UTF-8 come back as surrogateescape characters (pass
        the str back and the bytes are unchanged); get_bytes returns bytes."""
        data = self.get_bytes(session_id)
        return None if data is None else _text(data)

    def get_bytes(self, session_id):
        """The session's data as bytes, or None when there is no such session."""
        return self._string(
            "get", _arg(session_id, "session_id"), none_for=(ErrorCode.NOT_FOUND,)
        )

    def update(self, session_id, data):
        """Replaces the data; raises NotFound when the session is gone."""
        self._ok("update", _arg(session_id, "session_id"), _arg(data, "data"))

    def destroy(self, session_id):
        """Deletes the session (no error when it was already gone)."""
        self._ok("destroy", _arg(session_id, "session_id"))

    def regenerate(self, session_id):
        """Moves the session to a fresh id and returns it (str); NotFound when gone."""
        return _text(self._string("regenerate", _arg(session_id, "session_id")))

    def touch(self, session_id):
        """Moves the idle end; raises NotFound when the session is gone."""
        self._ok("touch", _arg(session_id, "session_id"))

    def ttl(self, session_id):
        """Seconds until the session ends (int, at least 1), None when it is gone."""
        return self._count(
            "ttl", _arg(session_id, "session_id"), none_for=(ErrorCode.NOT_FOUND,)
        )

    def exists(self, session_id):
        """True for a live session, False for a missing one (does not move the
        idle end). A malformed id or a store failure raises."""
        result, code, message = self._call("exists", _ZERO, _arg(session_id, "session_id"))
        if result:
            return True
        if code == ErrorCode.NOT_FOUND:
            return False
        raise _fail(code, message)

    def count(self):
        """The number of live sessions (O(N): for dashboards)."""
        return self._count("count")

    def remove_expired(self):
        """Deletes the ended sessions; returns how many (Redis: 0)."""
        return self._count("remove_expired")

    def get_value(self, session_id, key):
        """Member `key` of the session's JSON object as JSON text (str), or None
        when the member or the session is missing."""
        value = self._string(
            "get_value",
            _arg(session_id, "session_id"),
            _arg(key, "key"),
            none_for=(ErrorCode.OK, ErrorCode.NOT_FOUND),
        )
        return None if value is None else _text(value)

    def set_value(self, session_id, key, json_value):
        """Sets member `key` to `json_value` (JSON text, str or bytes) atomically."""
        self._ok(
            "set_value",
            _arg(session_id, "session_id"),
            _arg(key, "key"),
            _arg(json_value, "json_value"),
        )

    def delete_value(self, session_id, key):
        """Removes member `key` atomically (no error when it is absent)."""
        self._ok("delete_value", _arg(session_id, "session_id"), _arg(key, "key"))

    def pop_value(self, session_id, key):
        """Reads and removes member `key` in one step: its JSON text (str), or None
        when the member or the session is missing."""
        value = self._string(
            "pop_value",
            _arg(session_id, "session_id"),
            _arg(key, "key"),
            none_for=(ErrorCode.OK, ErrorCode.NOT_FOUND),
        )
        return None if value is None else _text(value)

    def get_versioned(self, session_id):
        """(data as str, version as int), or None when there is no such session."""
        got = self.get_versioned_bytes(session_id)
        return None if got is None else (_text(got[0]), got[1])

    def get_versioned_bytes(self, session_id):
        """(data as bytes, version as int), or None when there is no such session."""
        version = ctypes.c_ulonglong()
        data = self._string(
            "get_versioned",
            _arg(session_id, "session_id"),
            ctypes.byref(version),
            none_for=(ErrorCode.NOT_FOUND,),
        )
        return None if data is None else (data, version.value)

    def update_if(self, session_id, data, version):
        """Replaces the data only while the version is `version` (from
        get_versioned); raises Conflict when the session changed since."""
        version = operator.index(version)
        if not 0 <= version <= _U64_MAX:
            raise InvalidArgument(f"version {version} is not an unsigned 64-bit number")
        self._ok("update_if", _arg(session_id, "session_id"), _arg(data, "data"), version)

    def destroy_owner(self, owner):
        """Ends every live session of `owner` ("log out everywhere"); returns how many."""
        return self._count("destroy_owner", _arg(owner, "owner"))

    def list_owner(self, owner):
        """The ids (list of str) of `owner`'s live sessions, first to end first."""
        return json.loads(_text(self._string("list_owner", _arg(owner, "owner"))))

    def cache_stats(self):
        """The counters of the Redis driver's local read cache (`local_cache`) as a
        dict: hits, misses, invalidations, flushes, entries, bytes (int) and
        channel_up (bool). A store without a local cache raises InvalidArgument."""
        return json.loads(_text(self._string("cache_stats")))

    def count_owner(self, owner):
        """How many live sessions `owner` has."""
        return self._count("count_owner", _arg(owner, "owner"))

    def cookie_header(self, session_id):
        """The Set-Cookie value (str) that gives the browser `session_id`."""
        return _text(self._string("cookie_header", _arg(session_id, "session_id")))

    def cookie_clear_header(self):
        """The Set-Cookie value (str) that deletes the session cookie (logout)."""
        return _text(self._string("cookie_clear_header"))

    def id_from_cookie_header(self, header):
        """The session id (str) in a Cookie: header value, None when it has none.
        It does not look the session up."""
        found = self._string(
            "id_from_cookie_header", _arg(header, "header"), none_for=(ErrorCode.NOT_FOUND,)
        )
        return None if found is None else _text(found)


class Store(_Api):
    """A handle on one session store (session_store_t).

    Make one with Store.from_json, Store.from_file or Store.named; release it with
    close() or a `with` block. One Store may be used by many threads at once;
    close() waits for no one but releases the C handle only after the calls in
    flight have returned, and every call after close() raises InvalidArgument.
    """

    __slots__ = ("_handle", "_lock", "_busy", "_closed", "_finalizer", "_what", "__weakref__")

    def __init__(self, *args, **kwargs):
        raise TypeError("use Store.from_json(), Store.from_file() or Store.named()")

    @classmethod
    def _wrap(cls, handle, what):
        self = object.__new__(cls)
        self._handle = handle
        self._lock = threading.Lock()
        self._busy = 0
        self._closed = False
        self._what = what
        # Releases the handle when the Store is collected without close(); not at
        # interpreter exit, where other threads may still be inside a call.
        self._finalizer = weakref.finalize(self, lib.session_store_close, handle)
        self._finalizer.atexit = False
        return self

    @classmethod
    def _open(cls, name, args, what):
        handle, code, message = _global(name, _PTR, *args)
        if not handle:
            raise _fail(code, message)
        return cls._wrap(handle, what)

    @classmethod
    def from_json(cls, text, name=None):
        """A store of JSON configuration text in the config.json shape
        (session_store_open_json); `name` picks an entry of a map of stores."""
        return cls._open(
            "session_store_open_json",
            (_arg(text, "text"), _opt_arg(name, "name")),
            f"from_json, name={name!r}",
        )

    @classmethod
    def from_file(cls, path, name=None):
        """A store of a config.json file (session_store_open)."""
        return cls._open(
            "session_store_open",
            (_path(path), _opt_arg(name, "name")),
            f"from_file {os.fspath(path)!r}, name={name!r}",
        )

    @classmethod
    def named(cls, name=None):
        """A handle on store `name` of the global configuration (session_store);
        None: its default store. It keeps that store even after init/shutdown."""
        return cls._open("session_store", (_opt_arg(name, "name"),), f"named {name!r}")

    def _call(self, name, fail, *args):
        with self._lock:
            if self._closed:
                raise InvalidArgument("the store is closed")
            self._busy += 1
        try:
            return _outcome(_FN["session_store_" + name](self._handle, *args), fail)
        finally:
            with self._lock:
                self._busy -= 1
                last = self._closed and self._busy == 0
            if last:
                self._finalizer()

    def close(self):
        """Releases the handle (session_store_close). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = self._busy == 0
        if idle:
            self._finalizer()

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        if self._closed:
            raise InvalidArgument("the store is closed")
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._closed else "open"
        return f"<libsession.Store {self._what} {state}>"


class DefaultStore(_Api):
    """The default store of the global configuration: the session_* functions
    without a handle. Configure it with libsession.init / init_json (or let the
    first call configure it from $SESSION_CONFIG or the embedded default)."""

    __slots__ = ()
    _RENAMED = {"remove_expired": "remove_expired_count"}

    def _call(self, name, fail, *args):
        return _global("session_" + self._RENAMED.get(name, name), fail, *args)

    def __repr__(self):
        return "<libsession.default: the global configuration's default store>"


#: The global configuration's default store (session_create, session_get, ...).
default = DefaultStore()


def init(path):
    """Configures the global configuration from a config.json file (session_init).
    Raises ConfigError (the previous configuration stays) on failure."""
    result, code, message = _global("session_init", _ZERO, _path(path))
    if result == 0:
        raise _fail(code, message)


def init_json(text):
    """Configures the global configuration from JSON text (session_init_json)."""
    result, code, message = _global("session_init_json", _ZERO, _arg(text, "text"))
    if result == 0:
        raise _fail(code, message)


def shutdown():
    """Lets go of the global configuration's stores (session_shutdown)."""
    _, code, message = _global("session_shutdown", _VOID)
    if code:
        raise _fail(code, message)


def remove_expired():
    """session_remove_expired on the default store: returns None.
    default.remove_expired() does the same and returns how many went."""
    _, code, message = _global("session_remove_expired", _VOID)
    if code:
        raise _fail(code, message)


def create_id():
    """A fresh id (str, 64 lowercase hex digits) from the OS CSPRNG; stores nothing."""
    ptr, code, message = _global("session_create_id", _PTR)
    if not ptr:
        raise _fail(code, message)
    return _text(_take(ptr))


def version():
    """The loaded library's version, "MAJOR.MINOR.PATCH" (session_version)."""
    return ctypes.string_at(lib.session_version()).decode("ascii")


def last_error():
    """session_last_error: the message of this thread's last failed libsession
    call, None after a success. The exceptions already carry it."""
    ptr = _last_message()
    return ctypes.string_at(ptr).decode("utf-8", "replace") if ptr else None


def last_error_code():
    """session_last_error_code as an ErrorCode (a plain int for an unknown code)."""
    code = _last_code()
    try:
        return ErrorCode(code)
    except ValueError:
        return code
