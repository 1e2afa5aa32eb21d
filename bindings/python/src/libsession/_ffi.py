"""Loading libsession and declaring every function of include/session.h.

The table FUNCTIONS gives, for each C function, its ctypes result type and
argument types. Strings that the library returns are declared c_void_p, never
c_char_p: ctypes would copy a c_char_p result into bytes and lose the pointer,
which must go back to session_free. tests/test_header.py parses
include/session.h and checks this table against it, so a C function added to the
header without a declaration here fails the tests.
"""

import ctypes
import os
from ctypes import POINTER, c_char_p, c_int, c_long, c_ulonglong, c_void_p

#: The environment variable naming the library's path.
ENV = "LIBSESSION_LIBRARY"
#: The soname the dynamic loader looks up when ENV is not set.
SONAME = "libsession.so.0"

# Argument and result types, named after the C types they stand for.
STR = c_char_p  # const char * argument: bytes with no NUL, or None
OWNED_STR = c_void_p  # char * result: malloc'd, released with session_free
STATIC_STR = c_void_p  # const char * result owned by the library: not freed
STORE = c_void_p  # session_store_t * (opaque)
VOID_PTR = c_void_p  # void *
VERSION_OUT = POINTER(c_ulonglong)  # unsigned long long *

#: name -> (restype, argtypes), one entry per function of include/session.h.
FUNCTIONS = {
    # The global API (the default store of the global configuration).
    "session_create": (OWNED_STR, [STR]),
    "session_create_ttl": (OWNED_STR, [STR, c_long]),
    "session_get": (OWNED_STR, [STR]),
    "session_update": (c_int, [STR, STR]),
    "session_destroy": (c_int, [STR]),
    "session_touch": (c_int, [STR]),
    "session_ttl": (c_long, [STR]),
    "session_exists": (c_int, [STR]),
    "session_count": (c_long, []),
    "session_regenerate": (OWNED_STR, [STR]),
    "session_get_versioned": (OWNED_STR, [STR, VERSION_OUT]),
    "session_update_if": (c_int, [STR, STR, c_ulonglong]),
    "session_get_value": (OWNED_STR, [STR, STR]),
    "session_set_value": (c_int, [STR, STR, STR]),
    "session_delete_value": (c_int, [STR, STR]),
    "session_pop_value": (OWNED_STR, [STR, STR]),
    "session_destroy_owner": (c_long, [STR]),
    "session_list_owner": (OWNED_STR, [STR]),
    "session_cache_stats": (OWNED_STR, []),
    "session_count_owner": (c_long, [STR]),
    "session_cookie_header": (OWNED_STR, [STR]),
    "session_cookie_clear_header": (OWNED_STR, []),
    "session_id_from_cookie_header": (OWNED_STR, [STR]),
    "session_create_id": (OWNED_STR, []),
    "session_remove_expired": (None, []),
    "session_remove_expired_count": (c_long, []),
    # Store handles.
    "session_store_open": (STORE, [STR, STR]),
    "session_store_open_json": (STORE, [STR, STR]),
    "session_store": (STORE, [STR]),
    "session_store_close": (None, [STORE]),
    "session_store_create": (OWNED_STR, [STORE, STR]),
    "session_store_create_ttl": (OWNED_STR, [STORE, STR, c_long]),
    "session_store_get": (OWNED_STR, [STORE, STR]),
    "session_store_update": (c_int, [STORE, STR, STR]),
    "session_store_destroy": (c_int, [STORE, STR]),
    "session_store_remove_expired": (c_long, [STORE]),
    "session_store_touch": (c_int, [STORE, STR]),
    "session_store_ttl": (c_long, [STORE, STR]),
    "session_store_exists": (c_int, [STORE, STR]),
    "session_store_count": (c_long, [STORE]),
    "session_store_regenerate": (OWNED_STR, [STORE, STR]),
    "session_store_get_versioned": (OWNED_STR, [STORE, STR, VERSION_OUT]),
    "session_store_update_if": (c_int, [STORE, STR, STR, c_ulonglong]),
    "session_store_get_value": (OWNED_STR, [STORE, STR, STR]),
    "session_store_set_value": (c_int, [STORE, STR, STR, STR]),
    "session_store_delete_value": (c_int, [STORE, STR, STR]),
    "session_store_pop_value": (OWNED_STR, [STORE, STR, STR]),
    "session_store_destroy_owner": (c_long, [STORE, STR]),
    "session_store_list_owner": (OWNED_STR, [STORE, STR]),
    "session_store_cache_stats": (OWNED_STR, [STORE]),
    "session_store_count_owner": (c_long, [STORE, STR]),
    "session_store_cookie_header": (OWNED_STR, [STORE, STR]),
    "session_store_cookie_clear_header": (OWNED_STR, [STORE]),
    "session_store_id_from_cookie_header": (OWNED_STR, [STORE, STR]),
    # Memory, configuration, errors, version.
    "session_free": (None, [VOID_PTR]),
    "session_init": (c_int, [STR]),
    "session_init_json": (c_int, [STR]),
    "session_shutdown": (None, []),
    "session_last_error": (STATIC_STR, []),
    "session_last_error_code": (c_int, []),
    "session_version": (STATIC_STR, []),
}


def _open():
    """The loaded library and the path or name it was loaded from."""
    path = os.environ.get(ENV, "")
    if path:
        # dlopen treats a name without a slash as a soname to search for: make a
        # relative path such as "libsession.so" mean the file.
        target = os.path.abspath(path) if os.path.exists(path) else path
        try:
            return ctypes.CDLL(target), target
        except OSError as err:
            raise ImportError(
                f"libsession: cannot load the library named by {ENV}={path!r}: {err}. "
                f"Point {ENV} at a built libsession.so (cargo build --release --lib "
                f"leaves target/release/libsession.so), or unset it to load {SONAME} "
                f"through the dynamic loader (rpath, LD_LIBRARY_PATH, ldconfig)."
            ) from err
    try:
        return ctypes.CDLL(SONAME), SONAME
    except OSError as err:
        raise ImportError(
            f"libsession: {ENV} is not set and the dynamic loader cannot find {SONAME} "
            f"({err}). Set {ENV} to the library's path (cargo build --release --lib "
            f"leaves target/release/libsession.so), or install the library where the "
            f"loader looks (cmake --install with ldconfig, or LD_LIBRARY_PATH)."
        ) from err


def _declare(lib, where):
    missing = []
    for name, (restype, argtypes) in FUNCTIONS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError(
            f"libsession: the library loaded from {where} lacks {', '.join(missing)}: "
            f"it is older than these bindings (set {ENV} to a current build)"
        )


lib, library_path = _open()
_declare(lib, library_path)
